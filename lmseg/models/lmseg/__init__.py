"""LMSeg: LLM-enriched prompts + CLIP/SAM feature fusion + cost aggregation (SEEDS.md, section 1).

>>> import lmseg
>>> seg = lmseg.create_segmenter("lmseg_vitb16", checkpoint="lmseg_vitb16.pt", sam="sam_vit_b")
>>> result = seg.predict("photo.jpg", ["cat", "dog", "sofa, couch"])

Modules (the layout of every method, :mod:`lmseg.models.building`): :mod:`.config` (typed
configs, named presets), :mod:`.fusion` (F = w F_clip + (1 - w) proj(F_sam), cost volume),
:mod:`.aggregation` (window + linear class attention), :mod:`.decoder`, :mod:`.model` (the
``nn.Module`` and the loss), :mod:`.factory` (building, checkpoints), :mod:`.predictor` (the
``Segmenter``), :mod:`.task` (training, ``TRAIN_TASKS``), :mod:`.variants` (the named
segmenters, ``SEGMENTERS``).
"""

from __future__ import annotations

from lmseg.models.lmseg.config import LMSEG_CONFIGS, InferenceConfig, LMSegConfig, config_from_dict, get_config
from lmseg.models.lmseg.factory import FORMAT, build_model, save_model
from lmseg.models.lmseg.model import LMSegHead, LMSegModel, segmentation_loss
from lmseg.models.lmseg.predictor import LMSegPredictor
from lmseg.models.lmseg.task import TRAIN_TASKS, LMSegTask
from lmseg.models.lmseg.variants import SEGMENTERS, VARIANTS

__all__ = [
    "FORMAT",
    "LMSEG_CONFIGS",
    "SEGMENTERS",
    "TRAIN_TASKS",
    "VARIANTS",
    "InferenceConfig",
    "LMSegConfig",
    "LMSegHead",
    "LMSegModel",
    "LMSegPredictor",
    "LMSegTask",
    "build_model",
    "config_from_dict",
    "get_config",
    "save_model",
    "segmentation_loss",
]
