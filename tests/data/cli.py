"""Running ``python -m pipelines.prepare_data`` in-process from the data tests."""

from __future__ import annotations

from pipelines.prepare_data import main


def run_cli(capsys, *args) -> tuple[int, str, str]:
    """``main(args)`` with every argument turned into text; returns (exit code, stdout, stderr)."""
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err
