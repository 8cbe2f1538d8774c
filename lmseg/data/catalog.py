"""The catalog of benchmarks: name -> Benchmark, and the one-call opener (not to be confused with
:mod:`lmseg.registry`, the names of segmenters)."""

from __future__ import annotations

from pathlib import Path

from lmseg.data.ade import ADE150, ADE847
from lmseg.data.benchmark import Benchmark
from lmseg.data.coco import COCO_OBJECT, COCO_STUFF171
from lmseg.data.dataset import SegmentationDataset
from lmseg.data.driving import CAMVID11, CITYSCAPES19
from lmseg.data.pascal import PC59, PC459, VOC20, VOC21
from lmseg.errors import LmsegError
from lmseg.vocab import Vocabulary

__all__ = ["BENCHMARKS", "available_datasets", "get_benchmark", "open_dataset"]

BENCHMARKS: dict[str, Benchmark] = {
    b.name: b for b in (ADE150, ADE847, PC59, PC459, VOC20, VOC21, COCO_STUFF171, COCO_OBJECT, CITYSCAPES19, CAMVID11)
}


def available_datasets() -> list[str]:
    """Names accepted by :func:`open_dataset`."""
    return list(BENCHMARKS)


def get_benchmark(name: str) -> Benchmark:
    """The benchmark definition ``name`` (classes, layouts, split sizes)."""
    try:
        return BENCHMARKS[name]
    except KeyError:
        raise LmsegError(f"unknown dataset {name!r}; known datasets: {', '.join(BENCHMARKS)}") from None


def open_dataset(
    name: str,
    root: str | Path,
    *,
    split: str | None = None,
    layout: str = "auto",
    vocabulary: Vocabulary | None = None,
) -> SegmentationDataset:
    """Open a benchmark split from its prepared layout.

    Args:
        name: one of :func:`available_datasets` (``ade150``, ``voc21``, ...).
        root: the datasets root (the folder holding ``ADEChallengeData2016``, ``VOCdevkit``,
            ``coco``, ...) or the dataset's own folder.
        split: defaults to the benchmark's evaluation split.
        layout: a layout name or ``"auto"``.
        vocabulary: class names replacing the built-in list (same length, label order).

    Example:
        >>> dataset = open_dataset("ade150", "/data")
        >>> sample = dataset[0]   # sample.image (H, W, 3) uint8, sample.label (H, W) uint8
    """
    return get_benchmark(name).open(root, split=split, layout=layout, vocabulary=vocabulary)
