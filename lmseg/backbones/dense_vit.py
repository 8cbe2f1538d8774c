"""DINOv2, DINOv3 and C-RADIO patch features through timm, at any input size.

:class:`DenseViT` wraps a stock timm model (``VisionTransformer`` for DINOv2, ``Eva`` for
DINOv3, ``NaFlexVit`` for C-RADIO) and returns its last block's patch tokens after the final
norm as a ``(B, C, h, w)`` map, through timm's own dense-feature API
(``forward_intermediates(..., norm=True, output_fmt="NCHW")``); prefix tokens (class, registers,
RADIO's summary tokens) are dropped. Nothing of timm is copied or changed; the tests check the
map against timm's ``forward_features`` on the same weights.

The named backbones (:data:`VIT_BACKBONES`) carry their timm model, pretrained tag,
normalisation and licence; their weights are known names of :mod:`lmseg.backbones.weights`
(timm's copies on the Hugging Face hub, e.g. ``dinov3_vitb16`` =
``timm/vit_base_patch16_dinov3.lvd1689m``). A checkpoint file in the publisher's own layout
(DINOv2's ``dinov2_vitb14_pretrain.pth``, DINOv3's ``dinov3_vitb16_pretrain_lvd1689m-*.pth``,
RADIO's ``radio_model.*`` files) goes through the timm model's own ``checkpoint_filter_fn``,
then every key and shape is checked against the timm model's state dict
(:func:`~lmseg.backbones.loading.load_strict`).
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from typing import Any

import timm
import torch
from torch import nn

from lmseg.backbones.loading import load_strict, read_state_dict
from lmseg.backbones.weights import KNOWN_WEIGHTS, resolve_weights
from lmseg.errors import LmsegError

Family = str  # "dinov2" | "dinov3" | "radio"


@dataclass(frozen=True)
class ViTBackbone:
    """A named timm backbone.

    Attributes:
        name: lmseg's name, also the known weights name (``"dinov3_vitb16"``).
        timm_model: timm architecture (``"vit_base_patch16_dinov3"``).
        tag: timm pretrained tag of the published weights (``"lvd1689m"``).
        family: ``"dinov2"``, ``"dinov3"`` or ``"radio"``.
    """

    name: str
    timm_model: str
    tag: str
    family: Family

    @property
    def pretrained_cfg(self) -> Any:
        """timm's pretrained config of ``timm_model.tag`` (mean, std, hub id, licence)."""
        return timm.models.get_pretrained_cfg(f"{self.timm_model}.{self.tag}")

    @property
    def licence(self) -> str:
        """The weights' licence (from :data:`~lmseg.backbones.weights.KNOWN_WEIGHTS`)."""
        return KNOWN_WEIGHTS[self.name].licence


VIT_BACKBONES: dict[str, ViTBackbone] = {
    b.name: b
    for b in (
        ViTBackbone("dinov2_vits14", "vit_small_patch14_dinov2", "lvd142m", "dinov2"),
        ViTBackbone("dinov2_vitb14", "vit_base_patch14_dinov2", "lvd142m", "dinov2"),
        ViTBackbone("dinov2_vitl14", "vit_large_patch14_dinov2", "lvd142m", "dinov2"),
        ViTBackbone("dinov2_vitb14_reg", "vit_base_patch14_reg4_dinov2", "lvd142m", "dinov2"),
        ViTBackbone("dinov3_vits16", "vit_small_patch16_dinov3", "lvd1689m", "dinov3"),
        ViTBackbone("dinov3_vitb16", "vit_base_patch16_dinov3", "lvd1689m", "dinov3"),
        ViTBackbone("dinov3_vitl16", "vit_large_patch16_dinov3", "lvd1689m", "dinov3"),
        ViTBackbone("radio_v3_b", "naflexvit_base_patch16_radio_v3", "c_radio", "radio"),
        ViTBackbone("radio_v3_l", "naflexvit_large_patch16_radio_v3", "c_radio", "radio"),
        ViTBackbone("radio_v4_so400m", "naflexvit_so400m_patch16_radio_v4", "c_radio", "radio"),
    )
}


def get_vit_backbone(name: str) -> ViTBackbone:
    """The named backbone.

    Raises:
        LmsegError: unknown name (the message lists the known ones).
    """
    if name not in VIT_BACKBONES:
        raise LmsegError(f"unknown DINOv2/DINOv3/RADIO backbone {name!r}; choose one of {', '.join(VIT_BACKBONES)}")
    return VIT_BACKBONES[name]


