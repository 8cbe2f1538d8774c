"""A labelled split on disk, decoded one sample at a time.

:class:`SegmentationDataset` holds only the list of file pairs; each access decodes one image
and one label map, so iterating over a split of any length keeps memory flat. It has
``__len__`` and ``__getitem__``, which is all a PyTorch ``DataLoader`` needs to decode in
worker processes (this module itself does not import torch).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lmseg.data.image_io import read_image, read_label_file
from lmseg.data.label_map import LabelMap
from lmseg.data.pairing import Pair
from lmseg.errors import LmsegError
from lmseg.vocab import Vocabulary

__all__ = ["Sample", "SegmentationDataset"]


@dataclass(frozen=True, eq=False)
class Sample:
    """One decoded labelled image.

    Attributes:
        sample_id: the file name without its suffix, relative to the split's folder
            (``ADE_val_00000001``; ``frankfurt/frankfurt_000000_000294`` for Cityscapes).
        image: ``(H, W, 3)`` uint8 RGB.
        label: ``(H, W)`` class indices ``0 .. K-1``, or the dataset's ``ignore_index`` (255,
            dtype uint8; 65535, dtype uint16, for datasets with more than 255 classes).
        image_path: the image file.
        label_path: the label file.
    """

    sample_id: str
    image: np.ndarray
    label: np.ndarray
    image_path: Path
    label_path: Path


class SegmentationDataset:
    """Pairs of (image, label) files plus how to decode the labels and what the classes are.

    Args:
        name: dataset name (``ade150``, or the user's).
        pairs: the files, in evaluation order.
        vocabulary: class ``i`` of the vocabulary is label value ``i``; its length must be
            ``label_map.num_classes``.
        label_map: decoding of the stored label values.
        background_index: the class that means "background" in this label space (VOC-21 and
            COCO-Object: 0), or None when there is none.
        layout: name of the on-disk layout the pairs came from (for reports).

    Raises:
        LmsegError: the vocabulary length differs from the number of classes of the labels.
    """

    def __init__(
        self,
        name: str,
        pairs: Sequence[Pair],
        vocabulary: Vocabulary,
        label_map: LabelMap,
        *,
        background_index: int | None = None,
        layout: str = "",
    ) -> None:
        if len(vocabulary) != label_map.num_classes:
            raise LmsegError(
                f"dataset {name}: the class list {vocabulary.name!r} has {len(vocabulary)} classes but the labels "
                f"have {label_map.num_classes} (decoding: {label_map.description}); give a class list of "
                f"{label_map.num_classes} names in label order"
            )
        self.name = name
        self.pairs: tuple[Pair, ...] = tuple(pairs)
        self.vocabulary = vocabulary
        self.label_map = label_map
        self.background_index = background_index
        self.layout = layout

    @property
    def num_classes(self) -> int:
        return self.label_map.num_classes

    @property
    def ignore_index(self) -> int:
        """Label value of pixels that are not evaluated (255, or 65535 above 255 classes)."""
        return self.label_map.ignore_index

    @property
    def class_names(self) -> list[str]:
        """Primary class names in label order."""
        return self.vocabulary.names

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> Sample:
        """Decode sample ``index`` (image and label).

        Raises:
            LmsegError: a file is unreadable or truncated, the label holds values outside the
                class range, or image and label sizes differ (the message names the files).
        """
        pair = self.pairs[index]
        image = read_image(pair.image_path)
        label = self.read_label(index)
        if image.shape[:2] != label.shape:
            raise LmsegError(
                f"image {pair.image_path} is {image.shape[1]}x{image.shape[0]} but its label {pair.label_path} is "
                f"{label.shape[1]}x{label.shape[0]} (width x height); they must have the same size"
            )
        return Sample(pair.sample_id, image, label, pair.image_path, pair.label_path)

    def __iter__(self) -> Iterator[Sample]:
        for index in range(len(self)):
            yield self[index]

    def read_label(self, index: int) -> np.ndarray:
        """Only the decoded label of sample ``index``: ``(H, W)`` class indices or ignore."""
        path = self.pairs[index].label_path
        return self.label_map.decode(read_label_file(path), source=path)

    def read_image(self, index: int) -> np.ndarray:
        """Only the image of sample ``index``: ``(H, W, 3)`` uint8 RGB."""
        return read_image(self.pairs[index].image_path)

    def __repr__(self) -> str:
        return (
            f"SegmentationDataset({self.name!r}, {len(self)} samples, {self.num_classes} classes, "
            f"ignore_index={self.ignore_index}, layout={self.layout!r})"
        )
