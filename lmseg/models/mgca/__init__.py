"""MGCA: open-vocabulary segmentation learned from image-caption pairs alone (SEEDS.md, section 4).

>>> import lmseg
>>> seg = lmseg.create_segmenter("mgca_vitb16", checkpoint="runs/mgca/checkpoints/last.pt")
>>> result = seg.predict("photo.jpg", ["cat", "dog", "sofa, couch"])

Modules: :mod:`.config` (typed configs and presets; every choice the abstract leaves open is a
field), :mod:`.losses` (image, object, region and pixel contrastive levels, hard negatives),
:mod:`.grouping` (group tokens, k-means), :mod:`.model`, :mod:`.units` (pixel, region and
adaptive semantic units), :mod:`.predictor` (the ``Segmenter``), :mod:`.factory`
(checkpoints), :mod:`.data` and :mod:`.task` (training through the shared trainer,
``TRAIN_TASKS``), :mod:`.variants` (the named segmenters, ``SEGMENTERS``): the layout of every
method (:mod:`lmseg.models.building`).
"""

from __future__ import annotations

from lmseg.models.mgca.config import MGCA_CONFIGS, InferenceConfig, LossConfig, MGCAConfig, get_config
from lmseg.models.mgca.factory import FORMAT, build_model, save_model
from lmseg.models.mgca.model import MGCAModel, PhraseBatch
from lmseg.models.mgca.predictor import MGCAPredictor
from lmseg.models.mgca.task import TRAIN_TASKS, MGCATask, build_task
from lmseg.models.mgca.variants import SEGMENTERS, VARIANTS

__all__ = [
    "FORMAT",
    "MGCA_CONFIGS",
    "SEGMENTERS",
    "TRAIN_TASKS",
    "VARIANTS",
    "InferenceConfig",
    "LossConfig",
    "MGCAConfig",
    "MGCAModel",
    "MGCAPredictor",
    "MGCATask",
    "PhraseBatch",
    "build_model",
    "build_task",
    "get_config",
    "save_model",
]
