"""The predictor contract shared by every model (LMSeg, Trident, MROVSeg, ...).

A segmenter takes an image and a vocabulary chosen at call time, and returns a label map at
the image's resolution. Evaluation, the ``segment`` command, the runners of
:mod:`lmseg.engine.runners` and web front ends use only this interface, so any model that
implements it works with all of them. The contract, in full:

* ``predict(image, vocabulary, *, return_scores=False) -> Segmentation``: the label map
  (``(H, W)`` int32 indices into the vocabulary) and, if asked for, the scores.
* ``logits(image, vocabulary) -> np.ndarray``: ``(N, H, W)`` float32 **per-class
  probabilities in [0, 1]** (despite the historical name: after each method's sigmoid or
  softmax, window / view averaging and resizing to the image, but before any background
  threshold, refinement or argmax). ``scores()`` is the same under its accurate name.
* ``settings() -> dict``: a JSON-able description of every setting that affects the output
  (model config, weights, resize, windows, thresholds, prompts, ...). Evaluation records it in
  reports and in the identity of saved progress, so a changed setting is never mixed with
  results of another.

Segmenter names are registered in one place: the ``SEGMENTERS`` dict of each method package
under ``lmseg/models/`` (generated from its variants table; :func:`lmseg.registry.create_segmenter`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from lmseg.errors import LmsegError
from lmseg.inference.image_input import ImageInput
from lmseg.vocab import Vocabulary, get_vocabulary, vocabulary_from_names

VocabularyInput = Vocabulary | Sequence[str] | str


def as_vocabulary(vocabulary: VocabularyInput) -> Vocabulary:
    """A :class:`Vocabulary` from a Vocabulary, a built-in name (``"ade150"``), or a list of
    class names (synonyms after ``,`` or ``;`` within an item, e.g. ``["sofa, couch", "cat"]``).

    Raises:
        LmsegError: unknown name, empty list, or repeated classes.
    """
    if isinstance(vocabulary, Vocabulary):
        return vocabulary
    if isinstance(vocabulary, str):
        return get_vocabulary(vocabulary)
    return vocabulary_from_names(vocabulary)


@dataclass(frozen=True)
class Segmentation:
    """The result of segmenting one image.

    Attributes:
        label_map: ``(H, W)`` int32 class indices into ``class_names``, at the input image's
            resolution.
        class_names: primary names of the vocabulary, in class-index order.
        scores: ``(N, H, W)`` float32 per-class scores in [0, 1] (N = len(class_names)), or
            None when not requested.
    """

    label_map: np.ndarray
    class_names: tuple[str, ...]
    scores: np.ndarray | None = None


def segmentation_from_scores(scores, vocabulary: Vocabulary, *, return_scores: bool = False) -> Segmentation:
    """The :class:`Segmentation` of ``scores``: an ``(N, H, W)`` torch tensor of per-class scores
    (any device) for the N classes of ``vocabulary``; the label map is the argmax over classes,
    the scores are returned as float32 numpy when asked for."""
    return Segmentation(
        label_map=scores.argmax(dim=0).int().cpu().numpy(),
        class_names=tuple(vocabulary.names),
        scores=scores.cpu().numpy().astype(np.float32, copy=False) if return_scores else None,
    )


class Segmenter(Protocol):
    """Anything that segments an image into the classes of a vocabulary chosen at call time
    (the contract is in the module docstring)."""

    def predict(self, image: ImageInput, vocabulary: VocabularyInput, *, return_scores: bool = False) -> Segmentation:
        """Segment one image (path, PIL or HWC uint8 RGB array) into ``vocabulary``."""
        ...

    def logits(self, image: ImageInput, vocabulary: VocabularyInput) -> np.ndarray:
        """``(N, H, W)`` float32 per-class probabilities in [0, 1] at the image's resolution,
        before any background threshold, refinement or argmax (one channel per vocabulary class)."""
        ...

    def settings(self) -> dict[str, Any]:
        """JSON-able description of every setting that affects the output (recorded in reports)."""
        ...


def scores(segmenter: Segmenter, image: ImageInput, vocabulary: VocabularyInput) -> np.ndarray:
    """``segmenter.logits(image, vocabulary)`` under its accurate name: ``(N, H, W)`` float32
    per-class probabilities in [0, 1]."""
    return segmenter.logits(image, vocabulary)


def segmenter_settings(segmenter: Segmenter) -> dict[str, Any]:
    """``segmenter.settings()`` as JSON types (paths, tuples, numpy scalars, dataclasses converted).

    Raises:
        LmsegError: the object has no ``settings()`` method (it is not a Segmenter).
    """
    method = getattr(segmenter, "settings", None)
    if not callable(method):
        raise LmsegError(
            f"{type(segmenter).__name__} is not a Segmenter: it lacks settings() (see lmseg.inference.segmenter)"
        )
    value = method()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = dataclasses.asdict(value)
    return jsonable(dict(value))


def jsonable(value: object) -> object:
    """``value`` with paths, tuples, numpy scalars and other objects turned into JSON types."""
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        items = [jsonable(v) for v in value]
        return sorted(items, key=str) if isinstance(value, (set, frozenset)) else items
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return jsonable(dataclasses.asdict(value))
    return str(value)
