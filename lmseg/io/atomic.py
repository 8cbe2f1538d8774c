"""Atomic file writes: a file is either the complete old version or the complete new one.

Every writer of the project (tables, reports, states, checkpoints, label maps, images,
downloads, caches) goes through :func:`atomic_path`::

    with atomic_path(out / "report.json") as tmp:
        tmp.write_text(text)

The caller writes a temporary file in the destination's folder (so the final rename never
crosses file systems; its name keeps the destination's suffix, so ``np.save`` or PIL see the
right extension). When the block ends without an exception the temporary file is flushed to
disk (``fsync``), renamed over the destination (``os.replace``, atomic on POSIX) and the folder
entry is flushed too; on any exception, Ctrl-C included, the temporary file is removed and the
destination is left untouched.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

__all__ = ["atomic_path", "write_bytes", "write_text"]


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path to write; on success it replaces ``path`` (parent folders are created).

    Raises:
        whatever the block raises (the temporary file is removed first).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # not mkstemp: its 0600 mode would stick to the result; the writer creates the file itself
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp{path.suffix}")
    try:
        yield tmp
        _fsync_file(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically; returns ``path``."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically; returns ``path``."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def _fsync_file(path: Path) -> None:
    if not path.exists():
        raise FileNotFoundError(f"nothing was written to the temporary file {path}")
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # some file systems do not open folders; the rename is still atomic
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
