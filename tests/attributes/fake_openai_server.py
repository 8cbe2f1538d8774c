"""A misbehaving OpenAI-compatible server on loopback, for fault injection only.

Real answers come from the real SmolLM2 model (see test_openai_real.py). This server exists
to produce the failures a real server produces rarely: stalls, dropped connections, invalid
JSON, non-JSON bodies, HTTP errors. Each request to ``/v1/chat/completions`` takes the next
behaviour from a script (the last one repeats).

Behaviours:
    "ok"        a valid attribute answer
    "phrases"   a caption-phrase answer: the caption's last word, or an empty list for a caption
                that starts with "Nothing" (as a small model answers)
    "slow"      a valid answer after 0.3 s (to observe concurrency and hold a run open)
    "invalid"   HTTP 200, a chat completion whose content is not JSON
    "empty"     HTTP 200, content that is JSON but has empty groups
    "garbage"   HTTP 200, a body that is not JSON at all (an HTML page)
    "stall"     never answers (sleeps longer than any client timeout used in tests)
    "drop"      closes the connection without a response
    "500"       HTTP 500
    "401"       HTTP 401 (bad API key); also applies to /v1/models when ``reject_key`` is set

A request whose message is longer than ``max_message_chars`` gets HTTP 400, as a real server
answers an input longer than the model's context, whatever the script says.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

VALID_ANSWER = {"colour": ["grey", "brown"], "shape": ["four legs"], "texture": ["fur"]}


class _Handler(BaseHTTPRequestHandler):
    server: FakeServer

    def log_message(self, *args: object) -> None:  # keep test output quiet
        pass

    def _send(self, status: int, body: bytes, content_type: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        self.server.seen_auth.append(self.headers.get("Authorization", ""))
        if self.server.reject_key:
            self._send(401, json.dumps({"error": {"message": "invalid api key"}}).encode())
        elif self.path.rstrip("/").endswith("/models"):
            self._send(200, json.dumps({"object": "list", "data": [{"id": "fake-model", "object": "model"}]}).encode())
        else:
            self._send(404, b"{}")

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", 0))
        request = json.loads(self.rfile.read(length))
        self.server.seen_auth.append(self.headers.get("Authorization", ""))
        behaviour = self.server.next_behaviour(request)
        try:
            self._answer(request, behaviour)
        finally:
            self.server.leave()

    def _answer(self, request: dict, behaviour: str) -> None:
        asked = request["messages"][-1]["content"]
        if len(asked) > self.server.max_message_chars:  # the wording of vLLM's server (its own "prompt")
            message = f"This model's maximum context length is 1024 tokens; the prompt has {len(asked)} characters"
            self._send(400, json.dumps({"error": {"message": message, "type": "BadRequestError"}}).encode())
            return
        if behaviour == "slow":
            time.sleep(0.3)
            behaviour = "ok"
        if behaviour == "stall":
            time.sleep(30)
            return
        if behaviour == "drop":
            self.close_connection = True
            self.connection.shutdown(2)
            return
        if behaviour in ("500", "401"):
            self._send(int(behaviour), json.dumps({"error": {"message": f"fake {behaviour}"}}).encode())
            return
        if behaviour == "garbage":
            self._send(200, b"<html><body>502 Bad Gateway</body></html>", "text/html")
            return
        caption = asked.split('Caption: "', 1)[-1].split('"\n', 1)[0]
        last_word = re.findall(r"[a-z]+", caption.lower())[-1:]
        content = {
            "ok": json.dumps(VALID_ANSWER),
            "phrases": json.dumps({"phrases": [] if caption.startswith("Nothing") else last_word}),
            "invalid": "Sure! Here are the attributes: colour grey",
            "empty": json.dumps({"colour": [], "shape": [""], "texture": ["  "]}),
        }[behaviour]
        body = {
            "id": "chatcmpl-fake",
            "object": "chat.completion",
            "created": 0,
            "model": request.get("model", "fake-model"),
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": content}}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
        }
        self._send(200, json.dumps(body).encode())


class FakeServer(ThreadingHTTPServer):
    """The server; it records chat request bodies, auth headers and the most requests in flight."""

    daemon_threads = True

    def __init__(self, script: Sequence[str], reject_key: bool = False, max_message_chars: int = 100_000) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.script = list(script)
        self.reject_key = reject_key
        self.max_message_chars = max_message_chars
        self.requests: list[dict] = []
        self.seen_auth: list[str] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()

    def next_behaviour(self, request: dict) -> str:
        with self._lock:
            self.requests.append(request)
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            return self.script.pop(0) if len(self.script) > 1 else self.script[0]

    def leave(self) -> None:
        with self._lock:
            self.in_flight -= 1

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"


@contextmanager
def fake_server(script: Sequence[str], reject_key: bool = False, max_message_chars: int = 100_000
                ) -> Iterator[FakeServer]:
    """Run a :class:`FakeServer` in a background thread for the duration of the block."""
    server = FakeServer(script, reject_key, max_message_chars)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
