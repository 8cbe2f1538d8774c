"""DINO ViT patch features at any input size, from a stock timm VisionTransformer.

:class:`DenseDINO` runs timm's ``vit_base_patch16_224.dino`` (or any timm ViT with a class token
and a learned positional embedding) and returns the patch tokens after the final LayerNorm, the
features Trident and ProxyCLIP use as a proxy for spatial affinity. timm's own blocks and norms
run unchanged; only the positional embedding is resized here (bicubic), so that both the
size-based convention and the ``+0.1`` scale-factor convention of DINO's hub code (which Trident
runs) are available (see :mod:`lmseg.backbones.pos_embed`).

Weights: timm's pretrained tag (timm downloads it), DINO's official checkpoint by the known
name ``dino_vitb16`` (see :mod:`lmseg.backbones.weights`), a local file, or None for random.
"""

from __future__ import annotations

import os

import timm
import torch
from torch import nn

from lmseg.backbones.loading import load_strict, read_state_dict
from lmseg.backbones.pos_embed import interpolate_pos_embed
from lmseg.backbones.weights import resolve_weights
from lmseg.errors import LmsegError

DEFAULT_DINO = "vit_base_patch16_224.dino"
#: ImageNet mean/std on the [0, 1] scale (DINO's training normalisation).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class DenseDINO(nn.Module):
    """Patch tokens of a timm ViT after its final norm, at any input size.

    Args:
        model: a timm ``VisionTransformer`` with one class token, no register tokens, a learned
            positional embedding that includes the class position, built with
            ``dynamic_img_size=True`` (so its patch embedding accepts any size).
        interpolation_offset: 0 to resize the positional embedding to the target grid; 0.1 for
            the convention of DINO's hub code (used by Trident).
        antialias: antialiased bicubic resize of the positional embedding. False (default)
            matches DINO's hub code; True matches timm's own ``dynamic_img_size`` path.
    """

    def __init__(self, model: nn.Module, *, interpolation_offset: float = 0.0, antialias: bool = False) -> None:
        super().__init__()
        problems = []
        if getattr(model, "cls_token", None) is None or getattr(model, "num_prefix_tokens", None) != 1:
            problems.append("needs exactly one class token and no register tokens")
        if getattr(model, "pos_embed", None) is None or getattr(model, "no_embed_class", True):
            problems.append("needs a learned positional embedding that covers the class token")
        if not getattr(model, "dynamic_img_size", False):
            problems.append("must be created with dynamic_img_size=True")
        if problems:
            raise LmsegError(f"unsupported timm model {type(model).__name__}: {'; '.join(problems)}")
        self.model = model
        self.interpolation_offset = float(interpolation_offset)
        self.antialias = bool(antialias)

    @property
    def patch_size(self) -> tuple[int, int]:
        """``(ph, pw)`` pixels per token."""
        return tuple(self.model.patch_embed.patch_size)

    @property
    def native_grid(self) -> tuple[int, int]:
        """The token grid the positional embedding was trained for (14x14 at 224)."""
        return tuple(self.model.patch_embed.grid_size)

    @property
    def width(self) -> int:
        """Token channels (768 for ViT-B)."""
        return int(self.model.embed_dim)

    def normalize(self, images: torch.Tensor) -> torch.Tensor:
        """Normalise ``(B, 3, H, W)`` RGB images with values in [0, 1] by ImageNet mean and std."""
        mean = images.new_tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
        std = images.new_tensor(IMAGENET_STD).view(1, 3, 1, 1)
        return (images - mean) / std

    def forward_tokens(self, images: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
        """All tokens after the final norm.

        Args:
            images: ``(B, 3, H, W)`` ImageNet-normalised RGB, sides multiples of the patch size.

        Returns:
            ``(tokens, grid)``: ``(B, 1 + h*w, width)`` with the class token first and patches
            in row-major order; ``grid = (h, w)``.
        """
        m = self.model
        ph, pw = self.patch_size
        height, width = images.shape[-2:]
        if height % ph or width % pw:
            raise ValueError(f"input size {height}x{width} is not a multiple of the patch size {ph}x{pw}")
        x = m.patch_embed(images.to(m.pos_embed.dtype))  # (B, h, w, C) with dynamic_img_size
        batch, gh, gw, channels = x.shape
        x = x.reshape(batch, gh * gw, channels)
        x = torch.cat([m.cls_token.expand(batch, -1, -1).to(x.dtype), x], dim=1)
        pos = interpolate_pos_embed(
            m.pos_embed, self.native_grid, (gh, gw), offset=self.interpolation_offset, antialias=self.antialias
        )
        x = m.pos_drop(x + pos.to(x.dtype))
        x = m.norm_pre(m.patch_drop(x))
        x = m.blocks(x)
        return m.norm(x), (gh, gw)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """``(B, width, h, w)`` patch tokens after the final norm (class token dropped)."""
        tokens, (gh, gw) = self.forward_tokens(images)
        return tokens[:, 1:].transpose(1, 2).reshape(tokens.shape[0], -1, gh, gw)


def create_dense_dino(
    name: str = DEFAULT_DINO,
    *,
    weights: str | os.PathLike[str] | None,
    interpolation_offset: float = 0.0,
    antialias: bool = False,
    device: str | torch.device = "cpu",
    download: bool | None = None,
) -> DenseDINO:
    """Build a timm ViT and its weights into a :class:`DenseDINO` (eval mode).

    Args:
        name: a timm model name (default ``vit_base_patch16_224.dino``).
        weights: ``"timm"`` for timm's pretrained weights of ``name`` (timm downloads them from
            the Hugging Face hub), a checkpoint path or known name (``"dino_vitb16"``: DINO's
            official file, whose checksum is unknown), or None for random weights.
        interpolation_offset: positional-embedding resize convention (see :class:`DenseDINO`).
        antialias: antialiased positional-embedding resize (see :class:`DenseDINO`).
        device: where the model goes.
        download: allow downloading a known checkpoint (None: unless ``LMSEG_OFFLINE`` is set).

    Raises:
        LmsegError: unknown model, missing or unfit weights, or a failed download.
    """
    if not timm.is_model(name):
        raise LmsegError(f"unknown timm model {name!r}")
    pretrained = weights == "timm"
    path = resolve_weights(weights, download=download) if weights is not None and not pretrained else None
    try:
        model = timm.create_model(name, pretrained=pretrained, num_classes=0, dynamic_img_size=True)
    except Exception as exc:  # hub and URL errors come in many types; keep the cause chained
        if not pretrained:
            raise
        raise LmsegError(
            f"timm could not get the pretrained weights of {name}: {exc}. On an offline machine, download "
            "them elsewhere and pass the file's path as weights=PATH."
        ) from exc
    if path is not None:
        load_strict(model, read_state_dict(path), source=str(path), arch=f"timm {name}")
    return DenseDINO(model.to(device), interpolation_offset=interpolation_offset, antialias=antialias).eval()
