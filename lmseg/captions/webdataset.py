"""Image-caption pairs from webdataset tar files, as img2dataset writes them.

A webdataset tar file's members are grouped into samples by *key*: the member name up to
the first dot of its base name (webdataset's convention), e.g. ``000000012.jpg``,
``000000012.txt`` and ``000000012.json`` form sample ``000000012``. A sample needs one image
member (``jpg``, ``jpeg``, ``png`` or ``webp``) and a non-empty UTF-8 ``txt`` caption; the
``json`` member (img2dataset's metadata) is optional and not read.

Tar files are read with the standard library's :mod:`tarfile`: one pass over a file reads the
member headers and the (small) captions and records where each image's bytes are, so the
images themselves are read only when a sample is used, by a seek. Memory is one tar file's index
at a time, whatever the dataset's size.

Problems never stop a run: a tar that cannot be read (or is truncated), a sample without an
image or caption, an empty or non-UTF-8 caption, members that are not images, are counted in a
:class:`SkipLog`, named in the log, and skipped.
"""

from __future__ import annotations

import glob
import logging
import os
import tarfile
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from lmseg.errors import LmsegError

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = ("jpg", "jpeg", "png", "webp")
_TAR_ERRORS = (tarfile.TarError, EOFError, OSError, ValueError)


@dataclass(frozen=True)
class SampleRef:
    """One usable sample of a tar file.

    Attributes:
        tar: the tar file.
        key: the sample key.
        image_offset: byte offset of the image data in the tar file.
        image_size: its length in bytes.
        image_name: the image member's name (for messages).
        caption: the caption, stripped, non-empty.
    """

    tar: Path
    key: str
    image_offset: int
    image_size: int
    image_name: str
    caption: str

    def read_image_bytes(self) -> bytes:
        """The encoded image (one seek and read in the tar file)."""
        with open(self.tar, "rb") as handle:
            handle.seek(self.image_offset)
            return handle.read(self.image_size)


@dataclass
class SkipLog:
    """Counts of skipped inputs by kind, each also logged once with its name.

    Attributes:
        counts: kind -> number (``corrupt_tar``, ``no_image``, ``no_caption``,
            ``empty_caption``, ``bad_caption``, ``non_image_member``, ``bad_image``, ...).
        max_logged: warnings logged per kind (the count goes on).
    """

    counts: Counter = field(default_factory=Counter)
    max_logged: int = 20

    def skip(self, kind: str, what: str, why: str = "") -> None:
        """Count one skipped input and log it (the first ``max_logged`` of each kind)."""
        self.counts[kind] += 1
        if self.counts[kind] <= self.max_logged:
            log.warning("skipped (%s): %s%s", kind, what, f": {why}" if why else "")

    def summary(self) -> str:
        """``"kind: n, ..."`` or ``"nothing skipped"``."""
        return ", ".join(f"{k}: {v}" for k, v in sorted(self.counts.items())) or "nothing skipped"


def list_tars(spec: str | os.PathLike[str] | Sequence[str | os.PathLike[str]]) -> list[Path]:
    """The tar files of ``spec``: a folder (its ``*.tar``, sorted), a glob pattern, a file, or a
    list of those.

    Raises:
        LmsegError: nothing matches.
    """
    if isinstance(spec, (list, tuple)):
        return [p for item in spec for p in list_tars(item)]
    text = os.fspath(spec)
    path = Path(text).expanduser()
    if path.is_dir():
        found = sorted(p for p in path.glob("*.tar") if not p.name.startswith("."))  # not a tar file being written
    elif path.is_file():
        found = [path]
    else:
        found = sorted(Path(p) for p in glob.glob(os.path.expanduser(text)))
    if not found:
        raise LmsegError(f"no webdataset tar files (*.tar) found at {text}; give a folder, a glob such as "
                         "'data/cc3m/{0..9}*.tar', or a file")
    return found


def _split_key(name: str) -> tuple[str, str]:
    folder, _, base = name.rpartition("/")
    stem, dot, ext = base.partition(".")
    return (f"{folder}/{stem}" if folder else stem), (ext.lower() if dot else "")


def _members(path: Path, skips: SkipLog) -> dict[str, dict[str, tarfile.TarInfo]]:
    """key -> extension -> member, for every complete regular member of the tar file."""
    size = path.stat().st_size
    groups: dict[str, dict[str, tarfile.TarInfo]] = {}
    try:
        with tarfile.open(path, "r:") as tar:
            for member in tar:
                if not member.isfile():
                    continue
                if member.offset_data + member.size > size:
                    skips.skip("corrupt_tar", str(path), f"member {member.name} is truncated")
                    break
                key, ext = _split_key(member.name)
                groups.setdefault(key, {})[ext] = member
            end = tar.offset
        if _has_data_after(path, end):  # tarfile stops quietly at a bad header past the first
            skips.skip("corrupt_tar", str(path), f"unreadable tar header at byte {end}; the rest is skipped")
    except _TAR_ERRORS as exc:
        skips.skip("corrupt_tar", str(path), f"{type(exc).__name__}: {exc}"[:200])
    return groups


def _has_data_after(path: Path, offset: int, window: int = 65536) -> bool:
    """Whether non-zero bytes follow ``offset`` (a proper tar ends in zero blocks)."""
    with open(path, "rb") as handle:
        handle.seek(offset)
        return any(handle.read(window))


def _caption(path: Path, member: tarfile.TarInfo) -> str | None:
    with open(path, "rb") as handle:
        handle.seek(member.offset_data)
        raw = handle.read(member.size)
    try:
        return raw.decode("utf-8").strip()
    except UnicodeDecodeError:
        return None


def scan_tar(path: str | os.PathLike[str], skips: SkipLog) -> list[SampleRef]:
    """The usable samples of one tar file, in key order; problems are counted in ``skips``."""
    path = Path(path)
    samples = []
    for key, parts in sorted(_members(path, skips).items()):
        where = f"{path.name}:{key}"
        image_ext = next((e for e in IMAGE_EXTENSIONS if e in parts), None)
        extra = [e for e in parts if e not in (*IMAGE_EXTENSIONS, "txt", "json")]
        for ext in extra:
            skips.skip("non_image_member", f"{where}.{ext}", "not an image, caption or metadata member")
        if image_ext is None:
            skips.skip("no_image", where, f"members {sorted(parts)}")
            continue
        if "txt" not in parts:
            skips.skip("no_caption", where)
            continue
        caption = _caption(path, parts["txt"])
        if caption is None:
            skips.skip("bad_caption", where, "not UTF-8")
            continue
        if not caption:
            skips.skip("empty_caption", where)
            continue
        image = parts[image_ext]
        samples.append(SampleRef(path, key, image.offset_data, image.size, image.name, caption))
    return samples


def iter_tars(tars: Sequence[Path], skips: SkipLog) -> Iterator[SampleRef]:
    """Every usable sample of ``tars``, file by file (one file's index in memory at a time)."""
    for tar in tars:
        yield from scan_tar(tar, skips)
