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
  class, value = round(255 * score) (scores in [0, 1]; all 0 for classes early rejection
  removed);
* (memory) a segmenter that works in chunks of classes (:class:`~lmseg.inference.classes.ClassBudget`)
  holds no map per class at the image's size; score maps (``scores=True``) and other
  segmenters do, so those images are bounded by pixels x classes (``max_class_pixels``,
  :data:`MAX_CLASS_PIXELS` by default): a larger image is refused, by name, before decoding;
* when class early rejection removed classes (``inference.max_classes``): ``<name>_kept.txt``,
  ``index<TAB>name`` of the classes it kept for this image (the rule is in ``protocol.json``).

``classes.txt`` in the output folder lists ``index<TAB>name`` for the vocabulary, and
``protocol.json`` records what decides the outputs (:mod:`lmseg.inference.protocol`). Inputs are
never overwritten: an output folder that is the input folder or lies inside it is refused.
An image that cannot be read or segmented is reported by name and skipped; the others are
still done (:attr:`SegmentSummary.failed`). Each image goes through
:func:`segment_image`, the step a web handler or a distributed executor
calls too; this module is the local loop around it and the writer of the files.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
from PIL import Image

from lmseg.data.image_io import write_label_file
from lmseg.data.pairing import IMAGE_SUFFIXES
from lmseg.errors import LmsegError
from lmseg.inference.classes import ClassBudget
from lmseg.inference.image_input import ImageLimits, as_rgb_array, class_pixel_limits
from lmseg.inference.overlay import draw_overlay
from lmseg.inference.segmenter import Segmentation, Segmenter, VocabularyInput, as_vocabulary
from lmseg.io.atomic import atomic_path, write_text
from lmseg.io.decoding import DecodeFailure, decode_in_workers
from lmseg.io.progress import progress_bar
from lmseg.io.shards import shard_range
from lmseg.vocab import Vocabulary

__all__ = [
    "MAX_CLASS_PIXELS", "SegmentSummary", "request_limits", "check_output_dir", "find_images", "segment_files", "segment_image", "write_run_files",
    "write_segmentation",
]


#: Pixels x classes of one image whose work keeps a map per class at the image's size (4 GB of
#: float32 scores).
MAX_CLASS_PIXELS = 1_000_000_000


def request_limits(segmenter: Segmenter, num_classes: int, *, scores: bool,
                   max_class_pixels: int = MAX_CLASS_PIXELS) -> ImageLimits | None:
    """The images one segment request may hold: the segmenter's own ``image_limits`` and, when
    a map per class is kept at the image's size (``scores``, or a segmenter that does not work
    in chunks of classes), at most ``max_class_pixels // num_classes`` pixels."""
    limits = getattr(segmenter, "image_limits", None)
    if not scores and isinstance(getattr(segmenter, "inference", None), ClassBudget):
        return limits
    return class_pixel_limits(limits, num_classes, max_class_pixels)


