"""Segmenting image files and writing the results: label maps, overlays, score maps.

The same in Python in two lines::

    from lmseg import create_segmenter; from lmseg.inference.outputs import segment_files
    segment_files(create_segmenter("trident_vitb16", ...), "photos/", ["cat", "dog", "sofa"], "out/")

For each input image ``<name>.<ext>`` (folders are searched recursively; the sub-folder
structure is kept under the output folder) it writes:

* ``<name>_label.png``: the label map, pixel value = class index into the vocabulary
  (8-bit grayscale; 16-bit when the vocabulary has more than 255 classes);
* ``<name>_overlay.png``: the image with class colours blended in and a legend of the classes
  present (largest first, with their share of the image);
* with ``scores=True``: ``<name>_scores/<index>_<class>.png``, one 8-bit grayscale map per
  class, value = round(255 * score) (scores in [0, 1]).

``classes.txt`` in the output folder lists ``index<TAB>name`` for the vocabulary, and
``protocol.json`` records what decides the outputs (:mod:`lmseg.inference.protocol`). Inputs are
never overwritten: an output folder that is the input folder or lies inside it is refused.
An image that cannot be read or segmented is reported by name and skipped; the others are
still done (:attr:`SegmentSummary.failed`).
"""

from __future__ import annotations

import json
import os
import re
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from lmseg.data.image_io import write_label_file
from lmseg.data.pairing import IMAGE_SUFFIXES
from lmseg.errors import LmsegError
from lmseg.inference.image_input import ImageLimits, as_rgb_array
from lmseg.inference.overlay import draw_overlay
from lmseg.inference.segmenter import Segmentation, VocabularyInput, as_vocabulary

__all__ = ["SegmentSummary", "check_output_dir", "find_images", "segment_files", "write_segmentation"]


@dataclass
class SegmentSummary:
    """What :func:`segment_files` did.

    Attributes:
        written: the output files, in input order.
        done: input images segmented.
        failed: ``(input path, message)`` of every image that was skipped.
        seconds: wall time.
    """

    written: list[Path] = field(default_factory=list)
    done: list[Path] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.failed


def find_images(source: str | Path) -> list[tuple[Path, str]]:
    """The images to segment, as ``(path, output stem)`` pairs.

    Args:
        source: one image file, or a folder (searched recursively for ``IMAGE_SUFFIXES``,
            hidden files skipped).

    Returns:
        Pairs sorted by path; the output stem is the path relative to the folder without its
        suffix (``street/img_01``), or the suffix kept as ``img_01_jpg`` where two files share
        a stem.

    Raises:
        LmsegError: ``source`` does not exist, or the folder holds no images.
    """
    source = Path(source)
    if source.is_file():
        return [(source, source.stem)]
    if not source.is_dir():
        raise LmsegError(f"input {source} does not exist")
    suffixes = tuple(s.lower() for s in IMAGE_SUFFIXES)
    paths = sorted(
        p
        for p in source.rglob("*")
        if p.is_file()
        and p.suffix.lower() in suffixes
        and not any(part.startswith(".") for part in p.relative_to(source).parts)
    )
    if not paths:
        raise LmsegError(f"folder {source} holds no images (looked for {', '.join(IMAGE_SUFFIXES)})")
    stems = [p.relative_to(source).with_suffix("").as_posix() for p in paths]
    repeated = {s for s in stems if stems.count(s) > 1}
    return [
        (p, f"{s}_{p.suffix.lstrip('.').lower()}" if s in repeated else s) for p, s in zip(paths, stems)
    ]


def check_output_dir(source: str | Path, output_dir: str | Path) -> None:
    """Refuse an output folder that is the input folder (or the folder of an input image) or lies inside it.

    Raises:
        LmsegError: naming both folders.
    """
    source = Path(source).resolve()
    input_dir = source if source.is_dir() else source.parent
    output = Path(output_dir).resolve()
    if output == input_dir or input_dir in output.parents:
        raise LmsegError(
            f"output folder {output_dir} is {'the input folder' if output == input_dir else 'inside the input folder'} "
            f"{input_dir}; choose a folder outside it, so that outputs never mix with or overwrite inputs"
        )


