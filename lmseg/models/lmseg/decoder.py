"""Upsampling decoder: per-class maps upsampled x2 per stage, guided by intermediate CLIP layers."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn


def _conv_block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.GroupNorm(_groups(cout), cout), nn.GELU(),
        nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.GroupNorm(_groups(cout), cout), nn.GELU(),
    )


def _groups(channels: int) -> int:
    for g in (16, 8, 4, 2):
        if channels % g == 0 and channels // g >= 2:
            return g
    return 1


class UpsamplingDecoder(nn.Module):
    """Turn the aggregated cost ``(B, C, N, h, w)`` into logits ``(B, N, h * 2^S, w * 2^S)``.

    Stage ``i`` upsamples the class maps x2 (bilinear), concatenates guidance made from CLIP
    block output ``i`` (``(B, width, h, w)``, projected to ``guidance_dims[i]`` and upsampled
    to the stage's resolution by a transposed convolution, shared by all classes), and applies
    two 3x3 convolutions. A final 3x3 convolution gives one logit per class and pixel.

    Args:
        hidden_dim: C.
        clip_width: channels of the CLIP block outputs.
        dims: widths of the stages.
        guidance_dims: guidance widths per stage.
    """

    def __init__(self, hidden_dim: int, clip_width: int, dims: Sequence[int], guidance_dims: Sequence[int]) -> None:
        super().__init__()
        self.guidance = nn.ModuleList()
        self.stages = nn.ModuleList()
        cin = hidden_dim
        for i, (d, g) in enumerate(zip(dims, guidance_dims)):
            scale = 2 ** (i + 1)
            self.guidance.append(nn.ConvTranspose2d(clip_width, g, kernel_size=scale, stride=scale))
            self.stages.append(_conv_block(cin + g, d))
            cin = d
        self.head = nn.Conv2d(cin, 1, 3, padding=1)

    def project(self, guidance: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        """The guidance of every stage, shared by all classes: one ``(B, width, h, w)`` CLIP block
        output per stage -> ``(B, guidance_dims[i], h * 2^(i+1), w * 2^(i+1))``."""
        return [proj(g.to(proj.weight.dtype)) for proj, g in zip(self.guidance, guidance)]

    def forward(self, x: torch.Tensor, guides: Sequence[torch.Tensor]) -> torch.Tensor:
        """Decode.

        Args:
            x: ``(B, C, N, h, w)`` aggregated cost (every class is decoded independently, so a
                chunk of classes gives the same maps as the whole vocabulary).
            guides: the projected guidance of every stage (:meth:`project`).

        Returns:
            ``(B, N, h * 2^S, w * 2^S)`` logits.
        """
        b, c, n, h, w = x.shape
        y = x.permute(0, 2, 1, 3, 4).reshape(b * n, c, h, w)
        for stage, g in zip(self.stages, guides):
            y = F.interpolate(y, scale_factor=2, mode="bilinear", align_corners=False)
            gg = g.unsqueeze(1).expand(b, n, *g.shape[1:]).reshape(b * n, *g.shape[1:])
            y = stage(torch.cat([y, gg.to(y.dtype)], dim=1))
        y = self.head(y)
        return y.view(b, n, y.shape[-2], y.shape[-1])

    def elements_per_class(self, grid: tuple[int, int], hidden_dim: int) -> int:
        """Elements of the widest per-class tensor of the decoder for one input whose token grid
        is ``grid`` (a stage's input: upsampled class map and guidance, concatenated)."""
        widest, cin = 0, hidden_dim
        for i, (stage, proj) in enumerate(zip(self.stages, self.guidance)):
            pixels = grid[0] * grid[1] * 4 ** (i + 1)
            widest = max(widest, pixels * (cin + proj.out_channels))
            cin = stage[0].out_channels
        return widest
