"""Evaluation: the confusion-matrix metric (mIoU, accuracies, fwIoU). Numpy only, no torch."""

from lmseg.evaluation.metric import SegmentationMetric, SegmentationScores

__all__ = ["SegmentationMetric", "SegmentationScores"]
