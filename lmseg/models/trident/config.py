"""Trident's backbones and settings as typed, frozen data, with the published defaults.

* :data:`TRIDENT_BACKBONES`: each variant's backbones (:class:`TridentBackbones`), the
  architecture table of the method (as ``LMSEG_CONFIGS`` is LMSeg's).
* :class:`TridentConfig`: every constant of the method (the steps in :mod:`lmseg.models.trident`;
  public code at commit a93b346), the predictor's settings (``config=`` of the builders); the per-benchmark values
  are :func:`lmseg.models.presets.trident_inference`. Change a field with
  ``dataclasses.replace(config, stride=112)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from lmseg.errors import LmsegError
from lmseg.models import building

#: CLIP's mean/std on the 0-255 scale exactly as the public code writes them (mmseg
#: ``SegDataPreProcessor``: the OpenAI values x 255, rounded to 3 decimals).
CLIP_MEAN_255 = (122.771, 116.746, 104.094)
CLIP_STD_255 = (68.501, 66.632, 70.323)
#: The unrounded OpenAI CLIP mean/std on the [0, 1] scale (the public code's ``UnNormalize``
#: before DINO's ImageNet normalisation).
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


@dataclass(frozen=True)
class RefinementConfig:
    """Optional SAM refinement of the coarse map (Trident step 13).

    Attributes:
        enabled: run the refinement (off by default, as in the public base config).
        coarse_thresh: pixels whose max class probability is below it are ignored, and classes
            whose max probability is below it are skipped; also the mask-prompt cut-off.
        minimal_area: smallest 8-connected region, in pixels of the half-resolution map.
        mask_coefficient: the mask prompt is ``mask_coefficient * p`` where ``p > coarse_thresh``.
        iou_thresh: keep SAM masks whose predicted IoU is strictly above it.
        down_ratio: the probability map is downsampled by this factor before region finding.
    """

    enabled: bool = False
    coarse_thresh: float = 0.2
    minimal_area: int = 225
    mask_coefficient: float = 0.005
    iou_thresh: float = 0.8
    down_ratio: int = 2


@dataclass(frozen=True)
class TridentConfig:
    """All settings of Trident (defaults: the public base config).

    Attributes:
        short_side: keep-ratio resize so the short side is this (per benchmark, see presets).
        max_long_side: ... and the long side at most this (2048).
        window: side of the square sub-images (336).
        stride: step between sub-images (224; 112 for VOC-20).
        beta: proxy attention offset factor: ``S - beta * mean(S)``.
        gamma: proxy attention scale after the offset.
        cos_fac: SAM affinity threshold factor on the mean value cosine similarity.
        refine_neg_cos: keep negative thresholds; if False they become ``neg_cos_replacement``.
        neg_cos_replacement: the threshold used instead of a negative one (0.6).
        max_cos_thresh: cap on the threshold (0.9).
        logit_scale: multiplier of the cosine similarities before the softmax (40).
        prob_thd: pixels whose max class probability is below it become class
            ``background_index`` (0 disables).
        background_index: the class index of "background" in the vocabulary.
        background_names: when non-empty, the queries of class ``background_index`` (Trident's
            background synonyms "sky; wall; tree; ..."); when empty, the class's own names.
        class_list: id of a published class list (:mod:`lmseg.vocab.class_lists`, e.g.
            ``"trident/voc21"``): when the vocabulary is that list's benchmark, its classes are
            queried with the list's names (the published queries); other vocabularies keep
            their own names. Empty: always the vocabulary's own names.
        attribute_weight: how the sentences of an attribute table (``attribute_table=``) join
            each query's template ensemble: ``normalize((1 - w) * template + w * attributes)``
            (:data:`lmseg.text.embedder.Combination` ``"blend"``; 0 = the published method).
            Why a weighted average of the two ensembles and not one ensemble of all sentences:
            the template ensemble is what the published constants (``logit_scale``,
            ``prob_thd``) were set with, so it stays the anchor and ``w`` alone sets how far
            the attributes move it; every class gets the same mix whatever its number of
            phrases (80 templates against 1 to 15 attribute sentences would otherwise weigh
            differently per class); and a class without phrases keeps its embedding bit for
            bit. 0.5 (equal weight) is a neutral default, not a tuned value.
        split_halves: run SAM on the left and right image halves separately (Cityscapes).
        sam_multiple: the image is resized so that its sides are multiples of this before
            SAM's own preprocessing (16).
        window_batch: sub-images per CLIP/DINO forward pass (a speed/memory knob; results do
            not depend on it beyond floating-point rounding).
        max_pixels: larger images are refused before decoding (memory grows with them).
        max_aspect_ratio: more elongated images are refused. The model caps it further at what
            its SAM token grid allows (:attr:`TridentModel.max_aspect_ratio`: 64 for SAM's
            1024-pixel canvas, half that with ``split_halves``).
        refinement: the optional SAM refinement.
    """

    short_side: int = 448
    max_long_side: int = 2048
    window: int = 336
    stride: int = 224
    beta: float = 1.2
    gamma: float = 3.0
    cos_fac: float = 1.2
    refine_neg_cos: bool = True
    neg_cos_replacement: float = 0.6
    max_cos_thresh: float = 0.9
    logit_scale: float = 40.0
    prob_thd: float = 0.0
    background_index: int = 0
    background_names: tuple[str, ...] = ()
    class_list: str = ""
    attribute_weight: float = 0.5
    split_halves: bool = False
    sam_multiple: int = 16
    window_batch: int = 16
    max_pixels: int = 40_000_000
    max_aspect_ratio: float = 64.0
    refinement: RefinementConfig = field(default_factory=RefinementConfig)

    def __post_init__(self) -> None:
        problems = []
        if self.short_side <= 0 or self.max_long_side <= 0:
            problems.append("short_side and max_long_side must be positive")
        if self.window <= 0 or self.stride <= 0:
            problems.append("window and stride must be positive")
        if self.logit_scale <= 0:
            problems.append("logit_scale must be positive")
        if not 0.0 <= self.prob_thd <= 1.0:
            problems.append("prob_thd must lie in [0, 1]")
        if not 0.0 <= self.attribute_weight <= 1.0:
            problems.append("attribute_weight must lie in [0, 1]")
        if self.window_batch <= 0:
            problems.append("window_batch must be positive")
        if self.max_pixels < 1 or self.max_aspect_ratio < 1:
            problems.append("max_pixels and max_aspect_ratio must be at least 1")
        if self.refinement.down_ratio <= 0 or self.refinement.minimal_area < 0:
            problems.append("refinement.down_ratio must be positive and minimal_area non-negative")
        if problems:
            raise LmsegError("invalid TridentConfig: " + "; ".join(problems))


@dataclass(frozen=True)
class TridentBackbones(building.ConfigData):
    """The backbones of a Trident variant (weights are given separately; the method has no
    trained part).

    Attributes:
        name: the variant.
        clip_model: open_clip model name.
        clip_tag: the open_clip pretrained tag of the published weights (named when ``clip=``
            is missing; empty: none).
        clip_quick_gelu: the MLP activation of a CLIP weights file (OpenAI's ViT-B/16:
            QuickGELU; LAION's ViT-H/14: GELU).
        dino_model: timm model name of the DINO ViT-B/16.
        spatial_model: the spatial backbone whose patch similarities drive CLIP's last block
            (the features that splice CLIP): ``"dino"`` (DINO ViT-B/16, ``dino_model``, as
            published) or a DINOv2 / DINOv3 / C-RADIO backbone of
            :data:`lmseg.backbones.dense_vit.VIT_BACKBONES` (``"dinov3_vitb16"``, ``"radio_v3_b"``).
        refine_model: the SAM of the optional refinement prompts: ``"sam"`` (the affinity SAM,
            as published) or a SAM 2.1 model (:data:`lmseg.backbones.sam2.SAM2_MODELS`, e.g.
            ``"sam2.1_hiera_large"``; it encodes the image once more).
    """

    name: str
    clip_model: str
    clip_tag: str
    clip_quick_gelu: bool
    dino_model: str = "vit_base_patch16_224.dino"
    spatial_model: str = "dino"
    refine_model: str = "sam"


TRIDENT_BACKBONES: dict[str, TridentBackbones] = {
    "trident_vitb16": TridentBackbones("trident_vitb16", "ViT-B-16", "openai", clip_quick_gelu=True),
    "trident_vith14": TridentBackbones("trident_vith14", "ViT-H-14", "laion2b_s32b_b79k", clip_quick_gelu=False),
    # the 2026 spatial backbones in DINO's place (not published with Trident; see README)
    "trident_vitb16_dinov2": TridentBackbones("trident_vitb16_dinov2", "ViT-B-16", "openai", clip_quick_gelu=True,
                                              spatial_model="dinov2_vitb14"),
    "trident_vitb16_dinov3": TridentBackbones("trident_vitb16_dinov3", "ViT-B-16", "openai", clip_quick_gelu=True,
                                              spatial_model="dinov3_vitb16"),
    "trident_vitb16_radio": TridentBackbones("trident_vitb16_radio", "ViT-B-16", "openai", clip_quick_gelu=True,
                                             spatial_model="radio_v3_b"),
    # random weights at reduced sizes (:func:`lmseg.models.trident.factory.build_tiny_model`)
    "trident_tiny": TridentBackbones("trident_tiny", "lmseg-tiny-ViT", "", clip_quick_gelu=False,
                                     dino_model="vit_base_patch16_224"),
}


def get_backbones(name: str) -> TridentBackbones:
    """The named variant's backbones (:data:`TRIDENT_BACKBONES`).

    Raises:
        LmsegError: unknown name (the message lists the known ones).
    """
    return building.named_preset(TRIDENT_BACKBONES, name, what="Trident variant")
