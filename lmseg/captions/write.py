"""Writing image-caption pairs as webdataset tar files in img2dataset's layout.

Tar file ``k`` is ``<folder>/{k:05d}.tar``; sample ``j`` of it has the key ``{k:05d}{j:04d}`` and
the members ``<key>.<ext>`` (the encoded image as given), ``<key>.txt`` (the caption, UTF-8)
and ``<key>.json`` (``{"key", "caption", "source"}``), as img2dataset writes them. Each file
is written through :func:`lmseg.io.atomic.atomic_path` (a temporary file, renamed when
complete).
"""

from __future__ import annotations

import io
import itertools
import json
import os
import tarfile
from collections.abc import Iterable
from pathlib import Path

from lmseg.captions.sources import Pair
from lmseg.io.atomic import atomic_path


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    tar.addfile(info, io.BytesIO(data))


def write_tars(pairs: Iterable[Pair], folder: str | os.PathLike[str], *, per_tar: int = 1000) -> list[Path]:
    """Write ``pairs`` (anything with ``caption``, ``image_name``, ``read_image_bytes()``) as tar files.

    Returns:
        The tar files, in order.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    remaining = iter(pairs)
    while chunk := list(itertools.islice(remaining, per_tar)):
        number = len(written)
        written.append(folder / f"{number:05d}.tar")
        with atomic_path(written[-1]) as tmp, tarfile.open(tmp, "w", format=tarfile.USTAR_FORMAT) as tar:
            for j, pair in enumerate(chunk):
                _add_pair(tar, f"{number:05d}{j:04d}", pair)
    return written


def _add_pair(tar: tarfile.TarFile, key: str, pair: Pair) -> None:
    ext = Path(pair.image_name).suffix.lstrip(".").lower() or "jpg"
    _add(tar, f"{key}.{ext}", pair.read_image_bytes())
    _add(tar, f"{key}.txt", pair.caption.encode("utf-8"))
    _add(tar, f"{key}.json", json.dumps({"key": key, "caption": pair.caption,
                                         "source": str(pair.image_name)}).encode("utf-8"))
