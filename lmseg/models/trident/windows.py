"""Trident's window boxes on the CLIP token grid (SEEDS 2.1 steps 3 and 7).

The windows themselves (mmseg's slide grid: the last window flush with the border,
row-major) and the overlap-averaged splicing come from :mod:`lmseg.engine.tiler`; Trident
splices token maps, so its pixel boxes are turned into canvas cells here.
"""

from __future__ import annotations

from lmseg.engine.tiler import Box

__all__ = ["token_boxes"]


def token_boxes(boxes: list[Box], patch: int, ratio: int = 1) -> list[Box]:
    """Pixel boxes -> boxes in canvas cells: ``coordinate // patch * ratio``.

    Raises:
        ValueError: a box is not aligned to the ``patch``-pixel token grid.
    """
    out = []
    for box in boxes:
        if any(v % patch for v in box):
            raise ValueError(f"window {box} is not aligned to the {patch}-pixel token grid")
        out.append(tuple(v // patch * ratio for v in box))
    return out
