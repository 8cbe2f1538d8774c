"""Checking a prepared split: every pair readable, labels in range, sizes equal, count right."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from lmseg.data.dataset import SegmentationDataset
from lmseg.data.image_io import image_size
from lmseg.errors import LmsegError

__all__ = ["CheckReport", "check_dataset"]


@dataclass
class CheckReport:
    """The result of :func:`check_dataset`.

    Attributes:
        samples: pairs found.
        expected: pairs in the full official split, if known.
        problems: one message per broken sample (file named), at most ``max_problems``.
        problem_count: number of broken samples (may exceed ``len(problems)``).
        class_pixels: ``(K,)`` int64 pixels per class over the checked labels.
        ignored_pixels: pixels with the ignore index.
    """

    samples: int
    expected: int | None
    problems: list[str] = field(default_factory=list)
    problem_count: int = 0
    class_pixels: np.ndarray | None = None
    ignored_pixels: int = 0

    @property
    def ok(self) -> bool:
        return self.problem_count == 0

    @property
    def complete(self) -> bool:
        return self.expected is None or self.samples == self.expected


def check_dataset(
    dataset: SegmentationDataset,
    *,
    expected: int | None = None,
    max_problems: int = 20,
    progress: Callable[[int], None] | None = None,
) -> CheckReport:
    """Decode every label (one at a time) and compare its size with its image's header.

    Broken samples are collected rather than raised, so one run lists every bad file.
    Image pixels are not decoded (a truncated image shows up when it is evaluated).

    Args:
        dataset: the split to check.
        expected: number of pairs of the full split, if known.
        max_problems: how many problem messages to keep.
        progress: called with 1 after each sample (e.g. a tqdm bar's ``update``).
    """
    report = CheckReport(samples=len(dataset), expected=expected)
    class_pixels = np.zeros(dataset.num_classes, dtype=np.int64)
    for index, pair in enumerate(dataset.pairs):
        try:
            label = dataset.read_label(index)
            height, width = image_size(pair.image_path)
            if label.shape != (height, width):
                raise LmsegError(
                    f"{pair.label_path} is {label.shape[1]}x{label.shape[0]} but {pair.image_path} is {width}x{height}"
                )
        except LmsegError as exc:
            report.problem_count += 1
            if len(report.problems) < max_problems:
                report.problems.append(str(exc))
        else:
            valid = label != dataset.ignore_index
            report.ignored_pixels += int(label.size - valid.sum())
            class_pixels += np.bincount(label[valid].ravel(), minlength=dataset.num_classes)
        if progress is not None:
            progress(1)
    report.class_pixels = class_pixels
    return report
