"""Shared fixtures of the stage-1 (attributes) tests.

These tests run in the LLM environment (.venv-llm). The real-model tests need the default
model that `make setup` prepares; they are skipped, with that reason, when it is absent.
"""

from __future__ import annotations

import importlib.util
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
MODEL_DIR = REPO / "cache" / "models" / "SmolLM2-135M-Instruct"
SERVED_MODEL = "SmolLM2-135M-Instruct"


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private cache folder for the test (LMSEG_CACHE_DIR)."""
    monkeypatch.setenv("LMSEG_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture(scope="session")
def llm_dir() -> Path:
    """The prepared default model; skips when it or vLLM is missing."""
    if importlib.util.find_spec("vllm") is None:
        pytest.skip("vLLM is not installed in this environment (run the tests through `make test`)")
    if not (MODEL_DIR / ".lmseg-prepared").exists():
        pytest.skip(f"the default LLM is not prepared at {MODEL_DIR} (run `make setup`)")
    return MODEL_DIR


def free_port() -> int:
    """A TCP port on loopback that nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def server_url(llm_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The API root of one real vLLM OpenAI-compatible server with the default model on
    loopback, started once (about 30 s on an idle CPU; up to 900 s are allowed, for machines
    busy with the vision suite beside it) for every test that takes it, stopped at the end."""
    port = free_port()
    log_path = tmp_path_factory.mktemp("server") / "vllm-server.log"
    command = [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", str(llm_dir),
               "--served-model-name", SERVED_MODEL, "--host", "127.0.0.1", "--port", str(port),
               "--gpu-memory-utilization", "0.2", "--max-model-len", "1024", "--enforce-eager"]
    with open(log_path, "w") as log:
        server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        _wait_until_ready(server, url, log_path)
        yield url
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()


def _wait_until_ready(server: subprocess.Popen, url: str, log_path: Path, timeout: float = 900) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if server.poll() is not None:
            pytest.fail(f"vLLM server exited with {server.returncode}:\n{log_path.read_text()[-3000:]}")
        try:
            urllib.request.urlopen(f"{url}/models", timeout=2).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                pytest.fail(f"vLLM server not ready after {timeout:.0f} s:\n{log_path.read_text()[-3000:]}")
            time.sleep(1)


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run `python -m pipelines.gen_prompts ARGS` in a fresh process, as a user would."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "pipelines.gen_prompts", *args],
        cwd=REPO, env=full_env, capture_output=True, text=True, timeout=timeout, check=False,
    )


def summary(stderr: str) -> tuple[int, int, list[int]]:
    """(generated, skipped, failed class indices) from a run's closing summary."""
    match = re.search(r"done: (\d+) generated, (\d+) skipped \(already present\), (\d+) failed", stderr)
    assert match, f"no summary in:\n{stderr[-3000:]}"
    failed = [int(m) for m in re.findall(r"^  failed: class (\d+) ", stderr, flags=re.MULTILINE)]
    assert len(failed) == int(match.group(3))  # every failed class is named
    return int(match.group(1)), int(match.group(2)), failed
