"""Trident: training-free open-vocabulary segmentation from CLIP, DINO and SAM (SEEDS.md section 2).

>>> import lmseg
>>> seg = lmseg.create_segmenter("trident_vitb16", clip="openai", dino="dino_vitb16", sam="sam_vit_b")
>>> result = seg.predict("photo.jpg", ["cat", "dog", "sofa, couch"])

Modules, one concept each, in the layout of every method (:mod:`lmseg.models.building`):

* :mod:`.config`: the variants' backbones and the typed settings with the published defaults
  (the per-benchmark values: :func:`lmseg.models.presets.trident_inference`).
* :mod:`.preprocess`: input sizes and resizes.
* :mod:`.proxy_attention`: CLIP's last block with DINO-proxy attention.
* :mod:`.sam_affinity`: SAM's filtered last-block attention and global aggregation.
* :mod:`.classify`: cosines, probabilities, background threshold.
* :mod:`.regions` / :mod:`.refine`: optional SAM refinement.
* :mod:`.model`: the pure ``nn.Module``; :mod:`.factory`: building it from its backbones;
  :mod:`.predictor`: the :class:`~lmseg.inference.Segmenter`.
* :mod:`.variants`: the named segmenters, ``SEGMENTERS``: ``"trident_vitb16"`` and
  ``"trident_vith14"`` need weights (``clip=``, ``dino=``, ``sam=``); ``"trident_tiny"``
  builds random tiny backbones (meaningless outputs). Trident does not train (no ``TRAIN_TASKS``).
"""

from __future__ import annotations

from lmseg.models.trident.config import TRIDENT_BACKBONES, RefinementConfig, TridentBackbones, TridentConfig
from lmseg.models.trident.factory import build_model, build_tiny_model
from lmseg.models.trident.model import TridentModel
from lmseg.models.trident.predictor import TridentPredictor
from lmseg.models.trident.variants import SEGMENTERS, VARIANTS

__all__ = [
    "SEGMENTERS",
    "TRIDENT_BACKBONES",
    "VARIANTS",
    "RefinementConfig",
    "TridentBackbones",
    "TridentConfig",
    "TridentModel",
    "TridentPredictor",
    "build_model",
    "build_tiny_model",
]
