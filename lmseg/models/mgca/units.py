"""Prediction units: per pixel, per region, and MGCA's adaptive semantic unit.

Given per-pixel class scores ``(N, H, W)`` (probabilities), a *unit* is a set of pixels that
receives one decision. The per-pixel unit over-segments (noise makes neighbouring pixels of
one object disagree); a region unit (a group of the model, a superpixel) under-segments when
the region straddles two objects. The adaptive unit chooses per region, by a measured
criterion:

* the region's decision is the argmax of its mean scores;
* its *agreement* is the share of its pixels whose own argmax equals that decision;
* levels of regions are tried coarse to fine (e.g. the model's groups, then SLIC
  superpixels): a pixel takes the decision of the coarsest region containing it whose
  agreement is at least ``min_agreement``; a pixel in no such region keeps its own decision.

Scores are returned along with the labels: a pixel decided by a region gets the region's mean
scores, so that ``labels == scores.argmax(0)`` everywhere.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import torch


def region_means(scores: torch.Tensor, regions: torch.Tensor) -> torch.Tensor:
    """``(N, R)`` mean scores of each region (``R = regions.max() + 1``).

    Args:
        scores: ``(N, H, W)`` float.
        regions: ``(H, W)`` int64 region ids ``0 .. R-1``.
    """
    n = scores.shape[0]
    flat = regions.reshape(-1)
    count = torch.bincount(flat).clamp_min(1).to(scores.dtype)
    sums = torch.zeros(n, count.numel(), dtype=scores.dtype, device=scores.device)
    sums.index_add_(1, flat, scores.reshape(n, -1))
    return sums / count


def region_agreement(pixel_labels: torch.Tensor, regions: torch.Tensor, decisions: torch.Tensor) -> torch.Tensor:
    """``(R,)`` share of each region's pixels whose label equals the region's decision."""
    flat = regions.reshape(-1)
    agree = (pixel_labels.reshape(-1) == decisions[flat]).to(torch.float32)
    count = torch.bincount(flat, minlength=decisions.numel()).clamp_min(1).to(torch.float32)
    return torch.bincount(flat, weights=agree, minlength=decisions.numel()) / count


def region_unit(scores: torch.Tensor, regions: torch.Tensor) -> torch.Tensor:
    """Scores ``(N, H, W)`` where every pixel carries its region's mean scores."""
    means = region_means(scores, regions)
    return means[:, regions]


def adaptive_unit(scores: torch.Tensor, levels: Iterable[torch.Tensor], min_agreement: float) -> torch.Tensor:
    """The adaptive semantic unit (see the module docstring).

    Args:
        scores: ``(N, H, W)`` per-pixel scores.
        levels: region maps ``(H, W)`` int64, coarse to fine (read once, in order: a generator
            keeps one map in memory at a time).
        min_agreement: in (0, 1].

    Returns:
        ``(N, H, W)`` scores: each pixel's chosen unit's mean scores, or its own.
    """
    out = scores.clone()
    pixel_labels = scores.argmax(dim=0)
    decided = torch.zeros_like(pixel_labels, dtype=torch.bool)
    for regions in levels:
        means = region_means(scores, regions)
        trusted = region_agreement(pixel_labels, regions, means.argmax(dim=0)) >= min_agreement
        take = trusted[regions] & ~decided
        out[:, take] = means[:, regions[take]]
        decided |= take
    return out


def resize_nearest(labels: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """An ``(h, w)`` integer map resized to ``size`` by nearest neighbour (``F.interpolate``'s
    ``"nearest"``; exact for ids below 2**24), int64."""
    resized = torch.nn.functional.interpolate(labels[None, None].float(), size=tuple(size), mode="nearest")
    return resized[0, 0].long()


def slic_regions(rgb: np.ndarray, segments: int, compactness: float) -> np.ndarray:
    """``(H, W)`` int64 SLIC superpixel ids ``0 .. R-1`` of an ``(H, W, 3)`` uint8 image
    (scikit-image's ``slic`` in Lab space)."""
    from skimage.segmentation import slic

    labels = slic(rgb, n_segments=segments, compactness=compactness, start_label=0, channel_axis=-1)
    _, dense = np.unique(labels, return_inverse=True)
    return dense.reshape(labels.shape).astype(np.int64)
