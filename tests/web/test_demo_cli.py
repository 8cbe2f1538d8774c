"""``python -m pipelines.demo``: bad arguments are refused with one line, before any model loads."""

from __future__ import annotations

import socket

import pytest

from pipelines import demo


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    status = demo.main(argv)
    return status, capsys.readouterr().err


def test_port_in_use(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        status, err = run(["--port", str(port)], capsys)
    assert status == 2 and err.startswith(f"error: cannot listen on 127.0.0.1:{port}")
    assert "choose another --port" in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--port", "70000"], "error: --port must be between 1 and 65535"),
        (["--max-classes", "0"], "error: web limit max_classes must be positive"),
        (["--time-limit", "-1"], "error: web limit time_limit_s must be positive"),
        (["--set", "novalue"], "error: --set expects KEY=VALUE"),
    ],
)
def test_bad_arguments(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    status, err = run(argv, capsys)
    assert status == 2 and err.startswith(message) and err.count("\n") == 1


def test_unknown_model_is_named(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    status, err = run(["--model", "no_such_model", "--port", str(port)], capsys)
    assert status == 2 and err.startswith("error: unknown segmenter 'no_such_model'; available: ")
    assert "lmseg_tiny" in err
