"""Resizing a ViT's learned absolute positional embedding to another token grid.

CLIP and DINO learn one positional embedding per patch position of their training resolution
(14x14 for a 224-pixel ViT-B/16). To encode other sizes the patch part is treated as an image
with C channels and resized bicubically; the class-token position is kept as it is.

Two conventions exist and both are supported, because reproducing published numbers needs the
exact one:

* ``offset=0`` (default): resize to the target grid size (``F.interpolate(size=...)``), as timm
  does. At the native grid this is exactly the identity.
* ``offset>0`` (DINO's hub code and the training-free OVSS repositories such as Trident, with
  0.1): ``F.interpolate(scale_factor=((h + offset) / h0, (w + offset) / w0))``. The output size
  is the same, but the sampling positions follow the scale factor, so the values differ
  slightly. At the native grid the embedding is returned unchanged, as those repositories do.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def interpolate_pos_embed(
    pos_embed: torch.Tensor,
    old_grid: tuple[int, int],
    new_grid: tuple[int, int],
    *,
    num_prefix_tokens: int = 1,
    offset: float = 0.0,
    antialias: bool = False,
) -> torch.Tensor:
    """Resize a positional embedding from one token grid to another (bicubic).

    Args:
        pos_embed: ``(P + h0*w0, C)`` or ``(1, P + h0*w0, C)``: ``P`` prefix (class) positions,
            then the patch positions in row-major order; any float dtype.
        old_grid: ``(h0, w0)``, the grid the embedding was trained for.
        new_grid: ``(h, w)``, the grid of the tokens it will be added to.
        num_prefix_tokens: ``P``, the number of leading positions that are not resized.
        offset: 0 to resize to ``new_grid``; > 0 for the ``scale_factor=(n + offset) / n0``
            convention (see the module docstring).
        antialias: passed to ``F.interpolate`` (timm uses True; it changes the kernel).

    Returns:
        ``(P + h*w, C)`` or ``(1, P + h*w, C)`` (same layout as the input), same dtype. The
        computation runs in float32.
    """
    squeeze = pos_embed.dim() == 2
    pos = pos_embed.unsqueeze(0) if squeeze else pos_embed
    if pos.dim() != 3 or pos.shape[0] != 1:
        raise ValueError(f"pos_embed must be (L, C) or (1, L, C), got {tuple(pos_embed.shape)}")
    h0, w0 = old_grid
    h, w = new_grid
    if pos.shape[1] != num_prefix_tokens + h0 * w0:
        raise ValueError(
            f"pos_embed has {pos.shape[1]} positions, expected {num_prefix_tokens} + {h0}x{w0} for grid {old_grid}"
        )
    if offset > 0 and (h, w) == (h0, w0):
        return pos_embed
    prefix, patch = pos[:, :num_prefix_tokens], pos[:, num_prefix_tokens:]
    channels = patch.shape[-1]
    grid = patch.float().reshape(1, h0, w0, channels).permute(0, 3, 1, 2)
    if offset > 0:
        grid = F.interpolate(
            grid, scale_factor=((h + offset) / h0, (w + offset) / w0), mode="bicubic", align_corners=False,
            antialias=antialias,
        )
        if tuple(grid.shape[-2:]) != (h, w):
            raise ValueError(f"scale-factor interpolation gave grid {tuple(grid.shape[-2:])}, expected {(h, w)}")
    else:
        grid = F.interpolate(grid, size=(h, w), mode="bicubic", align_corners=False, antialias=antialias)
    patch = grid.permute(0, 2, 3, 1).reshape(1, h * w, channels).to(pos.dtype)
    out = torch.cat([prefix, patch], dim=1)
    return out[0] if squeeze else out
