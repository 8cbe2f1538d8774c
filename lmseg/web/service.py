"""The page's request handler as a plain object: image + class text + options -> result.

:class:`SegmentService` holds one segmenter, built once and reused by every request. A
request (:meth:`SegmentService.segment`) is checked against :class:`~lmseg.web.limits.WebLimits`
before any model work, then runs the same per-image step as the ``segment`` command:
``segmenter.predict(image, vocabulary, return_scores=True)`` followed by
:func:`lmseg.inference.outputs.write_segmentation`, which writes the label PNG and the overlay
(with its legend) that the page offers for download.

Text embeddings are cached per vocabulary (and attribute table) by the segmenters themselves,
in memory and on disk (:class:`lmseg.text.embedder.TextEmbedder`), so a repeated class list
costs no text encoding; parsed class lists are memoised here. Requests run one at a time on
one worker thread; a request whose model call runs past ``time_limit_s`` is answered with an
error at once, and the call is left to finish in the background (a running torch call cannot
be interrupted) before the next one starts.
"""

from __future__ import annotations

import concurrent.futures
import functools
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lmseg.errors import LmsegError
from lmseg.inference import Segmentation, Segmenter
from lmseg.inference.outputs import write_segmentation
from lmseg.inference.overlay import draw_overlay
from lmseg.text.table import AttributeTable, open_attribute_table
from lmseg.vocab import Vocabulary, builtin_vocabularies, get_vocabulary, parse_class_list
from lmseg.web.limits import WebLimits, read_upload
from lmseg.web.render import ClassRow, class_rows, legend_html, shrink

__all__ = ["PageResult", "SegmentService"]

DISPLAY_SIDE = 768  # long side of the images shown on the page (downloads keep full resolution)
KEEP_REQUESTS = 32  # download folders kept; older ones are deleted (the page has handed them out by then)


@dataclass(frozen=True)
class PageResult:
    """Everything the page shows for one request.

    Attributes:
        overlay: ``(h, w, 3)`` uint8 RGB, the class colours blended over the image (no legend
            drawn in: the page shows its own), long side at most ``DISPLAY_SIDE``.
        rows: one :class:`~lmseg.web.render.ClassRow` per class, in vocabulary order.
        legend: the legend as HTML.
        heat: ``(N, h, w)`` uint8 per-class scores at the overlay's size (255 = score 1).
        label_path: the label PNG at full resolution (pixel value = class index).
        overlay_path: the overlay PNG at full resolution, with its legend.
        vocabulary: the vocabulary used.
        seconds: wall time of the request.
    """

    overlay: np.ndarray
    rows: list[ClassRow]
    legend: str
    heat: np.ndarray
    label_path: Path
    overlay_path: Path
    vocabulary: Vocabulary
    seconds: float


