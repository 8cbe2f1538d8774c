"""Reading a user's text file with one clear error: missing, or unreadable (a folder, no permission, not the encoding)."""

from __future__ import annotations

import os
from pathlib import Path

from lmseg.errors import LmsegError

__all__ = ["read_text_file"]


def read_text_file(path: str | os.PathLike[str], *, what: str, encoding: str = "utf-8") -> str:
    """The whole text of ``path``.

    Args:
        path: the file.
        what: what the file is, for messages (``"vocabulary file"``).
        encoding: its encoding (``"utf-8-sig"`` drops a leading byte-order mark).

    Raises:
        LmsegError: ``"<what> <path> does not exist"``, or ``"cannot read <what> <path>: <reason>"``
            (a folder, no permission, bytes that are not ``encoding``).
    """
    try:
        return Path(path).read_text(encoding=encoding)
    except FileNotFoundError:
        raise LmsegError(f"{what} {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise LmsegError(f"cannot read {what} {path}: {exc}") from None
