"""Where one prepared form of a benchmark keeps its files, as data.

A :class:`Layout` says, relative to the datasets root, where the images and labels of a
split are, how their file names end, how the pairs are formed (see
:mod:`lmseg.data.pairing`) and how the stored label values decode. Every benchmark reader is a
short list of layouts (see :mod:`lmseg.data.ade` and its siblings), so no reader has code of
its own.

Paths may contain ``{split}``, replaced by the split name (``validation``, ``val``, ...).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from lmseg.data.label_map import LabelMap
from lmseg.data.pairing import Pair, pair_folders, pair_from_ids

__all__ = ["Layout"]


@dataclass(frozen=True)
class Layout:
    """One prepared on-disk form of a benchmark.

    Attributes:
        name: short name shown in reports (``detectron2``, ``mmseg``, ...).
        folder: the dataset's folder under the datasets root (``ADEChallengeData2016``).
        images: image folder relative to ``folder``.
        labels: label folder relative to ``folder``.
        label_map: decoding of the stored label values.
        label_suffix: what follows the sample id in a label file name.
        image_suffixes: what may follow the sample id in an image file name.
        pairing: ``"both"`` (the folders hold exactly the split), ``"labels"`` (the label
            folder defines the split; the image folder is shared) or ``"ids"`` (``ids_file``
            lists the split).
        ids_file: the split list relative to ``folder`` when ``pairing == "ids"``.
        recursive: images and labels sit in sub-folders (Cityscapes cities).
    """

    name: str
    folder: str
    images: str
    labels: str
    label_map: LabelMap
    label_suffix: str = ".png"
    image_suffixes: tuple[str, ...] = (".jpg",)
    pairing: Literal["both", "labels", "ids"] = "both"
    ids_file: str | None = None
    recursive: bool = False

    def dataset_dir(self, root: Path) -> Path:
        """``root/folder``, or ``root`` itself when the user pointed at the dataset's folder."""
        if root.name == Path(self.folder).name and not (root / self.folder).exists():
            return root
        return root / self.folder

    def images_dir(self, root: Path, split: str) -> Path:
        return self.dataset_dir(root) / self.images.format(split=split)

    def labels_dir(self, root: Path, split: str) -> Path:
        return self.dataset_dir(root) / self.labels.format(split=split)

    def is_present(self, root: Path, split: str) -> bool:
        """Whether this layout's label folder exists (used to pick a layout automatically)."""
        return self.labels_dir(root, split).is_dir()

    def describe(self, split: str) -> str:
        """The expected paths, for error messages."""
        text = f"{self.folder}/{self.images.format(split=split)} + {self.folder}/{self.labels.format(split=split)}"
        if self.ids_file:
            text += f" + {self.folder}/{self.ids_file.format(split=split)}"
        return f"{self.name}: {text}"

    def find_pairs(self, root: Path, split: str) -> list[Pair]:
        """The split's pairs under ``root``; raises LmsegError naming what is missing."""
        images, labels = self.images_dir(root, split), self.labels_dir(root, split)
        if self.pairing == "ids":
            assert self.ids_file is not None and len(self.image_suffixes) == 1
            return pair_from_ids(
                self.dataset_dir(root) / self.ids_file.format(split=split),
                images,
                labels,
                image_suffix=self.image_suffixes[0],
                label_suffix=self.label_suffix,
            )
        return pair_folders(
            images,
            labels,
            label_suffix=self.label_suffix,
            image_suffixes=self.image_suffixes,
            recursive=self.recursive,
            require_all_images=self.pairing == "both",
        )
