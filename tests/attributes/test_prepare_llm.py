"""pipelines.prepare_llm: bad output paths are one clear line before anything is downloaded."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipelines.prepare_llm import main


@pytest.mark.parametrize(
    ("where", "message"),
    [
        (lambda tmp: tmp / "a-file" / "model", "error: cannot create the model folder"),
        (lambda tmp: Path("/proc/lmseg-no/model"), "error: cannot create the model folder /proc/lmseg-no/model"),
        (lambda tmp: tmp / "half-made", "exists but is not a finished preparation; remove it"),
    ],
)
def test_an_unusable_output_is_refused_before_any_download(tmp_path: Path, capsys, where, message: str) -> None:
    (tmp_path / "a-file").write_text("x")
    (tmp_path / "half-made").mkdir()
    assert main(["--output", str(where(tmp_path))]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
