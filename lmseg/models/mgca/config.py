"""Typed, frozen configurations of MGCA (model, losses, inference) and the named presets.

The paper (Liu et al., 2024, SEEDS.md section 4) is known here by its abstract only. What the
abstract states is built as stated: pseudo correspondences at object, region and pixel level
from image-caption pairs, a contrastive loss at each level with hard-negative sampling, and an
adaptive semantic unit at inference. Every point the abstract leaves open is a field below,
set to the established choice of the text-supervised family (GroupViT, TCL, SegCLIP), with the
reason in the field's description, so a reader of the full paper can switch it by config.

``MGCA_CONFIGS`` maps a name (``mgca_vitb16``, ``mgca_tiny``) to an :class:`MGCAConfig`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from lmseg.errors import LmsegError
from lmseg.models import building
from lmseg.vocab.class_lists import get_class_list_source

Grouping = Literal["tokens", "kmeans"]
PixelSelection = Literal["threshold", "top_fraction"]
Unit = Literal["adaptive", "pixel", "region"]
RegionSource = Literal["slic", "groups"]


@dataclass(frozen=True)
class LossConfig:
    """The four contrastive levels: weights, temperatures, thresholds, negatives.

    Attributes:
        image_weight: weight of the caption-image InfoNCE (both directions averaged). 1.0:
            the CLIP objective every member of the family keeps as the anchor.
        object_weight: weight of the object level (phrase-grounded pooled embedding vs phrases).
        region_weight: weight of the region level (group embedding vs its best phrase).
        pixel_weight: weight of the pixel level (patch embedding vs its pseudo phrase).
            All three 1.0: the abstract gives no weighting; equal weights are TCL's choice.
        image_temperature: InfoNCE temperature of the image level. 0.07 is CLIP's initial
            value (fixed here, not learned, so every loss is a plain function of the inputs).
        object_temperature / region_temperature / pixel_temperature: the same for the other
            levels (0.07 each, same reason).
        attention_temperature: softmax temperature of the phrase-as-query attention pooling
            over patches (object level). 0.05: sharper than the contrastive temperature so
            that a phrase pools from a few patches, as TCL's text-grounded masks.
        hard_negatives: K, the number of hard negative phrases per query: the K phrases of
            *other* captions most similar (cosine of text embeddings) to the positive phrase.
            0 uses every phrase of other captions. 16: the abstract's "hard sampling" with a
            count that fits batches of 64+ captions; phrases with the same text as the
            positive are never negatives (they would be false negatives).
        pixel_selection: how confident pseudo pixel labels are chosen: ``"threshold"`` keeps
            patches whose best own-phrase cosine is >= ``pixel_threshold``; ``"top_fraction"``
            keeps the ``pixel_top_fraction`` most confident patches of each image.
            ``top_fraction`` by default: a fixed cosine threshold depends on the backbone's
            calibration, a fraction does not.
        pixel_threshold: see above (cosine in [-1, 1]).
        pixel_top_fraction: see above, in (0, 1]. 0.5: half of the patches.
    """

    image_weight: float = 1.0
    object_weight: float = 1.0
    region_weight: float = 1.0
    pixel_weight: float = 1.0
    image_temperature: float = 0.07
    object_temperature: float = 0.07
    region_temperature: float = 0.07
    pixel_temperature: float = 0.07
    attention_temperature: float = 0.05
    hard_negatives: int = 16
    pixel_selection: PixelSelection = "top_fraction"
    pixel_threshold: float = 0.2
    pixel_top_fraction: float = 0.5

    def __post_init__(self) -> None:
        weights = (self.image_weight, self.object_weight, self.region_weight, self.pixel_weight)
        if any(w < 0 for w in weights) or not any(w > 0 for w in weights):
            raise LmsegError("loss weights must be >= 0 and at least one > 0")
        temps = (self.image_temperature, self.object_temperature, self.region_temperature,
                 self.pixel_temperature, self.attention_temperature)
        if any(t <= 0 for t in temps):
            raise LmsegError("temperatures must be > 0")
        if self.hard_negatives < 0:
            raise LmsegError("hard_negatives must be >= 0 (0: all phrases of other captions)")
        if self.pixel_selection not in ("threshold", "top_fraction"):
            raise LmsegError(f"pixel_selection must be 'threshold' or 'top_fraction', got {self.pixel_selection!r}")
        if not 0 < self.pixel_top_fraction <= 1 or not -1 <= self.pixel_threshold <= 1:
            raise LmsegError("pixel_top_fraction must be in (0, 1] and pixel_threshold in [-1, 1]")


@dataclass(frozen=True)
class MGCAConfig(building.ConfigData):
    """Architecture and training objective of an MGCA model (weights are separate).

    Attributes:
        name: the preset name (recorded in checkpoints).
        clip_model: open_clip model name of both towers (CLIP-initialised, as TCL/SegCLIP).
        clip_quick_gelu: MLP activation of the CLIP weights (OpenAI CLIP: True).
        input_size: side of the square training crop in pixels (224: CLIP's own resolution,
            the family's standard for CC3M training).
        tune_text: train the text tower too. False: the family's usual choice (TCL freezes
            it) keeps the text space of CLIP, so vocabulary embeddings can be cached.
        image_lr_scale: learning-rate multiplier of the CLIP image tower (0.1: fine-tuning a
            pretrained tower with the new heads at full rate, as SegCLIP).
        text_lr_scale: the same for the text tower when ``tune_text``.
        dense_head: add a residual linear map on the dense patch embeddings, zero-initialised
            so training starts from CLIP's own dense features (TCL adds a decoder here).
        grouping: ``"tokens"`` (learned group tokens, GroupViT's choice: a cross-attention
            update then a softmax assignment of patches to groups) or ``"kmeans"``
            (parameter-free soft k-means of the patch embeddings).
        num_groups: G, groups (regions) per image. 8: GroupViT's final stage.
        group_temperature: softmax temperature of the patch-to-group assignment.
        kmeans_iterations: iterations of the k-means grouping.
        max_phrases: most noun phrases kept per caption (the first ones in caption order).
        loss: the contrastive levels (:class:`LossConfig`).
    """

    name: str = "mgca_vitb16"
    clip_model: str = "ViT-B-16"
    clip_quick_gelu: bool = True
    input_size: int = 224
    tune_text: bool = False
    image_lr_scale: float = 0.1
    text_lr_scale: float = 0.01
    dense_head: bool = True
    grouping: Grouping = "tokens"
    num_groups: int = 8
    group_temperature: float = 0.1
    kmeans_iterations: int = 5
    max_phrases: int = 8
    loss: LossConfig = field(default_factory=LossConfig)

    def __post_init__(self) -> None:
        if self.grouping not in ("tokens", "kmeans"):
            raise LmsegError(f"grouping must be 'tokens' or 'kmeans', got {self.grouping!r}")
        if self.num_groups < 1 or self.max_phrases < 1 or self.kmeans_iterations < 1:
            raise LmsegError("num_groups, max_phrases and kmeans_iterations must be >= 1")
        if self.input_size < 16 or self.group_temperature <= 0:
            raise LmsegError("input_size must be >= 16 and group_temperature > 0")
        if self.image_lr_scale < 0 or self.text_lr_scale < 0:
            raise LmsegError("learning-rate scales must be >= 0")


@dataclass(frozen=True)
class InferenceConfig:
    """How an MGCA predictor turns dense embeddings into a label map.

    Attributes:
        short_side: the image is resized (keeping its ratio) so its short side is this, then
            both sides are rounded to multiples of the patch size. 448: twice CLIP's 224, the
            usual test size of the text-supervised family (TCL evaluates at 448).
        max_long_side: cap on the long side after resizing.
        temperature: softmax temperature over the vocabulary (0.07, the training temperature).
        unit: ``"adaptive"`` (the abstract's adaptive semantic unit), ``"pixel"`` (per-pixel
            argmax) or ``"region"`` (one decision per region of ``region_source``).
        region_source: the regions of the ``region`` unit: ``"slic"`` superpixels of the
            image or ``"groups"``, the model's own groups.
        adaptive_levels: the units the adaptive rule may choose, coarse to fine; every pixel
            takes the decision of the coarsest unit containing it whose agreement is at least
            ``min_agreement``, else its own per-pixel decision. Default: the model's groups,
            then SLIC superpixels.
        min_agreement: agreement of a unit = the share of its pixels whose per-pixel argmax
            equals the unit's decision (argmax of its mean scores). 0.7: a unit is trusted
            when seven in ten of its pixels agree; below, it straddles objects.
        slic_segments: approximate number of SLIC superpixels per image.
        slic_compactness: SLIC compactness (colour vs space; 10 is scikit-image's default
            for RGB in Lab).
        prompt_templates: use CLIP's 80 ImageNet templates for class names (the family's
            zero-shot protocol) instead of the single "a photo of a {}.".
        max_pixels: refuse larger images (decode bombs; downscale first).
        class_list: id of a published class list (:mod:`lmseg.vocab.class_lists`, e.g.
            ``"tcl/pc59"``, the names TCL evaluates with): when the vocabulary is that list's
            benchmark, the prompts use the list's names; other vocabularies keep theirs.
    """

    short_side: int = 448
    max_long_side: int = 2048
    temperature: float = 0.07
    unit: Unit = "adaptive"
    region_source: RegionSource = "slic"
    adaptive_levels: tuple[RegionSource, ...] = ("groups", "slic")
    min_agreement: float = 0.7
    slic_segments: int = 150
    slic_compactness: float = 10.0
    prompt_templates: bool = True
    max_pixels: int = 40_000_000
    class_list: str = ""

    def __post_init__(self) -> None:
        if self.class_list:
            get_class_list_source(self.class_list)  # an unknown id fails here, before any model loads
        if self.unit not in ("adaptive", "pixel", "region"):
            raise LmsegError(f"unit must be 'adaptive', 'pixel' or 'region', got {self.unit!r}")
        sources = (self.region_source, *self.adaptive_levels)
        if any(s not in ("slic", "groups") for s in sources):
            raise LmsegError("region_source and adaptive_levels take 'slic' and 'groups'")
        if not 0 < self.min_agreement <= 1:
            raise LmsegError("min_agreement must be in (0, 1]")
        if self.short_side < 16 or self.slic_segments < 1 or self.temperature <= 0:
            raise LmsegError("short_side must be >= 16, slic_segments >= 1, temperature > 0")


MGCA_CONFIGS: dict[str, MGCAConfig] = {
    "mgca_vitb16": MGCAConfig(),
    "mgca_tiny": MGCAConfig(
        name="mgca_tiny", clip_model="lmseg-tiny-ViT", clip_quick_gelu=False, input_size=96, num_groups=4,
        max_phrases=6, image_lr_scale=1.0, loss=LossConfig(hard_negatives=4),
    ),
}


def get_config(name: str) -> MGCAConfig:
    """The named preset (:data:`MGCA_CONFIGS`).

    Raises:
        LmsegError: unknown name (the message lists the known ones).
    """
    return building.named_preset(MGCA_CONFIGS, name, what="MGCA config")


def config_from_dict(data: dict[str, Any]) -> MGCAConfig:
    """An :class:`MGCAConfig` from plain data (a checkpoint's ``config``, a training config's
    ``model:`` section): the preset ``data["name"]`` with the other keys replaced (unknown keys
    are errors)."""
    return building.config_from_dict(MGCA_CONFIGS, data, default="mgca_vitb16", what="MGCA config")