class DenseViT(nn.Module):
    """Last-block patch tokens (after the final norm) of a timm ViT, as a map.

    Args:
        model: a stock timm ``VisionTransformer`` (built with ``dynamic_img_size=True``),
            ``Eva`` or ``NaFlexVit``.
        mean: the normalisation mean of the weights, RGB on the [0, 1] scale.
        std: the normalisation std.
        name: the backbone's name (for messages and records).
    """

    def __init__(self, model: nn.Module, *, mean: tuple[float, ...], std: tuple[float, ...], name: str = "") -> None:
        super().__init__()
        if not hasattr(model, "forward_intermediates"):
            raise LmsegError(f"timm model {type(model).__name__} has no forward_intermediates")
        if hasattr(model, "dynamic_img_size") and not getattr(model, "dynamic_img_size"):
            raise LmsegError(f"timm model {type(model).__name__} must be created with dynamic_img_size=True")
        self.model = model
        self.name = name
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1), persistent=False)

    @property
    def patch_size(self) -> tuple[int, int]:
        """``(ph, pw)`` pixels per token."""
        embed = getattr(self.model, "patch_embed", None) or self.model.embeds  # NaFlexVit: embeds
        size = embed.patch_size
        return (int(size), int(size)) if isinstance(size, int) else (int(size[0]), int(size[1]))

    @property
    def width(self) -> int:
        """Token channels (768 for ViT-B)."""
        return int(self.model.embed_dim)

    @property
    def num_prefix_tokens(self) -> int:
        """Class, register and summary tokens in front of the patches (dropped from the map)."""
        return int(self.model.num_prefix_tokens)

    @property
    def dtype(self) -> torch.dtype:
        return next(self.model.parameters()).dtype

    def normalize(self, images: torch.Tensor) -> torch.Tensor:
        """Normalise ``(B, 3, H, W)`` RGB in [0, 1] by the weights' mean and std (float32)."""
        return (images.float() - self.mean) / self.std

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """``(B, width, h, w)`` patch tokens after the final norm, in the model's dtype.

        Args:
            images: ``(B, 3, H, W)`` normalised RGB (:meth:`normalize`), sides multiples of
                the patch size; ``h = H / ph``, ``w = W / pw``.
        """
        ph, pw = self.patch_size
        height, width = images.shape[-2:]
        if height % ph or width % pw:
            raise ValueError(f"input size {height}x{width} is not a multiple of the patch size {ph}x{pw}")
        maps = self.model.forward_intermediates(images.to(self.dtype), indices=1, norm=True, output_fmt="NCHW",
                                                intermediates_only=True)
        return maps[-1]


def _create(backbone: ViTBackbone, overrides: dict[str, Any]) -> nn.Module:
    kwargs: dict[str, Any] = {"pretrained": False, "num_classes": 0, **overrides}
    if backbone.family == "dinov2":
        kwargs.setdefault("dynamic_img_size", True)
    return timm.create_model(backbone.timm_model, **kwargs)


def load_timm_checkpoint(model: nn.Module, path: str | os.PathLike[str], *, arch: str) -> None:
    """Load a checkpoint strictly into a timm model, converting publisher layouts first.

    The model's own timm ``checkpoint_filter_fn`` (the function timm applies to pretrained
    files) maps DINOv2/DINOv3/RADIO release layouts and resamples positional embeddings; then
    every key and shape must match the model's state dict.

    Raises:
        CheckpointMismatchError: missing, unexpected or mis-shaped keys.
    """
    state = read_state_dict(path)
    filter_fn = getattr(sys.modules[type(model).__module__], "checkpoint_filter_fn", None)
    if filter_fn is not None:
        state = filter_fn(state, model)
    load_strict(model, state, source=str(path), arch=arch)


def create_dense_vit(
    name: str,
    *,
    weights: str | os.PathLike[str] | None,
    device: str | torch.device = "cpu",
    download: bool | None = None,
    **architecture: Any,
) -> DenseViT:
    """Build a named DINOv2 / DINOv3 / RADIO backbone with its weights (eval mode).

    Args:
        name: a key of :data:`VIT_BACKBONES` (``"dinov3_vitb16"``, ``"radio_v3_b"``, ...).
        weights: ``"hub"`` for the published weights (timm's copy on the Hugging Face hub,
            the local cache first), a known name or hub id, a checkpoint file (timm's or the
            publisher's layout), or None for random weights.
        device: where the model goes.
        download: allow a download (None: unless ``LMSEG_OFFLINE``/``HF_HUB_OFFLINE``).
        architecture: timm architecture arguments (``depth=2, embed_dim=64, num_heads=2``),
            for reduced random models in tests; not allowed with weights.

    Raises:
        LmsegError: unknown name, weights with architecture changes, missing or unfit weights.
    """
    backbone = get_vit_backbone(name)
    if weights is not None and architecture:
        raise LmsegError(f"{name}: architecture changes ({', '.join(architecture)}) are for random weights only")
    model = _create(backbone, architecture)
    if weights is not None:
        spec = backbone.name if weights == "hub" else weights
        path = resolve_weights(spec, download=download)
        load_timm_checkpoint(model, path, arch=f"{name} ({backbone.timm_model})")
    cfg = backbone.pretrained_cfg
    return DenseViT(model, mean=tuple(cfg.mean), std=tuple(cfg.std), name=name).to(device).eval()
