"""MROVSeg: multi-resolution open-vocabulary segmentation with a single CLIP (SEEDS.md, section 3).

>>> import lmseg
>>> seg = lmseg.create_segmenter("mrovseg_vitb16", checkpoint="mrovseg_vitb16.pt")
>>> result = seg.predict("photo.jpg", ["cat", "dog", "sofa, couch"])

Modules: :mod:`.config` (typed configs and presets; every assumption is a field),
:mod:`.slices` (global view, slice grid, stitching), :mod:`.backbone` (CLIP taps),
:mod:`.adapter` (Multi-Res Adapter), :mod:`.decoder` (masked-attention query decoder),
:mod:`.points`, :mod:`.matcher`, :mod:`.criterion` (Mask2Former's matching and losses),
:mod:`.model` (the ``nn.Module``, semantic inference), :mod:`.text` (class embeddings),
:mod:`.factory` (building, checkpoints), :mod:`.predictor` (the ``Segmenter``), :mod:`.task`
(the training task, ``TRAIN_TASKS``), :mod:`.variants` (the named segmenters, ``SEGMENTERS``):
the layout of every method (:mod:`lmseg.models.building`).
"""

from __future__ import annotations

from lmseg.models.mrovseg.config import MROVSEG_CONFIGS, InferenceConfig, LossConfig, MROVSegConfig, get_config
from lmseg.models.mrovseg.factory import FORMAT, build_model, save_model
from lmseg.models.mrovseg.model import MROVSegModel, semantic_inference
from lmseg.models.mrovseg.predictor import MROVSegPredictor
from lmseg.models.mrovseg.task import TRAIN_TASKS, MROVSegTask, build_task
from lmseg.models.mrovseg.variants import SEGMENTERS, VARIANTS

__all__ = [
    "FORMAT", "MROVSEG_CONFIGS", "SEGMENTERS", "TRAIN_TASKS", "VARIANTS", "InferenceConfig", "LossConfig", "MROVSegConfig",
    "MROVSegModel", "MROVSegPredictor", "MROVSegTask", "build_model", "build_task", "get_config", "save_model", "semantic_inference",
]
