"""The Multi-Res Adapter: stitched slice features + global features -> a feature pyramid.

Per tap (CLIP depth) ``t``, with ``G_t`` the global view's map ``(B, C, S/p, S/p)`` and
``L_t`` the slices' maps stitched into ``(B, C, H/p, W/p)`` (overlap averaged, see
:func:`lmseg.models.mrovseg.slices.stitch`)::

    g = upsample(proj_t(G_t)) to (H/p, W/p)              bilinear
    l = proj_t(L_t);  l = l + conv_t(l)                  continuity across slice borders
    a = sigmoid(gate_t([g, l]))                          (B, 1, H/p, W/p) scale attention
    F_t = a * g + (1 - a) * l                            (B, d, H/p, W/p)

``proj_t`` is a 1x1 convolution ``C -> d`` shared by the two views (same CLIP features),
``conv_t`` a depthwise-separable ``k x k`` convolution (zero-initialised pointwise part, so the
stitched features pass unchanged at the start of training) and ``gate_t`` a 1x1 convolution
``2d -> 1``. With slicing off, ``F_t = g``.

The fused maps become a pyramid: ``F_t`` is resampled (bilinear) to the grid of stride
``level_strides[t]`` and a top-down pass (FPN, as Mask2Former's pixel decoder ends with) adds
each coarser output to the next finer level before a 3x3 convolution. The finest output,
through a 1x1 convolution, gives the per-pixel embeddings of the mask predictions.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from lmseg.models.mrovseg.config import ContinuityConv


class ContinuityConv2d(nn.Module):
    """``x + conv(x)`` with ``conv`` depthwise-separable (default), full, or absent (identity)."""

    def __init__(self, dim: int, kind: ContinuityConv, kernel: int) -> None:
        super().__init__()
        pad = kernel // 2
        if kind == "depthwise_separable":
            self.conv: nn.Module = nn.Sequential(
                nn.Conv2d(dim, dim, kernel, padding=pad, groups=dim), nn.Conv2d(dim, dim, 1))
        elif kind == "full":
            self.conv = nn.Sequential(nn.Conv2d(dim, dim, kernel, padding=pad))
        else:
            self.conv = nn.Identity()
        if isinstance(self.conv, nn.Sequential):
            nn.init.zeros_(self.conv[-1].weight)
            nn.init.zeros_(self.conv[-1].bias)
        self.kind = kind

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x if self.kind == "none" else x + self.conv(x)


class ScaleAttention(nn.Module):
    """Per-location gate fusing global and local maps: ``a g + (1 - a) l``, ``a = sigmoid(W [g; l] + b)``."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.gate = nn.Conv2d(2 * dim, 1, 1)

    def weight(self, glob: torch.Tensor, local: torch.Tensor) -> torch.Tensor:
        """``(B, 1, h, w)`` gate values in (0, 1) (the weight of the global map)."""
        return torch.sigmoid(self.gate(torch.cat([glob, local], dim=1)))

    def forward(self, glob: torch.Tensor, local: torch.Tensor) -> torch.Tensor:
        a = self.weight(glob, local)
        return a * glob + (1.0 - a) * local


class TapAdapter(nn.Module):
    """Fuse one tap's global and stitched local maps (formula in the module docstring)."""

    def __init__(self, in_dim: int, dim: int, kind: ContinuityConv, kernel: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(in_dim, dim, 1)
        self.continuity = ContinuityConv2d(dim, kind, kernel)
        self.scale_attention = ScaleAttention(dim)

    def forward(self, glob: torch.Tensor, local: torch.Tensor | None, grid: tuple[int, int]) -> torch.Tensor:
        """``glob`` ``(B, C, g, g)``, ``local`` ``(B, C, h, w)`` or None -> ``(B, d, h, w)`` with ``(h, w) = grid``."""
        g = self.proj(glob.to(self.proj.weight.dtype))
        if tuple(g.shape[-2:]) != tuple(grid):
            g = F.interpolate(g, size=grid, mode="bilinear", align_corners=False)
        if local is None:
            return g
        lo = self.continuity(self.proj(local.to(self.proj.weight.dtype)))
        return self.scale_attention(g, lo)


class MultiResAdapter(nn.Module):
    """Tap adapters plus the pyramid and per-pixel embeddings.

    Args:
        in_dim: CLIP width (channels of the tap maps).
        dim: pyramid width d.
        mask_dim: per-pixel embedding width.
        patch: CLIP patch size (stride of the tap maps).
        level_strides: output stride of the level of each tap (shallow to deep).
        kind / kernel: the continuity convolution.
    """

    def __init__(self, in_dim: int, dim: int, mask_dim: int, patch: int, level_strides: tuple[int, ...],
                 kind: ContinuityConv, kernel: int) -> None:
        super().__init__()
        self.patch = patch
        self.level_strides = tuple(level_strides)
        self.taps = nn.ModuleList(TapAdapter(in_dim, dim, kind, kernel) for _ in level_strides)
        self.outputs = nn.ModuleList(
            nn.Sequential(nn.Conv2d(dim, dim, 3, padding=1), nn.GroupNorm(min(32, dim), dim), nn.ReLU())
            for _ in level_strides)
        self.mask_features = nn.Conv2d(dim, mask_dim, 1)

    def level_size(self, image_hw: tuple[int, int], stride: int) -> tuple[int, int]:
        """Grid of a level: ``ceil(H / stride) x ceil(W / stride)``."""
        return math.ceil(image_hw[0] / stride), math.ceil(image_hw[1] / stride)

    def fuse(self, globals_: list[torch.Tensor], locals_: list[torch.Tensor] | None,
             image_hw: tuple[int, int]) -> list[torch.Tensor]:
        """The fused map ``F_t`` ``(B, d, H/p, W/p)`` of every tap."""
        grid = (image_hw[0] // self.patch, image_hw[1] // self.patch)
        return [adapter(g, None if locals_ is None else lo, grid)
                for adapter, g, lo in zip(self.taps, globals_, locals_ or [None] * len(globals_))]

    def forward(self, globals_: list[torch.Tensor], locals_: list[torch.Tensor] | None,
                image_hw: tuple[int, int]) -> tuple[list[torch.Tensor], torch.Tensor]:
        """Pyramid and per-pixel embeddings.

        Args:
            globals_: per tap, the global view's map ``(B, C, S/p, S/p)``.
            locals_: per tap, the stitched slice map ``(B, C, H/p, W/p)``; None with slicing off.
            image_hw: ``(H, W)`` the working resolution.

        Returns:
            ``(levels, mask_features)``: one ``(B, d, H/s, W/s)`` map per tap, fine to coarse
            (``s`` its stride), and ``(B, mask_dim, H/s0, W/s0)`` per-pixel embeddings at the
            finest stride ``s0``.
        """
        fused = self.fuse(globals_, locals_, image_hw)
        resized = [F.interpolate(f, size=self.level_size(image_hw, s), mode="bilinear", align_corners=False)
                   for f, s in zip(fused, self.level_strides)]
        outs: list[torch.Tensor] = [None] * len(resized)  # type: ignore[list-item]
        above = None
        for i in reversed(range(len(resized))):
            x = resized[i]
            if above is not None:
                x = x + F.interpolate(above, size=x.shape[-2:], mode="bilinear", align_corners=False)
            above = outs[i] = self.outputs[i](x)
        return outs, self.mask_features(outs[0])
