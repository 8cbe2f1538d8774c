"""The Parquet attribute table (schema, corrupt files) and the table writing of the LLM layer
(lmseg.llm.tables: atomic writes, outputs checked first, the run lock)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from datetime import datetime, timezone
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lmseg.attributes import store
from lmseg.attributes.store import AttributeRow, read_table, rows_to_table, table_to_rows, write_table
from lmseg.errors import LmsegError
from lmseg.llm import tables
from lmseg.llm.tables import check_writable_file, check_writable_folder, exclusive_lock
from tests.attributes.table_checks import write_before_the_rename

FIXED_COLUMNS = ["dataset", "class_index", "class_name", "colour", "shape", "texture", "model",
                 "instruction_sha256", "created_at"]


def make_row(index: int, name: str = "cat") -> AttributeRow:
    return AttributeRow(
        dataset="pets", class_index=index, class_name=name, colour=("orange",), shape=("four legs", "tail"),
        texture=("fur",), model="m", instruction_sha256="ab" * 32,
        created_at=datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc), sampling="{}",
    )


def test_schema_has_the_fixed_columns_types_and_version() -> None:
    assert store.SCHEMA.names[: len(FIXED_COLUMNS)] == FIXED_COLUMNS
    assert store.SCHEMA.field("class_index").type == pa.int32()
    for group in ("colour", "shape", "texture"):
        assert store.SCHEMA.field(group).type == pa.list_(pa.string())
    assert store.SCHEMA.field("created_at").type == pa.timestamp("us", tz="UTC")
    assert store.SCHEMA.metadata[b"lmseg.schema_version"] == store.SCHEMA_VERSION.encode()


def test_round_trip_keeps_rows_sorted_by_class_index(tmp_path: Path) -> None:
    rows = [make_row(2, "dog"), make_row(0, "cat"), make_row(1, "sofa")]
    path = tmp_path / "t.parquet"
    write_table(rows_to_table(rows), path)
    table = read_table(path)
    assert table.column("class_index").to_pylist() == [0, 1, 2]
    assert pq.read_schema(path).metadata[b"lmseg.schema_version"] == b"3"
    assert table_to_rows(table) == sorted(rows, key=lambda r: r.class_index)


@pytest.mark.parametrize("version", ["1", "2"])
def test_a_table_written_before_the_rename_is_read_under_the_new_names(tmp_path: Path, version: str) -> None:
    """Versions 1 and 2 named ``instruction_sha256`` ``template_sha256``; version 1 had no
    ``method`` column (every row of it was made by ``generate``, ``make_row``'s default)."""
    rows = [make_row(0), make_row(1, "dog")]
    path = tmp_path / f"v{version}.parquet"
    write_before_the_rename(rows_to_table(rows), path, version)
    read = read_table(path)
    assert read.schema.equals(store.SCHEMA) and read.schema.metadata == store.SCHEMA.metadata
    assert table_to_rows(read) == rows  # the sha256 of every row kept, under the new name


def test_the_table_is_readable_by_everyone_like_other_outputs(tmp_path: Path) -> None:
    path = tmp_path / "t.parquet"
    write_table(rows_to_table([make_row(0)]), path)
    assert path.stat().st_mode & 0o044 == 0o044  # group and others may read (with the usual umask 022)


@pytest.mark.parametrize(
    ("where", "message"),
    [
        (lambda tmp: tmp, "is a folder; give a file path"),
        (lambda tmp: tmp / "a-file" / "t.parquet", "a-file is a file, not a folder"),
        (lambda tmp: Path("/proc/lmseg-test/t.parquet"), "cannot write output .*choose another output path"),
    ],
)
def test_an_unwritable_output_is_refused_before_any_work(tmp_path: Path, where, message: str) -> None:
    (tmp_path / "a-file").write_text("x")
    with pytest.raises(LmsegError, match=message):
        check_writable_file(where(tmp_path))


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write read-only files; the check cannot be seen as root")
def test_a_read_only_output_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "t.parquet"
    path.write_text("x")
    path.chmod(0o444)
    with pytest.raises(LmsegError, match="is read-only"):
        check_writable_file(path)


def test_an_output_folder_that_is_a_file_or_unwritable_is_refused(tmp_path: Path) -> None:
    """The caption-phrase table is a folder: a file in its place is refused, as is a folder below a file."""
    (tmp_path / "a-file").write_text("x")
    with pytest.raises(LmsegError, match="is a file; the output is a folder of Parquet files"):
        check_writable_folder(tmp_path / "a-file")
    with pytest.raises(LmsegError, match="a-file is a file, not a folder"):
        check_writable_folder(tmp_path / "a-file" / "phrases")
    with pytest.raises(LmsegError, match="cannot write output folder /proc/lmseg-test"):
        check_writable_folder(Path("/proc/lmseg-test"))
    check_writable_folder(tmp_path / "new" / "phrases")
    assert (tmp_path / "new" / "phrases").is_dir() and not list((tmp_path / "new" / "phrases").iterdir())


def test_a_failed_write_leaves_the_old_table_and_no_temporary_file(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "t.parquet"
    write_table(rows_to_table([make_row(0)]), path)
    before = path.read_bytes()

    def crash(table: pa.Table, where: Path, **kwargs: object) -> None:
        Path(where).write_bytes(b"PAR1 half a file")
        raise OSError("disk full")

    monkeypatch.setattr(tables.pq, "write_table", crash)
    with pytest.raises(OSError, match="disk full"):
        write_table(rows_to_table([make_row(0), make_row(1)]), path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["t.parquet"]


def test_corrupt_file_is_reported_not_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "t.parquet"
    write_table(rows_to_table([make_row(0), make_row(1)]), path)
    path.write_bytes(path.read_bytes()[:-20])  # truncated, as by a crash of some other tool
    with pytest.raises(LmsegError, match="corrupt or not a Parquet file") as info:
        read_table(path)
    assert "--overwrite" not in str(info.value)  # the facts only: each command adds the advice that fits it


def test_other_schema_or_version_is_reported(tmp_path: Path) -> None:
    other = tmp_path / "other.parquet"
    pq.write_table(pa.table({"category": ["cat"], "colors": [["orange"]]}), other)
    with pytest.raises(LmsegError, match="not an lmseg attribute table"):
        read_table(other)
    future = tmp_path / "future.parquet"
    table = rows_to_table([make_row(0)])
    pq.write_table(table.replace_schema_metadata({b"lmseg.schema_version": b"99"}), future)
    with pytest.raises(LmsegError, match="schema version 99"):
        read_table(future)
    renamed = tmp_path / "renamed.parquet"
    renamed_table = table.rename_columns([*table.column_names[:-1], "settings"])
    pq.write_table(renamed_table.replace_schema_metadata(table.schema.metadata), renamed)
    with pytest.raises(LmsegError, match="expected columns"):
        read_table(renamed)


def test_lock_refuses_a_second_process_and_is_released_after(tmp_path: Path) -> None:
    path = tmp_path / "t.parquet"
    probe = textwrap.dedent(f"""
        from lmseg.errors import LmsegError
        from lmseg.llm.tables import exclusive_lock
        try:
            with exclusive_lock({str(path)!r}):
                print("acquired")
        except LmsegError as exc:
            print(exc)
    """)
    with exclusive_lock(path):
        held = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    free = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert "another run is already writing" in held
    assert free.strip() == "acquired"


def test_a_reader_racing_a_writer_sees_the_old_or_the_new_table_never_half(tmp_path: Path) -> None:
    path = tmp_path / "t.parquet"
    small = rows_to_table([make_row(0)])
    large = rows_to_table([make_row(i, f"class{i}") for i in range(300)])
    write_table(small, path)
    pq.write_table(large, tmp_path / "large.parquet")
    writer = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import pyarrow.parquet as pq
        from lmseg.attributes.store import read_table, write_table
        small, large = read_table({str(path)!r}), pq.read_table({str(tmp_path / 'large.parquet')!r})
        for i in range(200):
            write_table(large if i % 2 else small, {str(path)!r})
    """)])
    seen = set()
    try:
        while writer.poll() is None:
            seen.add(read_table(path).num_rows)  # raises if a read mixed two files
    finally:
        writer.wait()
    assert seen <= {1, 300}