def write_segmentation(
    output_dir: str | Path,
    stem: str,
    image: np.ndarray,
    result: Segmentation,
    *,
    scores: bool = False,
    alpha: float = 0.5,
) -> list[Path]:
    """Write the label map, the overlay and (with ``scores``) the score maps of one image.

    Args:
        output_dir: folder for the outputs (created).
        stem: output name without suffix, may contain ``/`` for sub-folders.
        image: ``(H, W, 3)`` uint8 RGB, the segmented image.
        result: the segmentation; ``result.scores`` is needed when ``scores`` is True.

    Returns:
        The written paths.
    """
    output_dir = Path(output_dir)
    base = output_dir / stem
    base.parent.mkdir(parents=True, exist_ok=True)
    names = result.class_names
    label_map = np.asarray(result.label_map)
    dtype = np.uint8 if len(names) <= 255 else np.uint16
    label_path = base.with_name(base.name + "_label.png")
    write_label_file(label_path, label_map.astype(dtype))
    overlay_path = base.with_name(base.name + "_overlay.png")
    _save_image(overlay_path, draw_overlay(image, label_map, names, alpha=alpha))
    written = [label_path, overlay_path]
    if scores:
        if result.scores is None:
            raise LmsegError("score maps were asked for but the segmenter returned none")
        folder = base.with_name(base.name + "_scores")
        folder.mkdir(parents=True, exist_ok=True)
        quantised = np.round(np.clip(result.scores, 0.0, 1.0) * 255).astype(np.uint8)
        for index, name in enumerate(names):
            path = folder / f"{index:03d}_{_slug(name)}.png"
            _save_image(path, Image.fromarray(quantised[index], "L"))
            written.append(path)
    return written


def segment_files(
    segmenter: object,
    source: str | Path,
    vocabulary: VocabularyInput,
    output_dir: str | Path,
    *,
    scores: bool = False,
    batch_size: int = 4,
    num_workers: int = 2,
    progress: bool | None = None,
    options: Mapping[str, object] | None = None,
) -> SegmentSummary:
    """Segment one image or every image of a folder and write the outputs.

    Args:
        segmenter: a :class:`~lmseg.inference.Segmenter`.
        source: an image file or a folder of images.
        vocabulary: a :class:`~lmseg.vocab.Vocabulary`, a built-in name (``"ade150"``) or a list
            of class names (``["cat", "sofa, couch"]``).
        output_dir: where the outputs go (layout in the module docstring).
        scores: also write per-class score maps.
        batch_size: images decoded per loader batch.
        num_workers: decoding processes (0 = decode in this process).
        progress: show a tqdm bar (default: when stderr is a terminal).
        options: the builder options of ``segmenter`` (weights), for ``protocol.json``.

    Returns:
        A summary; images that failed are listed in ``failed`` and the others are still done.

    Raises:
        LmsegError: bad input folder, no images, an output folder that would mix with the
            inputs, or a bad vocabulary (before anything is written).
    """
    from tqdm import tqdm

    from lmseg.inference.protocol import protocol_record

    vocab = as_vocabulary(vocabulary)
    images = find_images(source)
    check_output_dir(source, output_dir)
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    _write_text(output_dir / "classes.txt", "".join(f"{i}\t{n}\n" for i, n in enumerate(vocab.names)))
    record = protocol_record(segmenter, vocab, options=options)
    _write_text(output_dir / "protocol.json", json.dumps(record, indent=2, default=str) + "\n")
    summary = SegmentSummary()
    started = time.perf_counter()
    bar = tqdm(
        total=len(images),
        desc="segmenting",
        unit="img",
        disable=not sys.stderr.isatty() if progress is None else not progress,
    )
    try:
        limits = getattr(segmenter, "image_limits", None)
        for position, decoded in _decoded(images, limits, batch_size=batch_size, num_workers=num_workers):
            path, stem = images[position]
            try:
                if isinstance(decoded, str):
                    raise LmsegError(decoded)
                result = segmenter.predict(decoded, vocab, return_scores=scores)
                summary.written += write_segmentation(output_dir, stem, decoded, result, scores=scores)
                summary.done.append(path)
            except LmsegError as exc:
                summary.failed.append((path, str(exc)))
            bar.update(1)
    finally:
        bar.close()
        summary.seconds = time.perf_counter() - started
    return summary


class _ReadImages:
    def __init__(self, paths: Sequence[Path], limits: ImageLimits | None) -> None:
        self.paths = list(paths)
        self.limits = limits

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> tuple[int, np.ndarray | str]:
        try:
            return index, as_rgb_array(self.paths[index], self.limits)
        except LmsegError as exc:
            return index, str(exc)


def _collate(batch: list) -> list:
    return list(batch)


def _decoded(images: list[tuple[Path, str]], limits: ImageLimits | None, *, batch_size: int, num_workers: int):
    from torch.utils.data import DataLoader

    loader = DataLoader(
        _ReadImages([p for p, _ in images], limits),
        batch_size=max(1, batch_size),
        num_workers=num_workers,
        collate_fn=_collate,
        prefetch_factor=2 if num_workers > 0 else None,
    )
    for batch in loader:
        yield from batch


def _save_image(path: Path, image: Image.Image) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        image.save(tmp, format="PNG")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _write_text(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.replace(tmp, path)


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_.") or "class"
