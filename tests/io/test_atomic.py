"""The one atomic writer: complete files or none, no temporary files left, ordinary permissions."""

from __future__ import annotations

import os

import pytest

from lmseg.io.atomic import atomic_path, write_text


def test_write_replaces_whole_file_and_leaves_nothing_else(tmp_path) -> None:
    target = tmp_path / "sub" / "report.json"
    write_text(target, "old")
    write_text(target, "new")
    assert target.read_text() == "new"
    assert sorted(p.name for p in target.parent.iterdir()) == ["report.json"]
    umask = os.umask(0)
    os.umask(umask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~umask  # not mkstemp's 0600


def test_failure_keeps_the_old_file_and_removes_the_temporary(tmp_path) -> None:
    target = tmp_path / "state.npz"
    write_text(target, "complete")
    with pytest.raises(RuntimeError, match="disk full"):
        with atomic_path(target) as tmp:
            assert tmp.parent == target.parent and tmp.suffix == ".npz"  # libraries see the real suffix
            tmp.write_text("half")
            raise RuntimeError("disk full")
    assert target.read_text() == "complete"
    assert [p.name for p in tmp_path.iterdir()] == ["state.npz"]


def test_nothing_written_is_an_error_not_an_empty_file(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="nothing was written"):
        with atomic_path(tmp_path / "x.txt"):
            pass
    assert not (tmp_path / "x.txt").exists()
