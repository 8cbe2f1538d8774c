"""The tables of LLM stages: atomic Parquet files, one run per table, outputs checked first.

Every LLM stage keeps its results in Parquet (the attribute table: one file rewritten after
every chunk; the caption-phrase table: a folder that gains one file per chunk). Both write
through :func:`write_table` (a temporary file in the same folder, flushed, renamed over the
target: a reader sees the old file or the new one, never half of one), read through
:func:`read_parquet`, hold :func:`exclusive_lock` for the whole run, and check their output
with :func:`check_writable_file` / :func:`check_writable_folder` before any model loads.

Reading starts no thread. ``pyarrow.parquet.read_table`` (and ``to_pandas`` by default) start
Arrow's native thread pools, whose threads are still alive when the interpreter exits; in
about 1 of 50 runs of a short command (``gen_prompts --backend openai``: the run ends right
after reading its table back for the quality report) their teardown raced the exit and the
process died with ``terminate called without an active exception`` (SIGABRT, exit status
134) after its table was written (apache/arrow#34314). The tables are small, so they are read
on the calling thread: no pool thread ever exists to race the exit.

Renamed columns are read under their new names. The column ``template_sha256`` of both tables
became ``instruction_sha256`` (issue 19: a "prompt" is a vision model's input, an
"instruction" the jinja2 message sent to the LLM); :func:`read_parquet` and
:func:`read_parquet_schema` give a table written before the rename its new column name, so
old tables are read, resumed and merged as they are (their rows are written back with the
new name).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import BinaryIO

import pyarrow as pa
import pyarrow.parquet as pq

from lmseg.errors import LmsegError
from lmseg.io.atomic import atomic_path

RENAMED_COLUMNS = {"template_sha256": "instruction_sha256"}  # old name -> new name (module docstring)


def read_parquet(source: str | Path | BinaryIO, columns: Sequence[str] | None = None) -> pa.Table:
    """Read a Parquet file (a path or an open binary file) on the calling thread (see the
    module docstring: no Arrow thread pool is started), its renamed columns under their new
    names (``columns`` names them by the new name too).

    Raises:
        pyarrow.ArrowException, OSError: the file is not readable Parquet (callers say which table).
    """
    file = pq.ParquetFile(source, pre_buffer=False)
    stored = {RENAMED_COLUMNS.get(name, name): name for name in file.schema_arrow.names}
    wanted = None if columns is None else [stored.get(name, name) for name in columns]
    table = file.read(columns=wanted, use_threads=False)
    return table.rename_columns(_new_names(table.column_names)).replace_schema_metadata(table.schema.metadata)


def read_parquet_schema(path: str | Path) -> pa.Schema:
    """The schema of a Parquet file, its renamed columns under their new names (as :func:`read_parquet`).

    Raises:
        pyarrow.ArrowException, OSError: the file is not readable Parquet.
    """
    schema = pq.read_schema(path)
    return pa.schema([field.with_name(name) for field, name in zip(schema, _new_names(schema.names))],
                     metadata=schema.metadata)


def _new_names(names: Sequence[str]) -> list[str]:
    """``names`` with every renamed column under its new name."""
    return [RENAMED_COLUMNS.get(name, name) for name in names]


def write_table(table: pa.Table, path: str | Path) -> None:
    """Write ``table`` to ``path`` atomically (:func:`lmseg.io.atomic.atomic_path`), zstd-compressed."""
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, compression="zstd")


@contextlib.contextmanager
def exclusive_lock(path: str | Path) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (a table, or a lock name inside a table folder) for a run.

    The lock is an ``flock`` on a hidden file beside ``path``, which the kernel releases
    when the process ends in any way (including ``kill -9``). Once it is held, temporary
    files left by a writer that was killed mid-write are removed.

    Raises:
        LmsegError: another process holds the lock.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    lock_path = path.with_name(f".{path.name}.lock")
    with open(lock_path, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            raise LmsegError(
                f"another run is already writing {path} (process {holder}); wait for it to finish"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        for stale in path.parent.glob(f".{path.name}.tmp-*"):  # left by a writer killed mid-write
            stale.unlink(missing_ok=True)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def check_writable_file(path: str | Path) -> None:
    """Check, before any work, that a table file can be written at ``path`` (creating its folder).

    Raises:
        LmsegError: ``path`` is a folder or a read-only file, or its folder cannot be
            created or written (read-only, a file in the way, no permission).
    """
    path = Path(path)
    if path.is_dir():
        raise LmsegError(f"output {path} is a folder; give a file path such as {path / 'attributes.parquet'}")
    if path.exists() and not os.access(path, os.W_OK):
        raise LmsegError(f"output {path} is read-only; make it writable (chmod u+w) or choose another output path")
    _check_folder(path.parent, f"output {path}")


def check_writable_folder(path: str | Path) -> None:
    """Check, before any work, that files can be written in the folder ``path`` (creating it).

    Raises:
        LmsegError: ``path`` is a file, or the folder cannot be created or written.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise LmsegError(f"output {path} is a file; the output is a folder of Parquet files: give a folder path")
    _check_folder(path, f"output folder {path}")


def _check_folder(folder: Path, what: str) -> None:
    """Create ``folder`` if needed and write and remove a probe file in it."""
    blocking = next((p for p in (folder, *folder.parents) if p.exists() and not p.is_dir()), None)
    if blocking is not None:
        raise LmsegError(f"cannot write {what}: {blocking} is a file, not a folder; choose another output path")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        handle, probe = tempfile.mkstemp(prefix=".probe-", dir=folder)
        os.close(handle)
        os.unlink(probe)
    except OSError as exc:
        raise LmsegError(
            f"cannot write {what}: {exc.strerror or exc} (in {exc.filename or folder}); "
            "choose another output path or fix that folder's permissions"
        ) from None
