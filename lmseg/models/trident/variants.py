"""Trident's named segmenters: the variants table and the one builder behind them.

>>> import lmseg
>>> seg = lmseg.create_segmenter("trident_vitb16", clip="openai", dino="dino_vitb16", sam="sam_vit_b")
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import torch

from lmseg.config_overrides import override_dataclass
from lmseg.inference.classes import ClassBudget
from lmseg.models.building import Variant, Weights, seeded, segmenters, variant_settings
from lmseg.models.presets import trident_inference
from lmseg.models.trident.config import TridentConfig, get_backbones
from lmseg.models.trident.factory import build_model, build_tiny_model
from lmseg.models.trident.predictor import TridentPredictor
from lmseg.text.table import TableInput, open_attribute_table

__all__ = ["SEGMENTERS", "VARIANTS"]

#: The weight arguments of the published variants (the tiny one takes none).
_PUBLISHED = ("clip", "dino", "sam", "sam_model", "sam2", "half", "clip_quick_gelu", "download")

_DOC = """Trident with {clip}, {spatial} and SAM (ViT-B by default).

Args:
    clip: {tag!r} (open_clip fetches it) or a CLIP checkpoint file ({activation}, see
        ``clip_quick_gelu``).
    dino: the spatial backbone's weights: {dino}
    sam: ``"sam_vit_b"`` (official file, checksummed) or a file; must fit ``sam_model``.
    sam_model: ``"vit_b"``, ``"vit_l"`` or ``"vit_h"``.
    spatial_model: another spatial backbone than the variant's (``"dino"``, ``"dinov2_vitb14"``,
        ``"dinov3_vitb16"``, ``"radio_v3_b"``, ... :data:`lmseg.backbones.dense_vit.VIT_BACKBONES`).
    refine_model: the SAM of the refinement prompts: ``"sam"`` (default, as published) or
        SAM 2.1 (``"sam2.1_hiera_tiny"`` ... ``"sam2.1_hiera_large"``), with ``sam2=``.
    sam2: the SAM 2.1 weights: its known name (``"sam2.1_hiera_large"``, downloaded once), its
        hub id (``"facebook/sam2.1-hiera-large"``) or a file.
    config: the constants: a :class:`TridentConfig`, or a mapping of fields to replace in
        the base config or in the ``benchmark`` preset (``{{"stride": 112}}``; nested
        ``{{"refinement": {{"enabled": True}}}}``). Default: the base config.
    benchmark: a preset name (``"ade150"``, ``"voc21"``, ... see
        :func:`lmseg.models.presets.trident_inference`).
    inference: class early rejection and class chunks, shared with the other methods: a
        :class:`~lmseg.inference.classes.ClassBudget` or a mapping (``{{"max_classes": 64}}``).
    device: default CUDA if available, else CPU.
    half: fp16 encoders (default: on CUDA only, as the public runs).
    clip_quick_gelu: the activation of a CLIP checkpoint file (default: {activation}).
    download: allow downloads of known files (None: unless ``LMSEG_OFFLINE``).
    attribute_table: a stage-1 attribute table (Parquet file or rows) of the vocabulary to
        segment: its sentences are blended into the queries (``config.attribute_weight``).

Raises:
    LmsegError: weights not given, not found, not downloadable or not fitting (one error
        naming every problem), a bad preset, or an unreadable attribute table.
