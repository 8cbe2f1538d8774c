"""Typed, frozen configurations of MROVSeg and its predictor, and the named presets.

The abstract (SEEDS.md section 3) fixes the design: a global view and CLIP-sized slices of the
full-resolution image through ONE CLIP, a Multi-Res Adapter (learnable convolutions restore
continuity across slices, a scale attention fuses global and local features, at several CLIP
depths), and object queries with masked cross-attention to the multi-resolution features.
Everything below that level is an assumption of ours (the paper's full text is not available);
each one is a field here, its default and the reason in the docstring, so a reader of the
paper can switch it by configuration. ``docs/mrovseg.md`` lists them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from lmseg.errors import LmsegError
from lmseg.models import building
from lmseg.vocab.class_lists import get_class_list_source

ContinuityConv = Literal["depthwise_separable", "full", "none"]
PromptPooling = Literal["mean", "channels"]


@dataclass(frozen=True)
class MROVSegConfig(building.ConfigData):
    """Architecture of an MROVSeg model (weights are separate).

    Attributes:
        name: the preset name (recorded in checkpoints).
        clip_model: open_clip model name of the single CLIP backbone.
        clip_quick_gelu: MLP activation of the CLIP weights (OpenAI CLIP: True).
        slice_size: side of a slice and of the global view in pixels. Default: CLIP's native
            input size (224 for ViT-B/16, 336 for ViT-L/14-336), the "input size of the
            well-trained image encoder" of the abstract.
        slice_overlap: fraction of a slice shared with its neighbour; the stride is rounded
            down to a multiple of the patch size so slice features align with the full-image
            token grid. Default 1/3 (the sliding-window overlap of CAT-Seg/SAN test protocols;
            the paper's stride is unknown).
        slice_batch: slices per CLIP forward pass (memory only: features are identical).
        use_slices: False runs the global view only (the "slicing off" baseline).
        taps: CLIP depths the adapter reads: 0 is the stem (tokens after the patch embedding,
            class token, positional embedding and ``ln_pre``), k >= 1 the output of block k
            (1-based). Default: stem + three evenly spaced blocks (the abstract reports stem
            and 6/12/18 of ViT-L's 24; 3/6/9 for ViT-B's 12).
        level_strides: output stride (pixels per cell) of the pyramid level made from each tap,
            shallow to deep. Default (4, 8, 16, 32): ViTDet/ViT-Adapter's simple feature
            pyramid (shallow taps become the fine levels).
        continuity_conv: the convolution that restores continuity across slice borders on the
            stitched local map (residual: ``x + conv(x)``): ``depthwise_separable`` (default, the
            issue's choice: cheap and local), ``full`` (a dense k x k conv) or ``none``.
        continuity_kernel: its kernel size.
        hidden_dim: width of the adapter outputs and of the decoder (Mask2Former: 256).
        mask_dim: width of the per-pixel embeddings (Mask2Former: 256).
        num_queries: object queries Q (Mask2Former: 100).
        decoder_layers: decoder layers L (Mask2Former: 9), cycling over the three coarsest
            pyramid levels from coarse to fine.
        decoder_levels: how many of the coarsest pyramid levels the decoder attends to
            (Mask2Former: 3; the finest level makes the per-pixel embeddings).
        num_heads: attention heads of the decoder (Mask2Former: 8).
        ffn_dim: hidden width of the decoder's feed-forward layers (Mask2Former: 2048).
        mask_threshold: a query attends where sigmoid(previous mask) >= this (Mask2Former: 0.5).
        logit_scale_init: initial temperature of the cosine class scores (CLIP's 1/0.07).
        prompt_pooling: the class side of the cosine: ``mean`` (one embedding per class, the
            average of the attribute prompt channels; default, as FC-CLIP's one embedding per
            class) or ``channels`` (cosine with each channel, averaged).
        num_prompts: prompt channels per class provided by :mod:`lmseg.text.prompts`
            (template + colour + shape + texture = 4).
        finetune_clip_attention: train the image tower's attention projections (False: CLIP
            frozen, the abstract's "well-trained" encoder kept as is; SAN/FC-CLIP freeze it).
    """

    name: str = "mrovseg_vitb16"
    clip_model: str = "ViT-B-16"
    clip_quick_gelu: bool = True
    slice_size: int = 224
    slice_overlap: float = 1.0 / 3.0
    slice_batch: int = 16
    use_slices: bool = True
    taps: tuple[int, ...] = (0, 3, 6, 9)
    level_strides: tuple[int, ...] = (4, 8, 16, 32)
    continuity_conv: ContinuityConv = "depthwise_separable"
    continuity_kernel: int = 3
    hidden_dim: int = 256
    mask_dim: int = 256
    num_queries: int = 100
    decoder_layers: int = 9
    decoder_levels: int = 3
    num_heads: int = 8
    ffn_dim: int = 2048
    mask_threshold: float = 0.5
    logit_scale_init: float = 1.0 / 0.07
    prompt_pooling: PromptPooling = "mean"
    num_prompts: int = 4
    finetune_clip_attention: bool = False

    def __post_init__(self) -> None:
        if not 0.0 <= self.slice_overlap < 1.0:
            raise LmsegError(f"slice_overlap must be in [0, 1), got {self.slice_overlap}")
        if self.continuity_conv not in ("depthwise_separable", "full", "none"):
            raise LmsegError(f"continuity_conv must be depthwise_separable, full or none, got {self.continuity_conv!r}")
        if self.prompt_pooling not in ("mean", "channels"):
            raise LmsegError(f"prompt_pooling must be 'mean' or 'channels', got {self.prompt_pooling!r}")
        if len(self.taps) != len(self.level_strides) or len(self.taps) < 2:
            raise LmsegError("taps and level_strides need the same length (at least 2)")
        if list(self.level_strides) != sorted(set(self.level_strides)) or self.level_strides[0] <= 0:
            raise LmsegError(f"level_strides must be increasing and positive, got {list(self.level_strides)}")
        if list(self.taps) != sorted(set(self.taps)) or self.taps[0] < 0:
            raise LmsegError(f"taps must be increasing and non-negative, got {list(self.taps)}")
        if not 1 <= self.decoder_levels < len(self.taps):
            raise LmsegError("decoder_levels must be in [1, len(taps)): the finest level makes the pixel embeddings")
        if self.hidden_dim % self.num_heads:
            raise LmsegError("hidden_dim must be divisible by num_heads")
        if not 0.0 < self.mask_threshold < 1.0:
            raise LmsegError(f"mask_threshold must be in (0, 1), got {self.mask_threshold}")
        for name in ("slice_size", "slice_batch", "hidden_dim", "mask_dim", "num_queries", "decoder_layers",
                     "ffn_dim", "continuity_kernel", "num_prompts"):
            if getattr(self, name) <= 0:
                raise LmsegError(f"{name} must be positive")


@dataclass(frozen=True)
class InferenceConfig:
    """How the predictor runs the model over an image.

    Attributes:
        short_side: the image is resized (keeping its aspect ratio) so its short side is this
            many pixels (the working resolution the slices are cut from); None keeps its size.
            Default 640 (the ADE/COCO-Stuff test protocol of Mask2Former and CAT-Seg).
        max_long_side: the long side is capped at this (the short side then shrinks).
        clip_ensemble: weight of CLIP's own dense zero-shot scores in a pixel-wise ensemble
            ``(1 - a) * mrovseg + a * clip`` (0: off, the default).
        clip_temperature: logit scale of those zero-shot scores (CLIP's 100).
        max_pixels: larger input images are refused.
        class_list: id of a published class list (:mod:`lmseg.vocab.class_lists`, e.g.
            ``"catseg/ade150"``, the protocol MROVSeg follows): when the vocabulary is that
            list's benchmark, the prompts use the list's names; other vocabularies keep theirs.
    """

    short_side: int | None = 640
    max_long_side: int = 2560
    clip_ensemble: float = 0.0
    clip_temperature: float = 100.0
    max_pixels: int = 40_000_000
    class_list: str = ""

    def __post_init__(self) -> None:
        if not 0.0 <= self.clip_ensemble <= 1.0:
            raise LmsegError(f"clip_ensemble must be in [0, 1], got {self.clip_ensemble}")
        if self.short_side is not None and self.short_side < 16:
            raise LmsegError(f"short_side must be at least 16, got {self.short_side}")
        if self.class_list:
            get_class_list_source(self.class_list)  # an unknown id fails here, before any model loads


@dataclass(frozen=True)
class LossConfig:
    """Matching costs, loss weights and point sampling (Mask2Former's defaults throughout).

    Attributes:
        class_weight: weight of the classification cross-entropy (cost and loss): 2.0.
        mask_weight: weight of the mask binary cross-entropy (cost and loss): 5.0.
        dice_weight: weight of the dice loss (cost and loss): 5.0.
        no_object_weight: cross-entropy weight of the "no object" class: 0.1.
        num_points: points per mask for the matching costs and the mask losses: 12544.
        oversample: candidate points per kept point for importance sampling: 3.0.
        importance: fraction of the kept points chosen by uncertainty: 0.75.
        deep_supervision: apply the losses to every decoder layer's prediction (and the one
            before the first layer), not only the last.
    """

    class_weight: float = 2.0
    mask_weight: float = 5.0
    dice_weight: float = 5.0
    no_object_weight: float = 0.1
    num_points: int = 12544
    oversample: float = 3.0
    importance: float = 0.75
    deep_supervision: bool = True

    def __post_init__(self) -> None:
        if self.num_points <= 0 or self.oversample < 1.0 or not 0.0 <= self.importance <= 1.0:
            raise LmsegError("num_points must be positive, oversample >= 1 and importance in [0, 1]")
        if min(self.class_weight, self.mask_weight, self.dice_weight, self.no_object_weight) < 0:
            raise LmsegError("loss weights must be non-negative")


MROVSEG_CONFIGS: dict[str, MROVSegConfig] = {
    "mrovseg_vitb16": MROVSegConfig(),
    "mrovseg_vitl14": MROVSegConfig(
        name="mrovseg_vitl14", clip_model="ViT-L-14-336", slice_size=336, taps=(0, 6, 12, 18),
    ),
    "mrovseg_tiny": MROVSegConfig(
        name="mrovseg_tiny", clip_model="lmseg-tiny-ViT", clip_quick_gelu=False, slice_size=64, slice_batch=8,
        taps=(0, 1, 2, 3), hidden_dim=16, mask_dim=16, num_queries=8, decoder_layers=3, num_heads=2, ffn_dim=32,
    ),
}


def get_config(name: str) -> MROVSegConfig:
    """The named preset (:data:`MROVSEG_CONFIGS`).

    Raises:
        LmsegError: unknown name (the message lists the known ones).
    """
    return building.named_preset(MROVSEG_CONFIGS, name, what="MROVSeg config")


def config_from_dict(data: dict[str, Any]) -> MROVSegConfig:
    """An :class:`MROVSegConfig` from plain data (a checkpoint's ``config``): the preset
    ``data["name"]`` with the other fields replaced; unknown keys are errors."""
    return building.config_from_dict(MROVSEG_CONFIGS, data, default="mrovseg_vitb16", what="MROVSeg config")


__all__ = ["MROVSEG_CONFIGS", "InferenceConfig", "LossConfig", "MROVSegConfig", "config_from_dict", "get_config"]
