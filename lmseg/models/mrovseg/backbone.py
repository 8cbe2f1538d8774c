"""The single CLIP image tower as a multi-depth feature extractor (:class:`ClipTaps`).

It reads the tokens after the stem (``DenseCLIP.embed``: patch embedding, class token,
resized positional embedding, ``ln_pre``) and the outputs of chosen blocks through open_clip's
own ``Transformer.forward_intermediates``; the joint-space dense features (``ln_post`` +
``proj``, for the optional zero-shot ensemble) only when asked for, otherwise the tower stops
after the deepest tap.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from lmseg.backbones.clip import DenseCLIP


class ClipTaps(nn.Module):
    """Feature maps of a stock CLIP image tower at the depths ``taps``.

    Args:
        clip: the CLIP model.
        taps: 0 = stem, k >= 1 = output of block k (1-based), increasing.

    Attributes:
        patch: pixels per token (square patches).
        width: channels of every tap map (the transformer width).
    """

    def __init__(self, clip: DenseCLIP, taps: Sequence[int]) -> None:
        super().__init__()
        if max(taps) > clip.num_layers:
            raise ValueError(f"tap {max(taps)} is deeper than the {clip.num_layers} blocks of {clip.model_name}")
        self.clip = clip
        self.taps = tuple(taps)
        self.patch = clip.patch_size[0]
        self.width = clip.width

    def forward(self, images: torch.Tensor, *, dense: bool = False) -> tuple[list[torch.Tensor], torch.Tensor | None]:
        """Tap maps of a batch of views.

        Args:
            images: ``(n, 3, S, S)`` CLIP-normalised views, ``S`` a multiple of the patch size.
            dense: also return the joint-space patch features.

        Returns:
            ``(maps, dense)``: one ``(n, width, S/p, S/p)`` map per tap (model dtype), and
            ``(n, D, S/p, S/p)`` joint-space features or None.
        """
        tokens, grid = self.clip.embed(images)
        blocks = [t - 1 for t in self.taps if t > 0]
        found: list[torch.Tensor] = []
        x = tokens
        if blocks or dense:
            x, found = self.clip.visual.transformer.forward_intermediates(
                tokens, indices=blocks or [self.clip.num_layers - 1], stop_early=not dense)
            found = found if blocks else []
        maps = [self.clip.to_map(tokens[:, 1:], grid)] if self.taps[0] == 0 else []
        maps += [self.clip.to_map(f[:, 1:], grid) for f in found]
        joint = self.clip.to_map(self.clip.project(x[:, 1:]), grid) if dense else None
        return maps, joint
