"""The id tables of the official conversions, read from ``tables/*.tsv`` (see its README)."""

from __future__ import annotations

from functools import cache
from importlib import resources

__all__ = ["ade847_train_ids", "cityscapes_train_ids", "cocostuff_indices"]


def _rows(file_name: str) -> list[list[str]]:
    text = (resources.files("lmseg.data.prepare") / "tables" / file_name).read_text(encoding="utf-8")
    return [line.split("\t") for line in text.splitlines()[1:] if line.strip()]


@cache
def ade847_train_ids() -> dict[int, int]:
    """ADE20K-2021 class id (``R // 10 * 256 + G`` of a ``*_seg.png``) -> A-847 train id 0..846."""
    return {int(ade_id): int(train_id) for train_id, ade_id, _ in _rows("ade847_ids.tsv")}


@cache
def cocostuff_indices() -> dict[int, int]:
    """COCO category id (1..182) -> COCO-Stuff-171 index 0..170; indices 0..79 are the things."""
    return {int(category_id): int(index) for index, category_id, _ in _rows("cocostuff171_ids.tsv")}


@cache
def cityscapes_train_ids() -> dict[int, int]:
    """Cityscapes labelId (0..33) -> train id 0..18, or 255 for classes not evaluated."""
    table = {}
    for _, label_id, train_id in _rows("cityscapes_labels.tsv"):
        if int(label_id) >= 0:
            table[int(label_id)] = 255 if int(train_id) in (-1, 255) else int(train_id)
    return table
