"""MGCA's named segmenters: the variants table and the one builder behind them.

>>> import lmseg
>>> seg = lmseg.create_segmenter("mgca_vitb16", checkpoint="runs/mgca/checkpoints/last.pt")
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from lmseg.models.building import Variant, Weights, segmenters, variant_model, variant_settings
from lmseg.models.mgca.config import InferenceConfig
from lmseg.models.mgca.factory import FORMAT, build_model
from lmseg.models.mgca.predictor import MGCAPredictor
from lmseg.models.presets import tcl_inference

__all__ = ["SEGMENTERS", "VARIANTS"]

VARIANTS: dict[str, Variant] = {
    "mgca_vitb16": Variant("mgca_vitb16", train="configs/mgca_vitb16_cc3m.yaml", doc="""MGCA on CLIP ViT-B/16,
        trained on image-caption pairs.

        Args:
            checkpoint: a trained MGCA checkpoint (``pipelines.train`` with
                ``configs/mgca_vitb16_cc3m.yaml``); required.
            device: ``"cpu"`` or ``"cuda"``.
            inference: an :class:`InferenceConfig` or a mapping of its fields to replace
                (``{"unit": "pixel"}``); default: short side 448, adaptive semantic unit.
            benchmark: prompt that benchmark's classes with TCL's published names (``"pc59"``,
                ``"ade150"``, ``"voc20"``, ``"cocostuff171"``, ``"cityscapes19"``)."""),
    "mgca_tiny": Variant("mgca_tiny", seeded=True, settings={"short_side": 96, "slic_segments": 40},
                         doc="""A tiny MGCA (``lmseg-tiny-ViT`` CLIP) for tests and quick CPU runs.

        Without a checkpoint every weight is random (seeded by ``seed``): its outputs are
        MEANINGLESS, but every code path runs. Default protocol: short side 96, adaptive unit."""),
}


def _build(name: str, variant: Variant, *, checkpoint: Weights = None, seed: int = 0,
           device: str | torch.device = "cpu", inference: InferenceConfig | Mapping[str, Any] | None = None,
           benchmark: str | None = None) -> MGCAPredictor:
    settings = variant_settings(variant, InferenceConfig(), inference, benchmark, tcl_inference,
                                where="MGCA inference config")
    model = variant_model(name, variant, FORMAT, checkpoint, seed, build=build_model, device=device)
    return MGCAPredictor(model, inference=settings)


SEGMENTERS = segmenters(VARIANTS, _build)
