"""File handling shared by the converters: idempotent writes, image linking, a summary."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from lmseg.data.image_io import read_label_file, write_label_file
from lmseg.data.label_map import LabelMap
from lmseg.data.layout import Layout
from lmseg.data.pairing import Pair
from lmseg.io.atomic import atomic_path

__all__ = ["ConversionSummary", "convert_labels", "convert_split", "link_or_copy"]


@dataclass
class ConversionSummary:
    """What one conversion did: files written, and files left alone because they existed."""

    written: int = 0
    skipped: int = 0
    linked_images: int = 0
    notes: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        text = f"{self.written} label file(s) written, {self.skipped} already there"
        if self.linked_images:
            text += f", {self.linked_images} image(s) linked or copied"
        return text


def link_or_copy(source: Path, target: Path) -> bool:
    """Make ``target`` a hard link to ``source`` (a copy across file systems).

    Returns:
        False if ``target`` already existed (nothing done), True otherwise.
    """
    if target.exists():
        return False
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(source, target)
    except OSError:
        with atomic_path(target) as tmp:
            shutil.copy2(source, tmp)
    return True


def convert_labels(
    jobs: Iterable[tuple[Path, Path]],
    label_map: LabelMap,
    summary: ConversionSummary,
    *,
    overwrite: bool = False,
    read: Callable[[Path], object] = read_label_file,
) -> None:
    """Decode each ``source`` with ``label_map`` and write it to ``target``.

    Targets that exist are skipped unless ``overwrite``; each write is atomic, so an
    interrupted run leaves no half-written file and a rerun finishes the job. Stored values
    that ``label_map`` rejects raise LmsegError naming the source file.

    Args:
        jobs: ``(source label file, target label file)`` pairs.
        label_map: the conversion (stored value -> class index or ignore).
        summary: counts are added here.
        overwrite: rewrite existing targets.
        read: how a source file becomes an ``(H, W)`` integer array.
    """
    for source, target in jobs:
        if target.exists() and not overwrite:
            summary.skipped += 1
            continue
        write_label_file(target, label_map.decode(read(source), source=source))
        summary.written += 1


def convert_split(
    pairs: Sequence[Pair],
    images_dir: Path,
    label_map: LabelMap,
    *,
    layout: Layout,
    out_root: Path,
    split: str,
    overwrite: bool = False,
    read: Callable[[Path], object] = read_label_file,
    summary: ConversionSummary | None = None,
) -> ConversionSummary:
    """Write one prepared split: every pair's label converted, every image linked.

    Labels go to ``layout.labels_dir(out_root, split) / f"{sample_id}{layout.label_suffix}"``
    (:func:`convert_labels`); images are hard-linked (or copied) to the same path relative to
    ``images_dir`` under ``layout.images_dir(out_root, split)``, unless that is ``images_dir``.

    Args:
        pairs: the raw samples; ``image_path`` lies under ``images_dir``.
        images_dir: the raw image folder of the split.
        label_map, overwrite, read: as :func:`convert_labels`.
        layout: the prepared layout the readers will open.
        out_root: the datasets root of the prepared copy.
        split: the split name.
        summary: counts are added here (default: a new summary).
    """
    summary = summary if summary is not None else ConversionSummary()
    labels_out = layout.labels_dir(out_root, split)
    convert_labels(
        ((p.label_path, labels_out / f"{p.sample_id}{layout.label_suffix}") for p in pairs),
        label_map,
        summary,
        overwrite=overwrite,
        read=read,
    )
    images_out = layout.images_dir(out_root, split)
    if images_out.resolve() != images_dir.resolve():
        summary.linked_images = sum(
            link_or_copy(p.image_path, images_out / p.image_path.relative_to(images_dir)) for p in pairs
        )
    return summary
