"""A standard benchmark: its classes, its splits and the layouts it can be prepared in."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from lmseg.data.dataset import SegmentationDataset
from lmseg.data.layout import Layout
from lmseg.errors import LmsegError
from lmseg.vocab import ClassEntry, Vocabulary, get_vocabulary

__all__ = ["Benchmark", "builtin_classes", "with_background"]


def builtin_classes(name: str) -> Callable[[], Vocabulary]:
    """The built-in vocabulary ``name``, loaded when a dataset is opened."""
    return lambda: get_vocabulary(name)


def with_background(name: str) -> Callable[[], Vocabulary]:
    """The built-in vocabulary ``name`` with a ``background`` class put first (COCO-Object-81)."""

    def build() -> Vocabulary:
        base = get_vocabulary(name)
        return Vocabulary(f"{name}+background", (ClassEntry(("background",)), *base.classes))

    return build


@dataclass(frozen=True)
class Benchmark:
    """A benchmark that :func:`lmseg.data.open_dataset` can open.

    Attributes:
        name: registry name (``ade150``).
        title: human name (``ADE20K-150``).
        num_classes: ``K`` of the decoded labels.
        classes: builds the class list in label order (length ``K``).
        layouts: the prepared forms it is read from, in the order ``layout="auto"`` tries them.
        default_split: the evaluation split.
        split_sizes: number of images of each full split, used by ``prepare_data`` checks.
        background_index: the class meaning "background", if the label space has one.
    """

    name: str
    title: str
    num_classes: int
    classes: Callable[[], Vocabulary]
    layouts: tuple[Layout, ...]
    default_split: str
    split_sizes: Mapping[str, int] = field(default_factory=dict)
    background_index: int | None = None

    def layout(self, name: str) -> Layout:
        for layout in self.layouts:
            if layout.name == name:
                return layout
        known = ", ".join(layout.name for layout in self.layouts)
        raise LmsegError(f"{self.title} has no layout {name!r}; known layouts: {known}")

    def find_layout(self, root: Path, split: str) -> Layout:
        """The first layout whose label folder exists under ``root``."""
        for layout in self.layouts:
            if layout.is_present(root, split):
                return layout
        expected = "\n  ".join(layout.describe(split) for layout in self.layouts)
        raise LmsegError(
            f"{self.title} ({self.name}), split {split!r}: no prepared label folder found under {root}. "
            f"Expected one of:\n  {expected}\n(see `python -m pipelines.prepare_data --help` to build it from "
            f"the official download)"
        )

    def open(
        self,
        root: str | Path,
        *,
        split: str | None = None,
        layout: str = "auto",
        vocabulary: Vocabulary | None = None,
    ) -> SegmentationDataset:
        """Open the split under the datasets root ``root``.

        Args:
            root: the folder that contains the dataset's folder (``ADEChallengeData2016``...),
                or that folder itself.
            split: defaults to :attr:`default_split`.
            layout: a layout name, or ``"auto"`` for the first one present.
            vocabulary: class names to use instead of the built-in list (e.g. with more
                synonyms); must have :attr:`num_classes` entries in label order.
        """
        root = Path(root)
        if not root.is_dir():
            raise LmsegError(f"{self.title}: datasets root {root} does not exist or is not a folder")
        split = split or self.default_split
        chosen = self.find_layout(root, split) if layout == "auto" else self.layout(layout)
        return SegmentationDataset(
            self.name,
            chosen.find_pairs(root, split),
            vocabulary if vocabulary is not None else self.classes(),
            chosen.label_map,
            background_index=self.background_index,
            layout=chosen.name,
        )
