"""MROVSeg: multi-resolution open-vocabulary segmentation with a single CLIP (SEEDS.md, section 3).

>>> import lmseg
>>> seg = lmseg.create_segmenter("mrovseg_vitb16", checkpoint="mrovseg_vitb16.pt")
>>> result = seg.predict("photo.jpg", ["cat", "dog", "sofa, couch"])

Modules: :mod:`.config` (typed configs and presets; every assumption is a field),
:mod:`.slices` (global view, slice grid, stitching), :mod:`.backbone` (CLIP taps),
:mod:`.adapter` (Multi-Res Adapter), :mod:`.decoder` (masked-attention query decoder),
:mod:`.points`, :mod:`.matcher`, :mod:`.criterion` (Mask2Former's matching and losses),
:mod:`.model` (the ``nn.Module``, semantic inference),
:mod:`.factory` (building, checkpoints), :mod:`.predictor` (the ``Segmenter``), :mod:`.task`
(the training task).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import torch

from lmseg.errors import LmsegError
from lmseg.models.building import layered_settings, loaded_or_seeded
from lmseg.models.mrovseg.config import MROVSEG_CONFIGS, InferenceConfig, LossConfig, MROVSegConfig, get_config
from lmseg.models.mrovseg.factory import build_model, load_model, save_model
from lmseg.models.mrovseg.model import MROVSegModel, semantic_inference
from lmseg.models.mrovseg.predictor import MROVSegPredictor
from lmseg.models.mrovseg.task import MROVSegTask, build_task
from lmseg.models.presets import catseg_inference
from lmseg.text.table import TableInput, open_attribute_table

__all__ = [
    "MROVSEG_CONFIGS", "SEGMENTERS", "TRAIN_TASKS", "InferenceConfig", "LossConfig", "MROVSegConfig", "MROVSegModel",
    "MROVSegPredictor", "MROVSegTask", "build_model", "build_task", "get_config", "load_model", "mrovseg_tiny",
    "mrovseg_vitb16", "mrovseg_vitl14", "save_model", "semantic_inference",
]

Weights = str | os.PathLike[str] | None
Inference = InferenceConfig | Mapping[str, Any] | None

_WHERE = "MROVSeg inference config"


def _inference(base: InferenceConfig, inference: Inference, benchmark: str | None) -> InferenceConfig:
    """``base``, then CAT-Seg's class list for ``benchmark``, then the caller's fields."""
    preset = catseg_inference(benchmark, class_list_only=True) if benchmark is not None else None
    return layered_settings(base, preset, inference, preset_where=f"CAT-Seg preset {benchmark}", where=_WHERE)


def _trained(name: str, checkpoint: Weights, device: str | torch.device, attribute_table: TableInput,
             inference: Inference, benchmark: str | None) -> MROVSegPredictor:
    inference = _inference(InferenceConfig(), inference, benchmark)  # bad options fail before loading
    attribute_table = open_attribute_table(attribute_table)
    if checkpoint is None:
        raise LmsegError(f"{name} needs a trained MROVSeg checkpoint: pass checkpoint=PATH (train one with "
                         f"`python -m pipelines.train --config configs/{name}_cocostuff.yaml`, which starts from "
                         f"CLIP {get_config(name).clip_model})")
    model = load_model(checkpoint, expected=name, device=device)
    return MROVSegPredictor(model, inference=inference, attribute_table=attribute_table)


def mrovseg_vitb16(*, checkpoint: Weights = None, device: str | torch.device = "cpu", attribute_table: TableInput = None,
                   inference: Inference = None, benchmark: str | None = None) -> MROVSegPredictor:
    """MROVSeg with CLIP ViT-B/16 (224 slices + global view).

    Args:
        checkpoint: a trained MROVSeg checkpoint (``pipelines.train`` output); required.
        device: ``"cpu"`` or ``"cuda"``.
        attribute_table: a stage-1 Parquet table for the vocabulary (or None: templates only).
        inference: an :class:`InferenceConfig` or a mapping of its fields (``{"short_side": 512}``).
        benchmark: prompt that benchmark's classes with CAT-Seg's published names
            (``"ade150"``, ... see :mod:`lmseg.models.presets`).
    """
    return _trained("mrovseg_vitb16", checkpoint, device, attribute_table, inference, benchmark)


def mrovseg_vitl14(*, checkpoint: Weights = None, device: str | torch.device = "cpu", attribute_table: TableInput = None,
                   inference: Inference = None, benchmark: str | None = None) -> MROVSegPredictor:
    """MROVSeg with CLIP ViT-L/14 at 336 (the paper's scale; arguments as :func:`mrovseg_vitb16`)."""
    return _trained("mrovseg_vitl14", checkpoint, device, attribute_table, inference, benchmark)


def mrovseg_tiny(*, checkpoint: Weights = None, seed: int = 0, device: str | torch.device = "cpu",
                 attribute_table: TableInput = None, inference: Inference = None,
                 benchmark: str | None = None) -> MROVSegPredictor:
    """A tiny MROVSeg (``lmseg-tiny-ViT`` CLIP, 64-px slices) for tests and demos.

    With no checkpoint every weight is random (seeded by ``seed``): its outputs are MEANINGLESS.
    Default protocol: short side 96.
    """
    inference = _inference(InferenceConfig(short_side=96), inference, benchmark)
    attribute_table = open_attribute_table(attribute_table)
    model = loaded_or_seeded(checkpoint, seed, lambda: load_model(checkpoint, expected="mrovseg_tiny", device=device),
                             lambda: build_model(get_config("mrovseg_tiny"), device=device))
    return MROVSegPredictor(model, inference=inference, attribute_table=attribute_table)


SEGMENTERS = {"mrovseg_vitb16": mrovseg_vitb16, "mrovseg_vitl14": mrovseg_vitl14, "mrovseg_tiny": mrovseg_tiny}
TRAIN_TASKS = {"mrovseg": build_task}
