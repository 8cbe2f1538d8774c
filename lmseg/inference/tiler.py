"""Sliding windows over an image and overlap-averaged stitching of their outputs.

Used by every method that runs a fixed-size network over a larger image (LMSeg's test
protocol, Trident's sub-images; MROVSeg can use it the same way):

1. :func:`window_grid` gives the windows: ``ceil((L - s) / stride) + 1`` per axis, starting at
   ``0, stride, 2 * stride, ...``, the last one moved back to lie flush with the border (so no
   window sticks out and the whole image is covered); row-major order. This is mmseg's "slide"
   grid.
2. :func:`crop_windows` cuts them out of an ``(1, C, H, W)`` tensor; :func:`batch_ranges`
   splits them into batches for the network.
3. :class:`Stitcher` sums each window's output map into a canvas and counts how many windows
   cover each cell; :meth:`Stitcher.result` divides (the mean over the covering windows).
   :func:`stitch` does it for all windows at once.

Boxes are ``(y1, x1, y2, x2)``, end-exclusive, in pixels (or in any cell unit, as long as the
maps and the canvas use the same one). A method that stitches feature maps (Trident's and
MROVSeg's CLIP token maps) cuts its windows in pixels and stitches at the token grid:
:func:`token_boxes` turns the pixel boxes into canvas cells.

>>> boxes = window_grid(100, 150, window=64, stride=43)
>>> stitcher = Stitcher(channels=N, canvas_hw=(100, 150))
>>> for batch in batch_ranges(len(boxes), 8):
...     maps = net(crop_windows(image, boxes[batch]))          # (b, N, 64, 64)
...     for m, box in zip(maps, boxes[batch]): stitcher.add(m, box)
>>> probs = stitcher.result()                                  # (N, 100, 150)
"""

from __future__ import annotations

import math

import torch

Box = tuple[int, int, int, int]

__all__ = ["Box", "Stitcher", "batch_ranges", "crop_windows", "stitch", "token_boxes", "window_grid",
           "window_starts"]


def window_starts(length: int, window: int, stride: int) -> list[int]:
    """Start offsets along one axis; the last window ends exactly at ``length``.

    Raises:
        ValueError: ``length < window`` (enlarge or pad the image first), or ``stride < 1``.
    """
    if stride < 1:
        raise ValueError(f"the window stride must be at least 1, got {stride}")
    if length < window:
        raise ValueError(f"a side of {length} pixels is smaller than the {window}-pixel window")
    count = math.ceil((length - window) / stride) + 1
    return [min(i * stride, length - window) for i in range(count)]


def window_grid(height: int, width: int, window: int, stride: int) -> list[Box]:
    """The windows covering a ``height x width`` image, row-major, as ``(y1, x1, y2, x2)``.

    Raises:
        ValueError: the image is smaller than the window on either side.
    """
    if height < window or width < window:
        raise ValueError(f"image {height}x{width} is smaller than the {window}-pixel window")
    return [
        (y, x, y + window, x + window)
        for y in window_starts(height, window, stride)
        for x in window_starts(width, window, stride)
    ]


def token_boxes(boxes: list[Box], patch: int, ratio: int = 1) -> list[Box]:
    """Pixel boxes -> boxes in canvas cells: ``coordinate // patch * ratio`` (``patch`` pixels per
    token, ``ratio`` canvas cells per token).

    Raises:
        ValueError: a box is not aligned to the ``patch``-pixel token grid.
    """
    out = []
    for box in boxes:
        if any(v % patch for v in box):
            raise ValueError(f"window {box} is not aligned to the {patch}-pixel token grid")
        out.append(tuple(v // patch * ratio for v in box))
    return out


def crop_windows(image: torch.Tensor, boxes: list[Box]) -> torch.Tensor:
    """``(1, C, H, W)`` -> ``(len(boxes), C, h, w)``: the windows stacked in box order."""
    return torch.cat([image[:, :, y1:y2, x1:x2] for y1, x1, y2, x2 in boxes], dim=0)


def batch_ranges(count: int, per_batch: int) -> list[slice]:
    """Consecutive slices of at most ``per_batch`` items covering ``range(count)``."""
    per_batch = max(1, per_batch)
    return [slice(i, min(i + per_batch, count)) for i in range(0, count, per_batch)]


class Stitcher:
    """Accumulates window maps into a canvas; the result is their mean where windows overlap.

    Args:
        channels: ``C``, channels of every window map.
        canvas_hw: ``(H, W)`` of the canvas, in the boxes' unit.
        device / dtype: of the canvas (float32 by default).
    """

    def __init__(self, channels: int, canvas_hw: tuple[int, int], *, device: torch.device | str = "cpu",
                 dtype: torch.dtype = torch.float32) -> None:
        self.canvas = torch.zeros(channels, *canvas_hw, device=device, dtype=dtype)
        self.count = torch.zeros(1, *canvas_hw, device=device, dtype=dtype)

    def add(self, window_map: torch.Tensor, box: Box) -> None:
        """Add one ``(C, y2 - y1, x2 - x1)`` map at ``box``."""
        y1, x1, y2, x2 = box
        self.canvas[:, y1:y2, x1:x2] += window_map
        self.count[:, y1:y2, x1:x2] += 1

    def result(self) -> torch.Tensor:
        """``(C, H, W)``: the sum divided by the cover count (in place; cells no window covers are NaN)."""
        return self.canvas.div_(self.count)


def stitch(window_maps: torch.Tensor, boxes: list[Box], canvas_hw: tuple[int, int]) -> torch.Tensor:
    """All windows at once: ``(B, C, h, w)`` maps at ``boxes`` -> ``(C, H, W)`` mean, same dtype.

    Raises:
        ValueError: the number of maps and boxes differ.
    """
    if window_maps.shape[0] != len(boxes):
        raise ValueError(f"{window_maps.shape[0]} window maps but {len(boxes)} boxes")
    stitcher = Stitcher(window_maps.shape[1], canvas_hw, device=window_maps.device, dtype=window_maps.dtype)
    for window_map, box in zip(window_maps, boxes):
        stitcher.add(window_map, box)
    return stitcher.result()
