"""MROVSeg's named segmenters: the variants table and the one builder behind them.

>>> import lmseg
>>> seg = lmseg.create_segmenter("mrovseg_vitb16", checkpoint="mrovseg_vitb16.pt")
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import torch

from lmseg.models.building import Variant, Weights, segmenters, variant_model, variant_settings
from lmseg.models.mrovseg.config import InferenceConfig
from lmseg.models.mrovseg.factory import FORMAT, build_model
from lmseg.models.mrovseg.predictor import MROVSegPredictor
from lmseg.models.presets import catseg_inference

__all__ = ["SEGMENTERS", "VARIANTS"]

_TRAINED = """MROVSeg with CLIP {clip}.

Args:
    checkpoint: a trained MROVSeg checkpoint (``pipelines.train`` output); required.
    device: ``"cpu"`` or ``"cuda"``.
    attribute_table: a stage-1 Parquet table for the vocabulary (or None: templates only).
    inference: an :class:`InferenceConfig` or a mapping of its fields (``{{"short_side": 512}}``).
    benchmark: prompt that benchmark's classes with CAT-Seg's published names (``"ade150"``,
        ... see :mod:`lmseg.models.presets`).
"""

VARIANTS: dict[str, Variant] = {
    "mrovseg_vitb16": Variant("mrovseg_vitb16", train="configs/mrovseg_vitb16_cocostuff.yaml",
                              doc=_TRAINED.format(clip="ViT-B/16 (224 slices + global view)")),
    "mrovseg_vitl14": Variant("mrovseg_vitl14",
                              train="configs/mrovseg_vitb16_cocostuff.yaml --set model.preset=mrovseg_vitl14",
                              doc=_TRAINED.format(clip="ViT-L/14 at 336 (the paper's scale)")),
    "mrovseg_tiny": Variant("mrovseg_tiny", seeded=True, settings={"short_side": 96}, doc="""A tiny MROVSeg
        (``lmseg-tiny-ViT`` CLIP, 64-px slices) for tests and demos.

        With no checkpoint every weight is random (seeded by ``seed``): its outputs are
        MEANINGLESS. Default protocol: short side 96."""),
}


def _catseg_class_list(benchmark: str) -> dict[str, Any]:
    """CAT-Seg's class list only: MROVSeg keeps its own resize (its slices)."""
    return catseg_inference(benchmark, class_list_only=True)


def _build(name: str, variant: Variant, *, checkpoint: Weights = None, seed: int = 0,
           device: str | torch.device = "cpu",
           attribute_table: str | os.PathLike[str] | Mapping[int, object] | None = None,
           inference: InferenceConfig | Mapping[str, Any] | None = None,
           benchmark: str | None = None) -> MROVSegPredictor:
    settings = variant_settings(variant, InferenceConfig(), inference, benchmark, _catseg_class_list,
                                where="MROVSeg inference config")
    model = variant_model(name, variant, FORMAT, checkpoint, seed, build=build_model, device=device)
    return MROVSegPredictor(model, inference=settings, attribute_table=attribute_table)


SEGMENTERS = segmenters(VARIANTS, _build)