@dataclass
class SegmentSummary:
    """What :func:`segment_files` did.

    Attributes:
        written: the output files, in input order.
        done: input images segmented.
        failed: ``(input path, message)`` of every image that was skipped.
        seconds: wall time from the run's protocol record (which encodes the vocabulary: minutes
            for thousands of classes on a CPU, shown by the text encoder's progress bar) to the
            last image; building the segmenter before the call is not included.
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
    """Refuse an output folder that is a file, the input folder (or the folder of an input image) or inside it.

    Raises:
        LmsegError: naming both folders.
    """
    if Path(output_dir).exists() and not Path(output_dir).is_dir():
        raise LmsegError(f"output {output_dir} is an existing file, not a folder; choose a folder (it is created)")
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
    if result.kept is not None:
        kept_path = base.with_name(base.name + "_kept.txt")
        write_text(kept_path, "".join(f"{i}\t{names[i]}\n" for i in result.kept))
        written.append(kept_path)
    if scores:
        if result.scores is None:
            raise LmsegError("score maps were asked for but the segmenter returned none")
        folder = base.with_name(base.name + "_scores")
        folder.mkdir(parents=True, exist_ok=True)
        for index, name in enumerate(names):  # one class at a time: no copy of all the scores
            path = folder / f"{index:03d}_{_slug(name)}.png"
            quantised = np.round(np.clip(result.scores[index], 0.0, 1.0) * 255).astype(np.uint8)
            _save_image(path, Image.fromarray(quantised, "L"))
            written.append(path)
    return written


def segment_image(segmenter: Segmenter, image: np.ndarray, vocabulary: Vocabulary, output_dir: str | Path, stem: str,
                  *, scores: bool = False) -> list[Path]:
    """Segment one ``(H, W, 3)`` uint8 RGB image and write its outputs (label map, overlay, scores).

    Returns:
        The written paths (layout: :func:`lmseg.inference.outputs.write_segmentation`).

    Raises:
        LmsegError: the segmenter refuses the image (too large, too small, ...).
    """
    result = segmenter.predict(image, vocabulary, return_scores=scores)
    return write_segmentation(output_dir, stem, image, result, scores=scores)


def segment_files(
    segmenter: Segmenter,
    source: str | Path,
    vocabulary: VocabularyInput,
    output_dir: str | Path,
    *,
    scores: bool = False,
    batch_size: int = 4,
    num_workers: int = 2,
    progress: bool | None = None,
    shard: tuple[int, int] | None = None,
    on_failure: Callable[[Path, str], None] | None = None,
    options: Mapping[str, object] | None = None,
    max_class_pixels: int = MAX_CLASS_PIXELS,
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
        shard: ``(index, count)``: only that contiguous block of the sorted images
            (:mod:`lmseg.io.shards`).
        on_failure: called with ``(path, message)`` as soon as an image fails (e.g. to print it).
        options: the builder options of ``segmenter`` (weights), for ``protocol.json``.
        max_class_pixels: the bound of :func:`request_limits`.

    Returns:
        A summary; images that failed (unreadable, refused by the model: too large, too
        small, extreme aspect ratio, ...) are listed in ``failed`` and the others are still done.

    Raises:
        LmsegError: bad input folder, no images, an output folder that would mix with the
            inputs or is a file, or a bad vocabulary (before anything is written).
    """
    from lmseg.inference.protocol import protocol_record

    vocab = as_vocabulary(vocabulary)
    images = find_images(source)
    if shard is not None:
        images = [images[k] for k in shard_range(len(images), *shard)]
    check_output_dir(source, output_dir)
    output_dir = Path(output_dir)
    started = time.perf_counter()  # the record encodes the vocabulary (minutes for thousands of classes): counted
    write_run_files(output_dir, vocab, protocol_record(segmenter, vocab, options=options))
    limits = request_limits(segmenter, len(vocab), scores=scores, max_class_pixels=max_class_pixels)
    summary = SegmentSummary()
    with progress_bar(len(images), "segmenting", enabled=progress) as bar:
        try:
            read = partial(read_rgb, limits=limits)
            decoded = decode_in_workers([p for p, _ in images], read, num_workers=num_workers,
                                        batch_size=batch_size)
            for position, image in decoded:
                path, stem = images[position]
                message = segment_one(segmenter, image, vocab, output_dir, stem, scores, summary)
                if message is None:
                    summary.done.append(path)
                else:
                    summary.failed.append((path, message))
                    if on_failure is not None:
                        on_failure(path, message)
                bar.update(1)
        finally:
            summary.seconds = time.perf_counter() - started
    return summary


def write_run_files(output_dir: Path, vocabulary: Vocabulary, record: Mapping[str, object]) -> None:
    """The files that describe a segment run: ``classes.txt`` (``index<TAB>name``) and
    ``protocol.json`` (``record``, from :func:`lmseg.inference.protocol.protocol_record`)."""
    write_text(output_dir / "classes.txt", "".join(f"{i}\t{n}\n" for i, n in enumerate(vocabulary.names)))
    write_text(output_dir / "protocol.json", json.dumps(record, indent=2, default=str) + "\n")


def segment_one(segmenter: Segmenter, image: np.ndarray | DecodeFailure, vocab: Vocabulary, output_dir: Path,
                 stem: str, scores: bool, summary: SegmentSummary) -> str | None:
    """Run the step for one decoded image; the failure message, or None when its outputs are written.

    Any exception of the model on one image (LmsegError, or e.g. a ValueError / RuntimeError
    on a size it cannot handle) is that image's failure: the rest of the folder goes on.
    """
    if isinstance(image, DecodeFailure):
        return image.message
    try:
        summary.written += segment_image(segmenter, image, vocab, output_dir, stem, scores=scores)
    except LmsegError as exc:
        return str(exc)
    except (ValueError, RuntimeError, MemoryError) as exc:
        return f"the model failed on this image ({type(exc).__name__}: {str(exc).splitlines()[0][:300]})"
    return None


def read_rgb(path: Path, limits: ImageLimits | None) -> np.ndarray:
    """The image at ``path`` as HWC uint8 RGB; its size is checked against ``limits`` before decoding."""
    return as_rgb_array(path, limits)


def _save_image(path: Path, image: Image.Image) -> None:
    with atomic_path(path) as tmp:
        image.save(tmp, format="PNG")


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_.") or "class"
