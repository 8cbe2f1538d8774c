"""MGCA: open-vocabulary segmentation learned from image-caption pairs alone (SEEDS.md, section 4).

>>> import lmseg
>>> seg = lmseg.create_segmenter("mgca_vitb16", checkpoint="runs/mgca/checkpoints/last.pt")
>>> result = seg.predict("photo.jpg", ["cat", "dog", "sofa, couch"])

Modules: :mod:`.config` (typed configs and presets; every choice the abstract leaves open is a
field), :mod:`.losses` (image, object, region and pixel contrastive levels, hard negatives),
:mod:`.grouping` (group tokens, k-means), :mod:`.model`, :mod:`.units` (pixel, region and
adaptive semantic units), :mod:`.predictor` (the ``Segmenter``), :mod:`.factory`
(checkpoints), :mod:`.data` and :mod:`.task` (training through the shared trainer).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import torch

from lmseg.errors import LmsegError
from lmseg.models.building import layered_settings, loaded_or_seeded
from lmseg.models.mgca.config import (
    MGCA_CONFIGS,
    InferenceConfig,
    LossConfig,
    MGCAConfig,
    get_config,
)
from lmseg.models.mgca.factory import build_model, load_model, model_checkpoint
from lmseg.models.mgca.model import MGCAModel, PhraseBatch
from lmseg.models.mgca.predictor import MGCAPredictor
from lmseg.models.mgca.task import MGCATask, build_task
from lmseg.models.presets import tcl_inference
from lmseg.text.table import TableInput, open_attribute_table

__all__ = [
    "MGCA_CONFIGS",
    "SEGMENTERS",
    "TRAIN_TASKS",
    "InferenceConfig",
    "LossConfig",
    "MGCAConfig",
    "MGCAModel",
    "MGCAPredictor",
    "MGCATask",
    "PhraseBatch",
    "build_model",
    "get_config",
    "load_model",
    "mgca_tiny",
    "mgca_vitb16",
    "model_checkpoint",
]

Weights = str | os.PathLike[str] | None
Inference = InferenceConfig | Mapping[str, Any] | None

_WHERE = "MGCA inference config"


def _inference(base: InferenceConfig, inference: Inference, benchmark: str | None) -> InferenceConfig:
    """``base``, then the family's class list for ``benchmark``, then the caller's fields."""
    preset = tcl_inference(benchmark) if benchmark is not None else None
    return layered_settings(base, preset, inference, preset_where=f"TCL preset {benchmark}", where=_WHERE)


def mgca_vitb16(*, checkpoint: Weights = None, device: str | torch.device = "cpu", attribute_table: TableInput = None,
                inference: Inference = None, benchmark: str | None = None) -> MGCAPredictor:
    """MGCA on CLIP ViT-B/16, trained on image-caption pairs.

    Args:
        checkpoint: a trained MGCA checkpoint (``pipelines.train`` with
            ``configs/mgca_vitb16_cc3m.yaml``); required.
        device: ``"cpu"`` or ``"cuda"``.
        attribute_table: a stage-1 attribute table (Parquet file or rows) of the vocabulary to
            segment, blended into the class embeddings (``inference.attribute_weight``).
        inference: an :class:`InferenceConfig` or a mapping of its fields to replace
            (``{"unit": "pixel"}``); default: short side 448, adaptive semantic unit.
        benchmark: prompt that benchmark's classes with TCL's published names (``"pc59"``,
            ``"ade150"``, ``"voc20"``, ``"cocostuff171"``, ``"cityscapes19"``).
    """
    settings = _inference(InferenceConfig(), inference, benchmark)  # bad settings: before any load
    table = open_attribute_table(attribute_table)
    if checkpoint is None:
        raise LmsegError("mgca_vitb16 needs a trained MGCA checkpoint: pass checkpoint=PATH (train one with "
                         "`python -m pipelines.train --config configs/mgca_vitb16_cc3m.yaml`, which starts from "
                         "CLIP ViT-B-16 openai weights)")
    return MGCAPredictor(load_model(checkpoint, expected="mgca_vitb16", device=device), inference=settings,
                         attribute_table=table)


def mgca_tiny(*, checkpoint: Weights = None, seed: int = 0, device: str | torch.device = "cpu",
              attribute_table: TableInput = None, inference: Inference = None,
              benchmark: str | None = None) -> MGCAPredictor:
    """A tiny MGCA (``lmseg-tiny-ViT`` CLIP) for tests and quick CPU runs.

    Without a checkpoint every weight is random (seeded by ``seed``): its outputs are
    MEANINGLESS, but every code path runs. Default protocol: short side 96, adaptive unit.
    """
    settings = _inference(InferenceConfig(short_side=96, slic_segments=40), inference, benchmark)
    table = open_attribute_table(attribute_table)
    model = loaded_or_seeded(checkpoint, seed, lambda: load_model(checkpoint, expected="mgca_tiny", device=device),
                             lambda: build_model(get_config("mgca_tiny"), device=device))
    return MGCAPredictor(model, inference=settings, attribute_table=table)


SEGMENTERS = {"mgca_vitb16": mgca_vitb16, "mgca_tiny": mgca_tiny}

TRAIN_TASKS = {"mgca": build_task}
