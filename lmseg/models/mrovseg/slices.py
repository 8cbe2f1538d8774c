"""The two views of MROVSeg and the stitching of slice features (no learned weights here).

* global view: the whole image resized to ``slice_size x slice_size`` (bilinear);
* local slices: the image at working resolution cut by the shared sliding-window grid
  (:func:`lmseg.inference.tiler.window_grid`: ``slice_size x slice_size`` slices, the last slice
  of each axis flush with the border, row-major);
* stitching: the slices' feature maps put back at the CLIP token grid, overlaps averaged
  (:func:`lmseg.inference.tiler.stitch` over :func:`lmseg.inference.tiler.token_boxes`, i.e. the
  pixel boxes divided by the patch size).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from lmseg.inference import tiler
from lmseg.inference.tiler import Box

__all__ = ["global_view", "slice_stride", "stitch", "take_slices"]


def slice_stride(slice_size: int, overlap: float, patch: int) -> int:
    """Slice stride in pixels: ``slice_size * (1 - overlap)`` rounded down to a multiple of the
    patch size (at least one patch), so every slice starts on the full image's token grid."""
    return max(patch, int(slice_size * (1.0 - overlap)) // patch * patch)


def global_view(images: torch.Tensor, slice_size: int) -> torch.Tensor:
    """``(B, 3, H, W)`` -> ``(B, 3, S, S)``: the whole image resized to one slice (bilinear)."""
    if images.shape[-2:] == (slice_size, slice_size):
        return images
    return F.interpolate(images, size=(slice_size, slice_size), mode="bilinear", align_corners=False)


def take_slices(images: torch.Tensor, boxes: list[Box], start: int, stop: int) -> torch.Tensor:
    """Slices ``start .. stop-1`` of the image-major order (image ``i // len(boxes)``, box
    ``i % len(boxes)``) of a batch ``(B, 3, H, W)``, stacked: ``(stop - start, 3, S, S)``."""
    n = len(boxes)
    return torch.cat([tiler.crop_windows(images[i // n:i // n + 1], [boxes[i % n]]) for i in range(start, stop)])


def stitch(slice_maps: torch.Tensor, boxes: list[Box], patch: int, grid: tuple[int, int]) -> torch.Tensor:
    """Put the feature maps of one image's slices back into one map, averaging overlaps.

    Args:
        slice_maps: ``(n, C, s, s)`` features of the n slices (``s = slice_size // patch``).
        boxes: their pixel boxes (multiples of ``patch``).
        patch: pixels per feature cell.
        grid: ``(h, w)`` the full image's grid (``H // patch, W // patch``).

    Returns:
        ``(1, C, h, w)``: each cell the mean of the slice cells covering it (``slice_maps``' dtype).
    """
    return tiler.stitch(slice_maps, tiler.token_boxes(boxes, patch), grid).unsqueeze(0)
