"""Connected regions of a class map, as refinement prompts (Trident step 13, first half).

Pure numpy/torch (no scipy or scikit-image): 8-connected labelling by breadth-first search,
regions numbered in raster order of their first pixel (as ``skimage.measure.label``).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np
import torch

_NEIGHBOURS_8 = ((-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1))


def label_regions(mask: np.ndarray) -> tuple[np.ndarray, int]:
    """8-connected components of a boolean ``(H, W)`` mask.

    Returns:
        ``(labels, count)``: int32 ``(H, W)`` with 0 outside the mask and ``1..count`` inside,
        numbered in raster order of each region's first pixel.
    """
    mask = np.asarray(mask, dtype=bool)
    height, width = mask.shape
    labels = np.zeros((height, width), dtype=np.int32)
    count = 0
    for start in np.flatnonzero(mask):
        y0, x0 = divmod(int(start), width)
        if labels[y0, x0]:
            continue
        count += 1
        labels[y0, x0] = count
        queue = deque([(y0, x0)])
        while queue:
            y, x = queue.popleft()
            for dy, dx in _NEIGHBOURS_8:
                ny, nx = y + dy, x + dx
                if 0 <= ny < height and 0 <= nx < width and mask[ny, nx] and not labels[ny, nx]:
                    labels[ny, nx] = count
                    queue.append((ny, nx))
    return labels, count


@dataclass(frozen=True)
class Region:
    """One prompt region at the (downsampled) map's resolution.

    Attributes:
        mask: ``(h, w)`` bool.
        box: ``(x_min, y_min, x_max, y_max)`` inclusive pixel bounds (``torchvision.ops.masks_to_boxes``).
        point: ``(x, y)`` of the highest class probability inside the region (first in raster
            order on ties).
    """

    mask: np.ndarray
    box: tuple[int, int, int, int]
    point: tuple[int, int]


def class_regions(
    labels: torch.Tensor, probs: torch.Tensor, *, coarse_thresh: float, minimal_area: int
) -> dict[int, list[Region]]:
    """Prompt regions of every class.

    Args:
        labels: ``(h, w)`` int64 class map (pixels to ignore carry any value >= N).
        probs: ``(N, h, w)`` class probabilities.
        coarse_thresh: classes whose max probability is below it get no regions.
        minimal_area: regions with fewer pixels are dropped.

    Returns:
        class index -> its regions (only classes with at least one region).
    """
    out: dict[int, list[Region]] = {}
    labels_np = labels.cpu().numpy()
    probs_cpu = probs.float().cpu()
    for c in range(probs.shape[0]):
        prob = probs_cpu[c]
        if float(prob.max()) < coarse_thresh:
            continue
        components, count = label_regions(labels_np == c)
        found = []
        areas = np.bincount(components.ravel(), minlength=count + 1)
        for k in range(1, count + 1):
            if areas[k] < minimal_area:
                continue
            region = components == k
            ys, xs = np.nonzero(region)
            flat = int(torch.argmax(prob * torch.from_numpy(region).to(prob.dtype)))
            y, x = divmod(flat, prob.shape[1])
            found.append(Region(region, (int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max())), (x, y)))
        if found:
            out[c] = found
    return out
