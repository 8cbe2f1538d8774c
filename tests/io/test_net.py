"""lmseg.io.net: the hub's address from the environment, and the reachability check on real loopback sockets."""

from __future__ import annotations

import socket

import pytest

from lmseg.io.net import hub_endpoint, reachable


def test_hub_endpoint_default_and_override(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HF_ENDPOINT", raising=False)
    assert hub_endpoint() == "https://huggingface.co"
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9/mirror/")
    assert hub_endpoint() == "http://127.0.0.1:9/mirror"  # the trailing "/" is dropped


def test_reachable_is_true_for_a_listening_port_and_false_for_a_closed_one() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        assert reachable(f"http://127.0.0.1:{port}/any/path", timeout=2.0)
    # the port was just closed: the kernel refuses the connection at once
    assert not reachable(f"http://127.0.0.1:{port}", timeout=2.0)
