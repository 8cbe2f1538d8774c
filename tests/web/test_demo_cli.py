"""``python -m pipelines.demo``: bad arguments are refused with one line, before any model loads."""

from __future__ import annotations

import socket

import pytest
import torch

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
        (["--max-classes", "0"], "error: --max-classes must be a finite number above 0, got 0"),
        (["--time-limit", "-1"], "error: --time-limit must be a finite number above 0, got -1.0"),
        (["--time-limit", "nan"], "error: --time-limit must be a finite number above 0, got nan"),
        (["--max-upload-mb", "nan"], "error: --max-upload-mb must be a finite number above 0, got nan"),
        (["--max-upload-mb", "inf"], "error: --max-upload-mb must be a finite number above 0, got inf"),
        (["--max-megapixels=-inf"], "error: --max-megapixels must be a finite number above 0, got -inf"),
        (["--set", "novalue"], "error: --set expects KEY=VALUE"),
        (["--device", "bogus"], "error: --device 'bogus' is not a device name"),
    ],
)
def test_bad_arguments(argv: list[str], message: str, capsys: pytest.CaptureFixture[str],
                       monkeypatch: pytest.MonkeyPatch) -> None:
    import lmseg.registry

    monkeypatch.setattr(lmseg.registry, "create_segmenter", lambda *a, **k: pytest.fail("a model was loaded"))
    status, err = run(argv, capsys)
    assert status == 2 and err.startswith(message) and err.count("\n") == 1


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA device")
def test_a_missing_cuda_device_is_one_line_before_the_model_loads(capsys: pytest.CaptureFixture[str],
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    import lmseg.registry

    monkeypatch.setattr(lmseg.registry, "create_segmenter", lambda *a, **k: pytest.fail("a model was loaded"))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    status, err = run(["--device", "cuda", "--port", str(port)], capsys)
    assert status == 2 and err.startswith("error: --device cuda: this machine has no such device (")
    assert err.count("\n") == 1


def test_unknown_model_is_named(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    status, err = run(["--model", "no_such_model", "--port", str(port)], capsys)
    assert status == 2 and err.startswith("error: unknown segmenter 'no_such_model'; available: ")
    assert "lmseg_tiny" in err
