"""LMSeg: LLM-enriched prompts + CLIP/SAM feature fusion + cost aggregation (SEEDS.md, section 1).

>>> import lmseg
>>> seg = lmseg.create_segmenter("lmseg_vitb16", checkpoint="lmseg_vitb16.pt", sam="sam_vit_b")
>>> result = seg.predict("photo.jpg", ["cat", "dog", "sofa, couch"])

Modules: :mod:`.config` (typed configs, named presets), :mod:`.fusion` (F = w F_clip +
(1 - w) proj(F_sam), cost volume), :mod:`.aggregation` (window + linear class attention),
:mod:`.decoder`, :mod:`.model` (the ``nn.Module`` and the loss), :mod:`.factory` (building,
checkpoints), :mod:`.predictor` (the ``Segmenter``), :mod:`.task` (training, ``TRAIN_TASKS``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import torch

from lmseg.errors import LmsegError
from lmseg.models.building import layered_settings, loaded_or_seeded
from lmseg.models.lmseg.config import LMSEG_CONFIGS, InferenceConfig, LMSegConfig, config_from_dict, get_config
from lmseg.models.lmseg.factory import build_model, load_model, save_model
from lmseg.models.lmseg.model import LMSegHead, LMSegModel, segmentation_loss
from lmseg.models.lmseg.predictor import LMSegPredictor
from lmseg.models.lmseg.task import TRAIN_TASKS, LMSegTask
from lmseg.models.presets import catseg_inference
from lmseg.text.table import TableInput, open_attribute_table

__all__ = [
    "LMSEG_CONFIGS",
    "SEGMENTERS",
    "TRAIN_TASKS",
    "InferenceConfig",
    "LMSegConfig",
    "LMSegHead",
    "LMSegModel",
    "LMSegPredictor",
    "LMSegTask",
    "build_model",
    "config_from_dict",
    "get_config",
    "lmseg_tiny",
    "lmseg_vitb16",
    "lmseg_vitl14",
    "load_model",
    "save_model",
    "segmentation_loss",
]

Weights = str | os.PathLike[str] | None
Inference = InferenceConfig | Mapping[str, Any] | None

_WHERE = "LMSeg inference config"


def _inference(base: InferenceConfig, inference: Inference, benchmark: str | None) -> InferenceConfig:
    """``base``, then the ``benchmark`` preset (CAT-Seg's protocol), then the caller's fields."""
    preset = catseg_inference(benchmark) if benchmark is not None else None
    return layered_settings(base, preset, inference, preset_where=f"CAT-Seg preset {benchmark}", where=_WHERE)


def _trained(
    name: str, checkpoint: Weights, clip: Weights, sam: Weights, device: str | torch.device,
    attribute_table: TableInput, inference: Inference, benchmark: str | None,
) -> LMSegPredictor:
    inference = _inference(InferenceConfig(), inference, benchmark)  # bad settings fail before any model loads
    inference.check_window(get_config(name).input_size)
    attribute_table = open_attribute_table(attribute_table)
    if checkpoint is None:
        cfg = get_config(name)
        raise LmsegError(
            f"{name} needs a trained LMSeg checkpoint: pass checkpoint=PATH (train one with `python -m "
            f"pipelines.train --config configs/{name}_cocostuff.yaml`, which starts from CLIP {cfg.clip_model} "
            f"and SAM {cfg.sam_model}); the checkpoint holds the fine-tuned CLIP, so clip= is not needed"
        )
    if clip is not None:
        raise LmsegError(f"{name}: the checkpoint already holds the fine-tuned CLIP weights; do not pass clip=")
    model = load_model(checkpoint, expected=name, sam=sam, device=device)
    return LMSegPredictor(model, inference=inference, attribute_table=attribute_table)


def lmseg_vitb16(
    *, checkpoint: Weights = None, clip: Weights = None, sam: Weights = None, device: str | torch.device = "cpu",
    attribute_table: TableInput = None, inference: Inference = None, benchmark: str | None = None,
) -> LMSegPredictor:
    """LMSeg with CLIP ViT-B/16 (384 input) and SAM ViT-B.

    Args:
        checkpoint: a trained LMSeg checkpoint (``pipelines.train`` output); required.
        clip: not used (the checkpoint holds CLIP); passing it is an error.
        sam: SAM weights: ``"sam_vit_b"`` (downloaded once, checksummed) or a file path.
        device: ``"cpu"`` or ``"cuda"``.
        attribute_table: a stage-1 Parquet table for the vocabulary (or None: templates only).
        inference: the test protocol (default: short side 640, windows 384 / overlap 1/3 + global):
            an :class:`InferenceConfig`, or a mapping of its fields to replace (``{"short_side": 512}``).
        benchmark: start from CAT-Seg's published protocol and class list for this benchmark
            (``"ade150"``, ... see :mod:`.presets`); ``inference`` fields apply on top.
    """
    return _trained("lmseg_vitb16", checkpoint, clip, sam, device, attribute_table, inference, benchmark)


def lmseg_vitl14(
    *, checkpoint: Weights = None, clip: Weights = None, sam: Weights = None, device: str | torch.device = "cpu",
    attribute_table: TableInput = None, inference: Inference = None, benchmark: str | None = None,
) -> LMSegPredictor:
    """LMSeg with CLIP ViT-L/14 at 336 and SAM ViT-B (arguments as :func:`lmseg_vitb16`)."""
    return _trained("lmseg_vitl14", checkpoint, clip, sam, device, attribute_table, inference, benchmark)


def lmseg_tiny(
    *, checkpoint: Weights = None, seed: int = 0, device: str | torch.device = "cpu",
    attribute_table: TableInput = None, inference: Inference = None, benchmark: str | None = None,
) -> LMSegPredictor:
    """A tiny LMSeg (``lmseg-tiny-ViT`` CLIP, tiny SAM, 64-px windows) for tests and pipeline tests.

    With no checkpoint every weight is random (seeded by ``seed``): its outputs are
    MEANINGLESS. It exercises the real code paths in a fraction of a second. Default protocol:
    short side 96, windows of 64 with overlap 1/3 plus the global view.
    """
    inference = _inference(InferenceConfig(short_side=96), inference, benchmark)
    attribute_table = open_attribute_table(attribute_table)
    model = loaded_or_seeded(checkpoint, seed, lambda: load_model(checkpoint, expected="lmseg_tiny", device=device),
                             lambda: build_model(get_config("lmseg_tiny"), device=device))
    return LMSegPredictor(model, inference=inference, attribute_table=attribute_table)


SEGMENTERS = {"lmseg_vitb16": lmseg_vitb16, "lmseg_vitl14": lmseg_vitl14, "lmseg_tiny": lmseg_tiny}
