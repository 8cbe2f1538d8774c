"""The per-sample step of evaluation, as a plain function.

A local loop (:func:`lmseg.evaluation.runner.evaluate_dataset`), a web handler or a distributed
executor call the same step; saved state, progress and reporting stay in the loops around it::

    metric = SegmentationMetric(len(vocabulary), ignore_index)   # one per worker
    for sample in my_samples:
        evaluate_sample(segmenter, sample, vocabulary, metric)      # image in, matrix updated
    total = sum(worker_metrics)                                     # matrices add up

The segmentation counterpart is :func:`lmseg.inference.outputs.segment_image`.
"""

from __future__ import annotations

import numpy as np

from lmseg.data.dataset import Sample
from lmseg.errors import LmsegError
from lmseg.evaluation.metric import SegmentationMetric
from lmseg.inference.segmenter import Segmenter
from lmseg.vocab import Vocabulary

__all__ = ["SampleFailure", "evaluate_sample"]


class SampleFailure(LmsegError):
    """A sample could not be decoded, or the segmenter's answer for it is unusable."""


def evaluate_sample(segmenter: Segmenter, sample: Sample, vocabulary: Vocabulary, metric: SegmentationMetric) -> None:
    """Predict ``sample.image`` into ``vocabulary`` and add the result to ``metric``'s confusion matrix.

    Raises:
        SampleFailure: the label map has another shape than the label, the class count differs
            from the vocabulary's, or it holds values outside the classes (the metric is unchanged).
    """
    result = segmenter.predict(sample.image, vocabulary)
    label_map = np.asarray(result.label_map)
    if label_map.shape != sample.label.shape:
        raise SampleFailure(
            f"sample {sample.sample_id}: the segmenter returned a {label_map.shape} label map for a "
            f"{sample.label.shape} label (it must predict at the image's resolution)"
        )
    if len(result.class_names) != len(vocabulary):
        raise SampleFailure(
            f"sample {sample.sample_id}: the segmenter returned {len(result.class_names)} classes for a "
            f"{len(vocabulary)}-class vocabulary"
        )
    try:
        metric.update(label_map, sample.label)
    except LmsegError as exc:
        raise SampleFailure(f"sample {sample.sample_id} ({sample.image_path}): {exc}") from None

