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

    def forward(
        self, x: torch.Tensor, guidance: Sequence[torch.Tensor], *, class_chunk: int | None = None
    ) -> torch.Tensor:
        """Decode.

        Args:
            x: ``(B, C, N, h, w)`` aggregated cost.
            guidance: one ``(B, width, h, w)`` CLIP block output per stage.
            class_chunk: decode at most this many classes at a time (the decoder treats every
                class independently, so chunking changes memory, not results).

        Returns:
            ``(B, N, h * 2^S, w * 2^S)`` logits.
        """
        b, c, n, h, w = x.shape
        guides = [proj(g.to(proj.weight.dtype)) for proj, g in zip(self.guidance, guidance)]
        step = n if not class_chunk else max(1, class_chunk)
        outs = []
        for start in range(0, n, step):
            y = x[:, :, start:start + step]
            k = y.shape[2]
            y = y.permute(0, 2, 1, 3, 4).reshape(b * k, c, h, w)
            for stage, g in zip(self.stages, guides):
                y = F.interpolate(y, scale_factor=2, mode="bilinear", align_corners=False)
                gg = g.unsqueeze(1).expand(b, k, *g.shape[1:]).reshape(b * k, *g.shape[1:])
                y = stage(torch.cat([y, gg.to(y.dtype)], dim=1))
            y = self.head(y)
            outs.append(y.view(b, k, y.shape[-2], y.shape[-1]))
        return torch.cat(outs, dim=1)
