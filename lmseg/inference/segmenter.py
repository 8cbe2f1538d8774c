"""The predictor interface shared by every model (LMSeg, Trident, ...).

A segmenter takes an image and a vocabulary chosen at call time, and returns a label map at
the image's resolution. Evaluation and the ``segment`` command use only this interface, so
any model that implements it works with them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

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


class Segmenter(Protocol):
    """Anything that segments an image into the classes of a vocabulary chosen at call time."""

    def predict(self, image: ImageInput, vocabulary: VocabularyInput, *, return_scores: bool = False) -> Segmentation:
        """Segment one image (path, PIL or HWC uint8 RGB array) into ``vocabulary``."""
        ...

    def logits(self, image: ImageInput, vocabulary: VocabularyInput) -> np.ndarray:
        """``(N, H, W)`` float32 per-class scores at the image's resolution, before any
        background threshold or argmax (one channel per vocabulary class)."""
        ...