"""

_DINO = ("``\"dino_vitb16\"`` (official file), ``\"timm\"`` (timm's hub weights) or a file (another "
         "``spatial_model``: ``\"hub\"`` or a file).")
_HUB = "``\"hub\"`` (timm's copy on the Hugging Face hub, the local cache first), or a file (timm's or {who}'s layout)."


def _published(name: str, clip: str, tag: str, activation: str, spatial: str = "DINO ViT-B/16", dino: str = _DINO,
               note: str = "") -> Variant:
    doc = _DOC.format(clip=clip, tag=tag, activation=activation, spatial=spatial, dino=dino) + note
    return Variant(name, weights=_PUBLISHED, doc=doc)


_NEW = """
Not published: {spatial} takes DINO's place (proxy attention from its patch similarities);
everything else is Trident as published. Verified here with random weights only.
"""

VARIANTS: dict[str, Variant] = {
    "trident_vitb16": _published("trident_vitb16", "OpenAI CLIP ViT-B/16", "openai", "QuickGELU"),
    "trident_vith14": _published("trident_vith14", "OpenCLIP ViT-H/14 (LAION-2B)", "laion2b_s32b_b79k", "GELU"),
    **{
        name: _published(name, "OpenAI CLIP ViT-B/16", "openai", "QuickGELU", spatial=spatial,
                         dino=_HUB.format(who=who), note=_NEW.format(spatial=spatial))
        for name, spatial, who in (
            ("trident_vitb16_dinov2", "DINOv2 ViT-B/14", "DINOv2"),
            ("trident_vitb16_dinov3", "DINOv3 ViT-B/16", "DINOv3"),
            ("trident_vitb16_radio", "C-RADIOv3-B", "RADIO"),
        )
    },
    "trident_tiny": Variant("trident_tiny", weights=(), seeded=True,
                            settings={"short_side": 96, "window": 64, "stride": 32, "window_batch": 8},
                            doc="""Trident on tiny RANDOM backbones, for tests and plumbing demos.
        Its outputs are meaningless.

        All weights are random from ``seed`` (the same seed gives the same model); every step
        of the real method runs, only the sizes differ (default settings: short side 96,
        64-pixel windows with stride 32; a ``config`` mapping replaces fields of them). CPU
        and fp32 unless ``device`` says otherwise. ``spatial_model`` (``"dinov3_vitb16"``,
        ``"radio_v3_b"``, ...) swaps in that timm architecture at 2 blocks of width 32;
        ``refine_model="sam2.1_test_tiny"`` refines with a reduced SAM 2.1. ``attribute_table``: as for trident_vitb16."""),
}


def _build(name: str, variant: Variant, *, clip: Weights = None, dino: Weights = None, sam: Weights = None,
           sam_model: str = "vit_b", sam2: Weights = None, spatial_model: str | None = None,
           refine_model: str | None = None, config: TridentConfig | Mapping[str, Any] | None = None,
           benchmark: str | None = None, seed: int = 0, device: str | torch.device | None = None,
           half: bool | None = None, clip_quick_gelu: bool | None = None,
           download: bool | None = None, attribute_table: TableInput = None,
           inference: ClassBudget | Mapping[str, Any] | None = None) -> TridentPredictor:
    settings = variant_settings(variant, TridentConfig(), config, benchmark, trident_inference, where="Trident config")
    budget = override_dataclass(ClassBudget(), inference, where="Trident inference settings")
    table = open_attribute_table(attribute_table)  # a bad table fails before any weights load
    backbones = get_backbones(variant.config)
    chosen = {k: v for k, v in (("spatial_model", spatial_model), ("refine_model", refine_model)) if v is not None}
    if chosen:
        backbones = replace(backbones, **chosen)
    if variant.seeded:
        dev = torch.device(device if device is not None else "cpu")
        model = seeded(seed, lambda: build_tiny_model(backbones, settings, device=dev))
    else:
        dev = torch.device(device if device is not None else "cuda" if torch.cuda.is_available() else "cpu")
        model = build_model(backbones, settings, clip=clip, dino=dino, sam=sam, sam_model=sam_model, sam2=sam2,
                            device=dev, half=dev.type == "cuda" if half is None else half,
                            clip_quick_gelu=clip_quick_gelu, download=download)
    return TridentPredictor(model, device=dev, attribute_table=table, inference=budget)


SEGMENTERS = segmenters(VARIANTS, _build)
