"""CLIP's last block replaced by DINO-proxy attention (Trident step 6).

For the windows of one image, with DINO patch features ``f`` (final-norm output, CLS
dropped) and CLIP's last-block values ``v = W_v ln_1(x) + b_v`` (CLS dropped)::

    S_b   = cos(f_b,i, f_b,j)                       per window b, (L, L)
    m     = mean of S over ALL windows and pairs    one scalar per image
    S_b   = (S_b - beta * m) * gamma;  S_b[S_b < 0] = -inf
    P_b   = softmax_j(S_b)                          the same for every head
    out_b = out_proj(P_b @ resize(v_b, DINO grid))  (with out_proj's bias)

No residual, no MLP.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def proxy_attention_weights(dino_features: torch.Tensor, beta: float, gamma: float) -> torch.Tensor:
    """Proxy attention of a set of windows.

    Args:
        dino_features: ``(B, C, h, w)`` DINO patch features of the B windows of ONE image.
        beta: offset factor of the mean similarity.
        gamma: scale after the offset.

    Returns:
        ``(B, h*w, h*w)`` row-stochastic weights in [0, 1], float32 (rows: queries in
        row-major token order). Each row keeps at least its diagonal when
        ``1 > beta * mean`` (so the row is never all -inf for the published beta).
    """
    b, c, h, w = dino_features.shape
    f = F.normalize(dino_features.float().flatten(2), dim=1)  # (B, C, L)
    sim = f.transpose(1, 2) @ f  # (B, L, L)
    sim = (sim - sim.mean() * beta) * gamma
    sim = sim.masked_fill(sim < 0, float("-inf"))
    return sim.softmax(dim=-1)


def values_on_grid(values: torch.Tensor, clip_grid: tuple[int, int], target_grid: tuple[int, int]) -> torch.Tensor:
    """CLIP values ``(B, h*w, width)`` on the CLIP grid -> ``(B, H*W, width)`` on ``target_grid`` (bilinear).

    Identity when the grids are equal (ViT-B/16 CLIP and DINO ViT-B/16 at 336 px).
    """
    if tuple(clip_grid) == tuple(target_grid):
        return values
    b, _, width = values.shape
    grid = values.transpose(1, 2).reshape(b, width, *clip_grid)
    grid = F.interpolate(grid, size=tuple(target_grid), mode="bilinear", align_corners=False)
    return grid.flatten(2).transpose(1, 2)
