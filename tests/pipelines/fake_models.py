"""Segmenters for the pipeline tests, registered through the real registry.

Fakes are for what a random-weight model cannot show: a model that returns the ground truth
(so the report must say mIoU 1.0), a deterministic model whose exact confusion matrix the
tests recompute independently, and a model that crashes or kills its process mid-run.
``conftest.py`` adds this module to ``lmseg.registry.EXTRA_PACKAGES``.
"""

from __future__ import annotations

import hashlib
import os

import numpy as np

from lmseg.data import open_dataset
from lmseg.inference import Segmentation, as_rgb_array, as_vocabulary


def image_key(image: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(image).tobytes()).hexdigest()


class PixelSegmenter:
    """Class of a pixel = (red // 16 + green // 64 + offset) mod N: deterministic and image-dependent.

    ``crash_after`` (or the env var ``FAKE_CRASH_AFTER``) makes the call after that many
    predictions fail: ``mode="raise"`` raises RuntimeError, ``mode="interrupt"`` raises
    KeyboardInterrupt (Ctrl-C), ``mode="exit"`` kills the process with ``os._exit(137)`` (like
    ``kill -9``: no cleanup runs). Neither is part of
    ``settings()``, so a crashed run and a healthy one have the same identity.
    """

    def __init__(
        self, threshold: float = 0.0, crash_after: int | None = None, mode: str = "raise", offset: int = 0,
        attributes: str | None = None,
    ) -> None:
        self.threshold = threshold
        self.attributes = attributes
        self.offset = offset
        env = os.environ.get("FAKE_CRASH_AFTER")
        self.crash_after = crash_after if crash_after is not None else (int(env) if env else None)
        self.mode = os.environ.get("FAKE_CRASH_MODE", mode)
        self.calls = 0

    def settings(self) -> dict:
        return {
            "resize": 336,
            "window": [336, 224],
            "background_threshold": self.threshold,
            "attributes": self.attributes,
        }

    def label_map(self, image: np.ndarray, n: int) -> np.ndarray:
        rgb = as_rgb_array(image).astype(np.int32)
        return ((rgb[:, :, 0] // 16 + rgb[:, :, 1] // 64 + self.offset) % n).astype(np.int32)

    def predict(self, image, vocabulary, *, return_scores: bool = False) -> Segmentation:
        if self.crash_after is not None and self.calls >= self.crash_after:
            if self.mode == "exit":
                os._exit(137)
            if self.mode == "interrupt":
                raise KeyboardInterrupt
            raise RuntimeError(f"injected crash after {self.calls} predictions")
        self.calls += 1
        vocab = as_vocabulary(vocabulary)
        label_map = self.label_map(image, len(vocab))
        scores = None
        if return_scores:
            scores = np.zeros((len(vocab), *label_map.shape), np.float32)
            np.put_along_axis(scores, label_map[None], 1.0, axis=0)
            scores = 0.1 + 0.8 * scores
        return Segmentation(label_map, tuple(vocab.names), scores)

    def logits(self, image, vocabulary) -> np.ndarray:
        return self.predict(image, vocabulary, return_scores=True).scores


class GroundTruthSegmenter:
    """Returns the label of the dataset image it is given (ignored pixels predicted as 0)."""

    def __init__(self, dataset: str, root: str) -> None:
        self.labels = {}
        for sample in open_dataset(dataset, root):
            label = sample.label.astype(np.int32)
            self.labels[image_key(sample.image)] = label
        self.ignore = open_dataset(dataset, root).ignore_index

    def settings(self) -> dict:
        return {"oracle": True}

    def predict(self, image, vocabulary, *, return_scores: bool = False) -> Segmentation:
        rgb = as_rgb_array(image)
        label = self.labels[image_key(rgb)].copy()
        label[label == self.ignore] = 0
        return Segmentation(label, tuple(as_vocabulary(vocabulary).names))

    def logits(self, image, vocabulary):
        raise NotImplementedError


class WrongSizeSegmenter(PixelSegmenter):
    def predict(self, image, vocabulary, *, return_scores: bool = False) -> Segmentation:
        result = super().predict(image, vocabulary)
        return Segmentation(result.label_map[:-1], result.class_names)


SEGMENTERS = {
    "fake_pixel": PixelSegmenter,
    "fake_oracle": GroundTruthSegmenter,
    "fake_wrong_size": WrongSizeSegmenter,
}


class OutOfRangeSegmenter(PixelSegmenter):
    def predict(self, image, vocabulary, *, return_scores: bool = False) -> Segmentation:
        result = super().predict(image, vocabulary)
        return Segmentation(result.label_map + len(result.class_names), result.class_names)


SEGMENTERS["fake_out_of_range"] = OutOfRangeSegmenter


class PickySegmenter(PixelSegmenter):
    """Refuses images wider than 8x their height with a ValueError, as a model's own size check would."""

    def predict(self, image, vocabulary, *, return_scores: bool = False) -> Segmentation:
        rgb = as_rgb_array(image)
        if rgb.shape[1] > 8 * rgb.shape[0]:
            raise ValueError(f"aspect ratio {rgb.shape[1] / rgb.shape[0]:.0f}:1 is not supported")
        return super().predict(rgb, vocabulary, return_scores=return_scores)


SEGMENTERS["fake_picky"] = PickySegmenter
