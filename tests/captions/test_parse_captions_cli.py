"""`python -m pipelines.parse_captions`: dry run, and bad input rejected with one error line and
exit status 2 before any model loads (the real model runs in tests/attributes)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipelines.parse_captions import main
from tests.captions.fixture import fixture_tars


def test_dry_run_renders_the_instructions_of_tar_captions(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    fixture_tars(tmp_path / "tars")
    assert main(["--tars", str(tmp_path / "tars"), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert out.count("---") == 3 and 'Caption: "Closeup of bins of food that include broccoli and bread."' in out
    assert "at most 8 phrases" in out


@pytest.mark.parametrize(("args", "message"), [
    (["--tars", "{tmp}/none-*.tar"], "no webdataset tar files"),
    (["--shards", "{tmp}"], "--shards was renamed --tars"),
    (["--captions", "{tmp}/missing.txt", "--dry-run"], "cannot read captions"),
    (["--captions", "{tmp}/c.txt", "--shard-index", "1"], "give both --shard-index and --num-shards"),
    (["--captions", "{tmp}/c.txt", "--shard-index", "2", "--num-shards", "2"], "--shard-index must be in"),
    (["--captions", "{tmp}/c.txt", "--model", "{tmp}/no-model/"], "does not exist"),
    (["--captions", "{tmp}/c.txt", "--backend", "openai"], "needs --base-url"),
    (["--captions", "{tmp}/c.txt", "--concurrency", "0"], "--concurrency must be >= 1"),
    (["--captions", "{tmp}/c.txt", "--timeout", "inf"], "--timeout must be > 0 and at most 86400 seconds"),
    (["--captions", "{tmp}/c.txt", "--temperature", "nan"], "--temperature must be a finite number >= 0"),
    (["--captions", "{tmp}/c.txt", "--prompt", "t.j2"], "--prompt was renamed --instruction (the jinja2 file sent to"),
    (["--captions", "{tmp}/c.txt", "--template", "t.j2"], "--template was renamed --instruction"),
    (["--captions", "{tmp}/latin1.txt"], "latin1.txt, line 2, column 4: byte 0xe9 is not UTF-8"),
    (["--table", "{tmp}/latin1.csv"], "latin1.csv, line 2, column 10: byte 0xe9 is not UTF-8"),
    (["--captions", "{tmp}/c.txt", "--output", "{tmp}/c.txt"], "output {tmp}/c.txt is a file; the output is a folder"),
    (["--captions", "{tmp}/c.txt", "--output", "/proc/lmseg-no/out"], "cannot write output folder /proc/lmseg-no/out"),
])
def test_bad_input_is_one_error_line(tmp_path: Path, capsys: pytest.CaptureFixture, args: list[str],
                                     message: str) -> None:
    (tmp_path / "c.txt").write_text("A cat on a mat.\n", encoding="utf-8")
    (tmp_path / "latin1.txt").write_bytes("A dog.\nCaf\xe9 au lait.\n".encode("latin-1"))
    (tmp_path / "latin1.csv").write_bytes("image,caption\nx.jpg,Caf\xe9.\n".encode("latin-1"))
    assert main([a.format(tmp=tmp_path) for a in args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: ") and message.format(tmp=tmp_path) in err[-1]
    assert "Traceback" not in "\n".join(err)
