"""Image-side fusion: F = w * F_clip + (1 - w) * proj(F_sam), and the cost volume.

Shapes: ``B`` images, ``D`` joint-space width, ``(h, w)`` CLIP token grid, ``N`` classes,
``P`` prompt channels per class.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class SamCLIPFusion(nn.Module):
    """Fuse dense CLIP features with SAM features using a learnable weight.

    SAM features are brought to CLIP's width by a 1x1 convolution and to CLIP's token grid by
    a bilinear resize (align_corners False). ``w = sigmoid(fusion_logit)`` stays in (0, 1).

    Args:
        sam_dim: SAM feature channels (256).
        clip_dim: CLIP joint-space width D.
        init: the initial w.
    """

    def __init__(self, sam_dim: int, clip_dim: int, *, init: float = 0.5) -> None:
        super().__init__()
        self.proj = nn.Conv2d(sam_dim, clip_dim, kernel_size=1)
        self.fusion_logit = nn.Parameter(torch.tensor(math.log(init / (1.0 - init))))

    @property
    def w(self) -> torch.Tensor:
        """The current fusion weight (a 0-d tensor in (0, 1))."""
        return torch.sigmoid(self.fusion_logit)

    def forward(self, clip_features: torch.Tensor, sam_features: torch.Tensor) -> torch.Tensor:
        """Fuse.

        Args:
            clip_features: ``(B, D, h, w)`` dense CLIP features (joint space).
            sam_features: ``(B, C_sam, gh, gw)`` SAM features of the valid region.

        Returns:
            ``(B, D, h, w)`` fused features, dtype of ``clip_features``.
        """
        sam = self.proj(sam_features.to(self.proj.weight.dtype))
        if sam.shape[-2:] != clip_features.shape[-2:]:
            sam = F.interpolate(sam, size=clip_features.shape[-2:], mode="bilinear", align_corners=False)
        w = self.w
        return w * clip_features + (1.0 - w) * sam.to(clip_features.dtype)


def cost_volume(features: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
    """Cosine similarity between every pixel feature and every prompt embedding.

    Args:
        features: ``(B, D, h, w)`` image features (any scale; normalised here).
        text: ``(N, P, D)`` or ``(B, N, P, D)`` prompt embeddings (normalised here).

    Returns:
        ``(B, P, N, h, w)`` cosine similarities in [-1, 1].
    """
    f = F.normalize(features, dim=1)
    t = F.normalize(text.to(f.dtype), dim=-1)
    if t.dim() == 3:
        return torch.einsum("bdhw,npd->bpnhw", f, t)
    return torch.einsum("bdhw,bnpd->bpnhw", f, t)
