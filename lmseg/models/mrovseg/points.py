"""Point sampling of masks (PointRend's, as Mask2Former's matcher and losses use it).

Coordinates are ``(x, y)`` in [0, 1] over the whole map (0 = left/top edge, 1 = right/bottom
edge); values are read by bilinear interpolation with ``align_corners=False``, zero outside.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def point_sample(maps: torch.Tensor, coords: torch.Tensor) -> torch.Tensor:
    """Read ``(R, h, w)`` maps at ``(R, K, 2)`` (or ``(1, K, 2)``, shared) coordinates -> ``(R, K)``."""
    if coords.shape[0] == 1 and maps.shape[0] != 1:
        coords = coords.expand(maps.shape[0], -1, -1)
    grid = (2.0 * coords - 1.0)[:, :, None, :].to(maps.dtype)  # (R, K, 1, 2)
    return F.grid_sample(maps[:, None], grid, mode="bilinear", align_corners=False)[:, 0, :, 0]


def uncertainty(logits: torch.Tensor) -> torch.Tensor:
    """Mask2Former's uncertainty of a mask logit: ``-|logit|`` (highest at the decision boundary)."""
    return -logits.abs()


def importance_points(logits: torch.Tensor, num_points: int, oversample: float, importance: float,
                      generator: torch.Generator | None = None) -> torch.Tensor:
    """Uncertainty-weighted point coordinates for each mask (no gradients).

    Draw ``num_points * oversample`` uniform points, keep the ``importance * num_points`` most
    uncertain of them, and add ``num_points - that`` fresh uniform points.

    Args:
        logits: ``(R, h, w)`` mask logits.
        num_points / oversample / importance: Mask2Former's 12544 / 3 / 0.75.
        generator: the random source (reproducible under a seeded generator).

    Returns:
        ``(R, num_points, 2)`` float32 coordinates in [0, 1].
    """
    r = logits.shape[0]
    kw = {"device": logits.device, "generator": generator}
    candidates = torch.rand(r, int(num_points * oversample), 2, **kw)
    with torch.no_grad():
        scores = uncertainty(point_sample(logits.detach().float(), candidates))
    n_uncertain = int(importance * num_points)
    top = scores.topk(n_uncertain, dim=1).indices
    picked = torch.gather(candidates, 1, top[..., None].expand(-1, -1, 2))
    return torch.cat([picked, torch.rand(r, num_points - n_uncertain, 2, **kw)], dim=1)
