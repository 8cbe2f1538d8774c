"""Shard selection and the checks of a merge."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from lmseg.attributes.shards import merge_shards
from lmseg.attributes.store import read_table, rows_to_table, write_table
from lmseg.errors import LmsegError
from lmseg.io.shards import shard_range as shard_indices
from lmseg.vocab import parse_class_list
from tests.attributes.table_checks import write_before_the_rename
from tests.attributes.test_store import make_row

VOCAB = parse_class_list("cat,dog,sofa,lamp,tree", name="pets")


def test_shards_are_contiguous_and_cover_every_class_once() -> None:
    for classes in (1, 5, 847):
        for shards in (1, 2, 3, 7):
            blocks = [list(shard_indices(classes, k, shards)) for k in range(shards)]
            assert [i for block in blocks for i in block] == list(range(classes))
    with pytest.raises(LmsegError):
        shard_indices(10, 3, 3)


def write_parts(tmp_path: Path, parts: list[list[int]], tweak=None) -> list[Path]:
    paths = []
    for k, indices in enumerate(parts):
        rows = [make_row(i, VOCAB.names[i]) for i in indices]
        if tweak:
            rows = [tweak(k, r) for r in rows]
        paths.append(tmp_path / f"part{k}.parquet")
        write_table(rows_to_table(rows), paths[-1])
    return paths


def test_merge_writes_the_whole_table(tmp_path: Path) -> None:
    parts = write_parts(tmp_path, [[0, 1], [2, 3, 4]])
    assert merge_shards(VOCAB, parts, tmp_path / "all.parquet") == 5
    assert read_table(tmp_path / "all.parquet").column("class_index").to_pylist() == [0, 1, 2, 3, 4]


def test_parts_written_before_the_column_rename_are_merged(tmp_path: Path) -> None:
    parts = write_parts(tmp_path, [[0, 1], [2, 3, 4]])
    write_before_the_rename(read_table(parts[0]), parts[0], "2")  # template_sha256: before the rename
    assert merge_shards(VOCAB, parts, tmp_path / "all.parquet") == 5
    rows = read_table(tmp_path / "all.parquet").to_pylist()
    assert [r["class_index"] for r in rows] == [0, 1, 2, 3, 4]
    assert {r["instruction_sha256"] for r in rows} == {"ab" * 32}


@pytest.mark.parametrize(
    ("parts", "tweak", "message"),
    [
        ([[0, 1], [2, 3]], None, r"4 classes have no attributes|1 classes have no attributes yet \(e.g. tree\)"),
        ([[0, 1, 2], [2, 3, 4]], None, "more than one shard part"),
        ([[0, 1], [2, 3, 4]], lambda k, r: replace(r, model=f"m{k}"), "different datasets, models"),
        ([[0, 1], [2, 3, 4]], lambda k, r: replace(r, class_name="x"), "do not match vocabulary"),
    ],
)
def test_merge_refuses_incomplete_or_inconsistent_parts(tmp_path: Path, parts, tweak, message: str) -> None:
    paths = write_parts(tmp_path, parts, tweak)
    with pytest.raises(LmsegError, match=message):
        merge_shards(VOCAB, paths, tmp_path / "all.parquet")
    assert not (tmp_path / "all.parquet").exists()
