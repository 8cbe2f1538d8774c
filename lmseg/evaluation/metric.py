"""Semantic-segmentation metrics from an additive confusion matrix (numpy only).

Definition (the mmsegmentation ``IoUMetric`` protocol):

* Pixels whose label equals ``ignore_index`` are dropped, whatever was predicted there.
* All remaining pixels of the whole split go into one ``K x K`` int64 confusion matrix
  ``confusion[g, p]`` = number of pixels of ground-truth class ``g`` predicted as ``p``
  (rows are ground truth, columns are prediction). Scores are computed once, from the summed
  matrix, never averaged per image.
* ``IoU[c] = TP / (TP + FP + FN)``. A class with union 0 (absent from both ground truth and
  prediction over the whole split) has IoU NaN and is left out of every mean. A class that is
  predicted but absent from the ground truth has IoU 0 and *does* lower mIoU. (detectron2's
  ``SemSegEvaluator`` averages only over classes with ground-truth pixels; the two agree on
  full benchmark splits, not on small subsets.)
* ``accuracy[c] = TP / (TP + FN)`` (recall), NaN for classes without ground-truth pixels.
* ``mean_iou`` and ``mean_accuracy`` are means over the non-NaN entries; ``pixel_accuracy`` is
  ``sum(TP) / number of counted pixels``; ``fw_iou`` weights each class's IoU by its share of
  the ground-truth pixels.

All scores are fractions in [0, 1] (reports may print them as percentages). With no counted
pixels at all, every score is NaN.

Because the matrix is a plain sum, metrics of shards, workers or machines merge exactly:
``merged = a + b`` equals one metric updated with all images.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lmseg.errors import LmsegError

__all__ = ["SegmentationMetric", "SegmentationScores"]

_MAX_SHOWN = 10  # bad values listed in an error message


@dataclass(frozen=True, eq=False)
class SegmentationScores:
    """The scores of one evaluation; arrays are read-only.

    Attributes:
        mean_iou: mean of ``iou`` over classes with a non-empty union, in [0, 1] (NaN if none).
        iou: ``(K,)`` float64 per-class IoU in [0, 1]; NaN where a class is absent from both
            the ground truth and the prediction.
        accuracy: ``(K,)`` float64 per-class accuracy (recall) in [0, 1]; NaN where the class
            has no ground-truth pixels.
        mean_accuracy: mean of ``accuracy`` over classes with ground-truth pixels.
        pixel_accuracy: correctly labelled pixels / counted pixels, in [0, 1].
        fw_iou: frequency-weighted IoU, in [0, 1].
        confusion: ``(K, K)`` int64, ``confusion[g, p]`` = pixels of ground-truth class ``g``
            predicted as ``p`` (ignored pixels not counted).
    """

    mean_iou: float
    iou: np.ndarray
    accuracy: np.ndarray
    mean_accuracy: float
    pixel_accuracy: float
    fw_iou: float
    confusion: np.ndarray

    @property
    def num_classes(self) -> int:
        return int(self.confusion.shape[0])

    @property
    def num_pixels(self) -> int:
        """Number of counted (non-ignored) pixels."""
        return int(self.confusion.sum())

    def to_dict(self) -> dict[str, object]:
        """JSON-ready form: floats and lists, NaN written as None, the matrix as nested lists."""
        return {
            "mean_iou": _json_float(self.mean_iou),
            "mean_accuracy": _json_float(self.mean_accuracy),
            "pixel_accuracy": _json_float(self.pixel_accuracy),
            "fw_iou": _json_float(self.fw_iou),
            "num_pixels": self.num_pixels,
            "iou": [_json_float(v) for v in self.iou],
            "accuracy": [_json_float(v) for v in self.accuracy],
            "confusion": self.confusion.tolist(),
        }


class SegmentationMetric:
    """Accumulates a confusion matrix over (prediction, label) pairs and computes the scores.

    Args:
        num_classes: number of classes ``K``; valid class indices are ``0 .. K-1``.
        ignore_index: label value of pixels that are not evaluated (255 for label spaces of
            at most 255 classes; lmseg's readers use 65535 for ADE-847 and PC-459). It must not
            be a valid class index.

    Example:
        >>> metric = SegmentationMetric(150)
        >>> for sample in dataset:
        ...     metric.update(predictor(sample.image), sample.label)
        >>> metric.compute().mean_iou
    """

    def __init__(self, num_classes: int, ignore_index: int = 255) -> None:
        if not isinstance(num_classes, (int, np.integer)) or num_classes < 1:
            raise LmsegError(f"num_classes must be a positive integer, got {num_classes!r}")
        if 0 <= ignore_index < num_classes:
            raise LmsegError(
                f"ignore_index {ignore_index} is a valid class index for {num_classes} classes; "
                "choose a value outside 0..num_classes-1 (e.g. 255, or 65535 above 255 classes)"
            )
        self.num_classes = int(num_classes)
        self.ignore_index = int(ignore_index)
        self._confusion = np.zeros((self.num_classes, self.num_classes), dtype=np.int64)

    @classmethod
    def from_confusion(cls, confusion: np.ndarray, ignore_index: int = 255) -> SegmentationMetric:
        """Rebuild a metric from a saved ``(K, K)`` confusion matrix (e.g. to resume a run)."""
        matrix = np.asarray(confusion)
        if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1] or matrix.shape[0] < 1:
            raise LmsegError(f"a confusion matrix must be square (K, K), got shape {matrix.shape}")
        if not np.issubdtype(matrix.dtype, np.integer) or (matrix < 0).any():
            raise LmsegError("a confusion matrix must hold non-negative integer counts")
        metric = cls(matrix.shape[0], ignore_index)
        metric._confusion += matrix.astype(np.int64)
        return metric

    @property
    def confusion(self) -> np.ndarray:
        """A copy of the ``(K, K)`` int64 matrix accumulated so far (rows GT, columns prediction)."""
        return self._confusion.copy()

    def reset(self) -> None:
        """Forget everything accumulated."""
        self._confusion[:] = 0

    def update(self, prediction: np.ndarray, label: np.ndarray) -> None:
        """Add one image (or a batch) to the matrix.

        Args:
            prediction: integer array of any shape (``(H, W)`` or ``(N, H, W)``) with class
                indices in ``0 .. K-1``.
            label: integer array of the same shape with class indices in ``0 .. K-1`` or
                ``ignore_index``.

        Raises:
            LmsegError: the shapes differ, an array is not integer, a predicted value is out of
                range, or a label value is neither a class index nor ``ignore_index`` (the
                message lists the offending values).
        """
        prediction = np.asarray(prediction)
        label = np.asarray(label)
        if prediction.shape != label.shape:
            raise LmsegError(f"prediction shape {prediction.shape} differs from label shape {label.shape}")
        for name, array in (("prediction", prediction), ("label", label)):
            if not (np.issubdtype(array.dtype, np.integer) or array.dtype == np.bool_):
                raise LmsegError(f"{name} must be an integer array of class indices, got dtype {array.dtype}")
        k = self.num_classes
        bad_pred = _values_outside(prediction, k)
        if bad_pred.size:
            raise LmsegError(f"prediction has values outside 0..{k - 1}: {_show(bad_pred)}")
        valid = label != self.ignore_index
        gt = label[valid].astype(np.int64)
        bad_gt = _values_outside(gt, k)
        if bad_gt.size:
            raise LmsegError(
                f"label has values that are neither a class index (0..{k - 1}) nor the ignore index "
                f"{self.ignore_index}: {_show(bad_gt)}"
            )
        pred = prediction[valid].astype(np.int64)
        self._confusion += np.bincount(gt * k + pred, minlength=k * k).reshape(k, k)

    def merge(self, *others: SegmentationMetric) -> SegmentationMetric:
        """Add the matrices of ``others`` into this metric (in place) and return it."""
        for other in others:
            self._check_compatible(other)
            self._confusion += other._confusion
        return self

    def __add__(self, other: SegmentationMetric) -> SegmentationMetric:
        """A new metric whose matrix is the sum of both; neither operand changes."""
        if not isinstance(other, SegmentationMetric):
            return NotImplemented
        return SegmentationMetric.from_confusion(self._confusion, self.ignore_index).merge(other)

    def __radd__(self, other: object) -> SegmentationMetric:
        """Lets ``sum(metrics)`` work (it starts from the integer 0)."""
        if isinstance(other, int) and other == 0:
            return SegmentationMetric.from_confusion(self._confusion, self.ignore_index)
        return NotImplemented

    def compute(self) -> SegmentationScores:
        """Scores of everything accumulated so far (see the module docstring for definitions)."""
        cm = self._confusion.copy()
        tp = np.diag(cm).astype(np.float64)
        gt_pixels = cm.sum(axis=1).astype(np.float64)
        pred_pixels = cm.sum(axis=0).astype(np.float64)
        union = gt_pixels + pred_pixels - tp
        iou = _safe_divide(tp, union)
        accuracy = _safe_divide(tp, gt_pixels)
        total = gt_pixels.sum()
        present = gt_pixels > 0
        fw_iou = float((gt_pixels[present] / total * iou[present]).sum()) if total > 0 else float("nan")
        for array in (iou, accuracy, cm):
            array.setflags(write=False)
        return SegmentationScores(
            mean_iou=_nanmean(iou),
            iou=iou,
            accuracy=accuracy,
            mean_accuracy=_nanmean(accuracy),
            pixel_accuracy=float(tp.sum() / total) if total > 0 else float("nan"),
            fw_iou=fw_iou,
            confusion=cm,
        )

    def _check_compatible(self, other: SegmentationMetric) -> None:
        if not isinstance(other, SegmentationMetric):
            raise LmsegError(f"can only merge SegmentationMetric objects, got {type(other).__name__}")
        if other.num_classes != self.num_classes:
            raise LmsegError(
                f"cannot merge metrics with different numbers of classes ({self.num_classes} and {other.num_classes})"
            )
        if other.ignore_index != self.ignore_index:
            raise LmsegError(
                f"cannot merge metrics with different ignore indices ({self.ignore_index} and {other.ignore_index})"
            )

    def __repr__(self) -> str:
        return (
            f"SegmentationMetric(num_classes={self.num_classes}, ignore_index={self.ignore_index}, "
            f"pixels={int(self._confusion.sum())})"
        )


def _values_outside(array: np.ndarray, num_classes: int) -> np.ndarray:
    """Sorted unique values of ``array`` that are not in ``0 .. num_classes-1``."""
    if array.size == 0:
        return np.empty(0, dtype=np.int64)
    if array.min() >= 0 and array.max() < num_classes:  # the common case, no extra allocation
        return np.empty(0, dtype=np.int64)
    return np.unique(array[(array < 0) | (array >= num_classes)])


def _show(values: np.ndarray) -> str:
    shown = ", ".join(str(int(v)) for v in values[:_MAX_SHOWN])
    return shown + (f", ... ({values.size} distinct values)" if values.size > _MAX_SHOWN else "")


def _safe_divide(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    out = np.full(numerator.shape, np.nan, dtype=np.float64)
    np.divide(numerator, denominator, out=out, where=denominator > 0)
    return out


def _nanmean(values: np.ndarray) -> float:
    finite = values[~np.isnan(values)]
    return float(finite.mean()) if finite.size else float("nan")


def _json_float(value: float) -> float | None:
    return None if np.isnan(value) else float(value)


def format_percent(value: float | None, digits: int = 2, suffix: str = "%") -> str:
    """``0.4567 -> "45.67%"``; ``"n/a"`` for None or NaN (a class absent everywhere)."""
    return "n/a" if value is None or value != value else f"{100 * value:.{digits}f}{suffix}"