class SegmentService:
    """One segmenter behind the page.

    Args:
        segmenter: any :class:`~lmseg.inference.Segmenter` (built once by the caller).
        model_name: its registry name, shown on the page.
        limits: request bounds.
        output_root: folder for the per-request downloads (default: a new temporary folder,
            deleted by :meth:`close`); only the last ``KEEP_REQUESTS`` requests' files are kept.
        demo_weights: True for random weights; the page then says the output is not meaningful.
    """

    def __init__(
        self,
        segmenter: Segmenter,
        model_name: str,
        *,
        limits: WebLimits = WebLimits(),
        output_root: str | Path | None = None,
        demo_weights: bool = False,
    ) -> None:
        self.segmenter = segmenter
        self.model_name = model_name
        self.limits = limits
        self.demo_weights = demo_weights
        self._own_root = output_root is None
        self.output_root = Path(output_root) if output_root else Path(tempfile.mkdtemp(prefix="lmseg-web-"))
        self._worker = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="lmseg-web")
        self._count_lock = threading.Lock()
        self._count = 0

    @property
    def uses_attribute_table(self) -> bool:
        """Whether the model takes an attribute table (every lmseg method does; a segmenter
        without an ``attribute_table`` attribute does not)."""
        return hasattr(self.segmenter, "attribute_table")

    def offered_vocabularies(self) -> list[tuple[str, int]]:
        """The built-in vocabularies within ``limits.max_classes``, with their sizes."""
        sizes = [(name, len(get_vocabulary(name))) for name in builtin_vocabularies()]
        return [(name, size) for name, size in sizes if size <= self.limits.max_classes]

    def vocabulary(self, classes: str | None, builtin: str | None = None) -> Vocabulary:
        """The vocabulary of a request: the typed class list, or a built-in vocabulary (one of the two).

        Classes are separated by commas or new lines, synonyms of one class by ``;``.

        Raises:
            LmsegError: both or neither given, a malformed class list, a name longer than
                :data:`lmseg.vocab.vocabulary.MAX_NAME_CHARS` (the rule of every front end), an
                unknown built-in name, or more classes than ``limits.max_classes``.
        """
        typed = (classes or "").strip()
        if builtin:
            if typed:
                raise LmsegError(f"both classes and the vocabulary {builtin!r} were given; clear the classes to use "
                                 "the vocabulary, or pick \"my classes\" to use the classes")
            if builtin not in builtin_vocabularies():
                raise LmsegError(f"unknown vocabulary {builtin!r}; known: {', '.join(builtin_vocabularies())}")
            vocab = get_vocabulary(builtin)
        else:
            if not typed:
                raise LmsegError('type at least one class, e.g. "cat, dog, sofa;couch" (or pick a vocabulary)')
            vocab = _parse_classes(typed)
        if len(vocab) > self.limits.max_classes:
            raise LmsegError(
                f"{len(vocab)} classes asked for; this page segments into at most {self.limits.max_classes} "
                "(start it with a larger --max-classes)"
            )
        return vocab

    def segment(
        self,
        image: str | Path | None,
        classes: str | None = "",
        *,
        builtin: str | None = None,
        attribute_table: str | Path | None = None,
    ) -> PageResult:
        """Segment an uploaded image file into the requested classes.

        Args:
            image: path of the uploaded image file.
            classes: classes separated by commas or new lines, synonyms after ``;``; leave it
                empty with ``builtin``.
            builtin: name of a built-in vocabulary (``ade150``, ``voc21``, ...), or None.
            attribute_table: a stage-1 Parquet table for this class list, or None.

        Raises:
            LmsegError: every problem a user can fix, with a message for the page.
        """
        started = time.perf_counter()
        vocab = self.vocabulary(classes, builtin)
        attributes = self._attributes(attribute_table)
        if image is None:
            raise LmsegError("no image was received; upload an image or click one of the samples")
        rgb = read_upload(image, self.limits, len(vocab))
        result = self._run_limited(rgb, vocab, attributes)
        return self._page_result(rgb, result, vocab, started)

    def _run_limited(self, rgb: np.ndarray, vocab: Vocabulary, attributes: AttributeTable | None) -> Segmentation:
        """Predict on the worker thread; the time limit counts from the moment the model starts."""
        limit = self.limits.time_limit_s
        running = threading.Event()

        def job() -> Segmentation:
            running.set()
            return self._predict(rgb, vocab, attributes)

        future = self._worker.submit(job)
        if not running.wait(timeout=limit):  # still busy with an abandoned request
            future.cancel()
            raise LmsegError(f"the model is still busy with an earlier request that ran past {limit:g} s; try again")
        try:
            return future.result(timeout=limit)
        except concurrent.futures.TimeoutError:
            raise LmsegError(
                f"segmenting took longer than this page's limit of {limit:g} s and was abandoned; "
                "try a smaller image or fewer classes"
            ) from None

    def close(self) -> None:
        """Stop the worker thread (waits for a running request); delete a temporary output folder."""
        self._worker.shutdown(wait=True)
        if self._own_root:
            shutil.rmtree(self.output_root, ignore_errors=True)

    def _attributes(self, table: str | Path | None) -> AttributeTable | None:
        if table is None:
            return None
        if not self.uses_attribute_table:
            raise LmsegError(f"{self.model_name} uses no attribute table; remove the table and run again")
        return open_attribute_table(table)

    def _predict(self, rgb: np.ndarray, vocab: Vocabulary, attributes: AttributeTable | None) -> Segmentation:
        """The model call, on the worker thread (the only thread that touches the segmenter)."""
        if not self.uses_attribute_table:
            return self.segmenter.predict(rgb, vocab, return_scores=True)
        default = self.segmenter.attribute_table
        self.segmenter.attribute_table = attributes if attributes is not None else default
        try:
            return self.segmenter.predict(rgb, vocab, return_scores=True)
        finally:
            self.segmenter.attribute_table = default

    def _page_result(self, rgb: np.ndarray, result: Segmentation, vocab: Vocabulary, started: float) -> PageResult:
        with self._count_lock:
            self._count += 1
            folder = self.output_root / f"request-{self._count:06d}"
            stale = self.output_root / f"request-{self._count - KEEP_REQUESTS:06d}"
        shutil.rmtree(stale, ignore_errors=True)
        label_path, overlay_path = write_segmentation(folder, "segmentation", rgb, result)[:2]
        rows = class_rows(result.label_map, result.scores, result.class_names)
        small_rgb = shrink(rgb, DISPLAY_SIDE)
        small_labels = _shrink_labels(result.label_map, small_rgb.shape[:2])
        overlay = np.asarray(draw_overlay(small_rgb, small_labels, result.class_names, legend=False))
        if result.scores is None:  # a segmenter that returns no scores: no heat maps
            heat = np.zeros((0, *overlay.shape[:2]), np.uint8)
        else:
            heat = np.stack([shrink(_to_uint8(s), DISPLAY_SIDE) for s in result.scores])
        return PageResult(
            overlay=overlay, rows=rows, legend=legend_html(rows), heat=heat, label_path=label_path,
            overlay_path=overlay_path, vocabulary=vocab, seconds=time.perf_counter() - started,
        )


@functools.lru_cache(maxsize=64)
def _parse_classes(text: str) -> Vocabulary:
    """A typed class list: classes separated by commas or new lines, synonyms by ``;``."""
    return parse_class_list(",".join(text.splitlines()))


def _to_uint8(scores: np.ndarray) -> np.ndarray:
    return np.round(np.clip(scores, 0.0, 1.0) * 255).astype(np.uint8)


def _shrink_labels(label_map: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour resize of an ``(H, W)`` label map to ``size`` = ``(h, w)``."""
    height, width = label_map.shape
    rows = np.minimum((np.arange(size[0]) + 0.5) * height / size[0], height - 1).astype(np.int64)
    cols = np.minimum((np.arange(size[1]) + 0.5) * width / size[1], width - 1).astype(np.int64)
    return label_map[rows[:, None], cols[None, :]]
