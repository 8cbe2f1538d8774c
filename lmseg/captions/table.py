"""Image-caption pairs from a table (CSV or Parquet with an image-path column and a caption
column), and captions from a text file (one per line).

For small sets (a folder of images and their captions). Relative image paths are taken from
the table's folder. Rows with an empty or missing caption are counted and skipped; rows whose
image file does not exist are too (an image that exists but cannot be decoded is found, counted
and skipped when it is used). Text (CSV, caption files) must be UTF-8; a leading byte-order mark
is dropped, and a byte that is not UTF-8 is an error naming the file, line and column; a field
may be of any length.
"""

from __future__ import annotations

import codecs
import csv
import io
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from lmseg.captions.webdataset import SkipLog
from lmseg.errors import LmsegError


@dataclass(frozen=True)
class FileSample:
    """One pair of a table: an image file and its caption."""

    path: Path
    caption: str

    @property
    def image_name(self) -> str:
        return str(self.path)

    def read_image_bytes(self) -> bytes:
        return self.path.read_bytes()


def _columns(path: Path, image_column: str, caption_column: str) -> tuple[list[object], list[object]]:
    if path.suffix.lower() == ".parquet":
        import pyarrow as pa

        from lmseg.llm.tables import read_parquet

        try:
            table = read_parquet(path, [image_column, caption_column])
        except (pa.ArrowException, OSError) as exc:
            raise LmsegError(f"cannot read the columns {image_column!r} and {caption_column!r} of {path}: "
                             f"{exc!s:.200}") from None
        return table.column(image_column).to_pylist(), table.column(caption_column).to_pylist()
    text = "".join(utf8_lines(path))
    limit = csv.field_size_limit(max(csv.field_size_limit(), len(text)))  # a caption may be long
    try:
        reader = csv.DictReader(io.StringIO(text, newline=""))
        missing = [c for c in (image_column, caption_column) if c not in (reader.fieldnames or [])]
        if missing:
            raise LmsegError(f"{path} has no column(s) {', '.join(missing)} (columns: {reader.fieldnames}); "
                             "set data.image_column / data.caption_column")
        rows = list(reader)
    except csv.Error as exc:
        raise LmsegError(f"{path}, line {reader.line_num}: not a CSV row ({exc})") from None
    finally:
        csv.field_size_limit(limit)
    return [r[image_column] for r in rows], [r[caption_column] for r in rows]


def utf8_lines(path: str | os.PathLike[str]) -> Iterator[str]:
    """The lines of a UTF-8 text file, with their line ends, streamed (a leading byte-order mark dropped).

    Raises:
        LmsegError: the file cannot be read, or a line is not UTF-8 (the message names the line
            and column of the first bad byte).
    """
    path = Path(path)
    try:
        with open(path, "rb") as handle:
            for number, raw in enumerate(handle, start=1):
                try:
                    yield (raw.removeprefix(codecs.BOM_UTF8) if number == 1 else raw).decode("utf-8")
                except UnicodeDecodeError as exc:
                    column = len(raw[: exc.start].decode("utf-8", "replace")) + 1
                    raise LmsegError(f"{path}, line {number}, column {column}: byte 0x{raw[exc.start]:02x} is not "
                                     "UTF-8 (latin-1 or another encoding?); save the file as UTF-8") from None
    except OSError as exc:
        raise LmsegError(f"cannot read {path}: {exc.strerror or exc}") from None


def read_caption_table(
    path: str | os.PathLike[str], skips: SkipLog, *, image_column: str = "image", caption_column: str = "caption"
) -> list[FileSample]:
    """The usable pairs of a CSV (``.csv``, UTF-8, with a header row) or Parquet table.

    Raises:
        LmsegError: the table is missing, unreadable, or lacks a column.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise LmsegError(f"caption table {path} does not exist")
    images, captions = _columns(path, image_column, caption_column)
    samples = []
    for row, (image, caption) in enumerate(zip(images, captions), start=1):
        where = f"{path.name} row {row}"
        text = str(caption).strip() if caption is not None else ""
        if not text:
            skips.skip("empty_caption", where)
            continue
        image_path = (path.parent / str(image)).resolve() if image else None
        if image_path is None or not image_path.is_file():
            skips.skip("no_image", where, f"image file {image_path} not found")
            continue
        samples.append(FileSample(image_path, text))
    return samples
