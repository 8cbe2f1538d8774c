"""Sub-image windows and splicing their outputs into one canvas (SEEDS 2.1 steps 3 and 7).

Boxes are ``(y1, x1, y2, x2)`` in pixels, end-exclusive. The grid is mmseg's slide grid:
``max(H - crop + stride - 1, 0) // stride + 1`` windows per axis, the last one flush with the
border, row-major order.
"""

from __future__ import annotations

import torch

Box = tuple[int, int, int, int]


def window_boxes(height: int, width: int, crop: int, stride: int) -> list[Box]:
    """The windows covering a ``height`` x ``width`` image, row-major.

    Raises:
        ValueError: the image is smaller than the crop on either side.
    """
    if height < crop or width < crop:
        raise ValueError(f"image {height}x{width} is smaller than the {crop}-pixel window")
    rows = max(height - crop + stride - 1, 0) // stride + 1
    cols = max(width - crop + stride - 1, 0) // stride + 1
    boxes = []
    for r in range(rows):
        for c in range(cols):
            y2 = min(r * stride + crop, height)
            x2 = min(c * stride + crop, width)
            boxes.append((max(y2 - crop, 0), max(x2 - crop, 0), y2, x2))
    return boxes


def crop_windows(image: torch.Tensor, boxes: list[Box]) -> torch.Tensor:
    """``(1, C, H, W)`` -> ``(len(boxes), C, crop, crop)``, the windows stacked in box order."""
    return torch.cat([image[:, :, y1:y2, x1:x2] for y1, x1, y2, x2 in boxes], dim=0)


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


def splice(window_maps: torch.Tensor, cell_boxes: list[Box], canvas_hw: tuple[int, int]) -> torch.Tensor:
    """Sum window feature maps into one canvas and divide by the overlap count.

    Args:
        window_maps: ``(B, C, h, w)``, one map per window, ``h = r2 - r1``, ``w = c2 - c1``.
        cell_boxes: the B windows' boxes ``(r1, c1, r2, c2)`` in canvas cells (see :func:`token_boxes`).
        canvas_hw: ``(Hc, Wc)`` the canvas size in cells.

    Returns:
        ``(1, C, Hc, Wc)``, same dtype; cells no window covers are NaN (0 / 0; never the case
        for :func:`window_boxes`, whose windows cover the whole image).
    """
    if window_maps.shape[0] != len(cell_boxes):
        raise ValueError(f"{window_maps.shape[0]} window maps but {len(cell_boxes)} boxes")
    channels = window_maps.shape[1]
    canvas = window_maps.new_zeros(1, channels, *canvas_hw)
    count = window_maps.new_zeros(1, 1, *canvas_hw)
    for i, (r1, c1, r2, c2) in enumerate(cell_boxes):
        canvas[0, :, r1:r2, c1:c2] += window_maps[i]
        count[0, :, r1:r2, c1:c2] += 1
    return canvas / count
