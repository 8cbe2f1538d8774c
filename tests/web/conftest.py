"""One real demo server for the web tests: ``python -m pipelines.demo`` on a free loopback port."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 180


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="package")
def demo_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The URL of a running demo page (tiny random-weight model), stopped after the tests."""
    port = free_port()
    env = {**os.environ, "LMSEG_CACHE_DIR": str(tmp_path_factory.mktemp("cache")), "PYTHONPATH": str(ROOT),
           "PYTHONUNBUFFERED": "1"}
    log_path = tmp_path_factory.mktemp("server") / "server.log"
    with open(log_path, "w+") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "pipelines.demo", "--port", str(port), "--time-limit", "60"],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, text=True,
        )
        try:
            yield _wait_until_served(server, log_path, port)
        finally:
            server.send_signal(signal.SIGTERM)  # the page stops cleanly on SIGTERM
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()


def _wait_until_served(server: subprocess.Popen, log_path: Path, port: int) -> str:
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        text = log_path.read_text()
        if server.poll() is not None:
            pytest.fail(f"the demo server exited with status {server.returncode}:\n{text}")
        if f"lmseg demo: lmseg_tiny at {url}" in text:
            return url
        time.sleep(0.2)
    pytest.fail(f"the demo server did not start within {START_TIMEOUT_S} s:\n{log_path.read_text()}")
