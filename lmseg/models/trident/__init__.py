"""Trident: training-free open-vocabulary segmentation from CLIP, DINO and SAM (SEEDS.md section 2).

Modules, one concept each:

* :mod:`.config` / :mod:`.presets`: typed constants with the published defaults, per benchmark.
* :mod:`.preprocess`: input sizes and resizes; :mod:`.windows`: sub-images and splicing.
* :mod:`.proxy_attention`: CLIP's last block with DINO-proxy attention.
* :mod:`.sam_affinity`: SAM's filtered last-block attention and global aggregation.
* :mod:`.classify`: cosines, probabilities, background threshold.
* :mod:`.regions` / :mod:`.refine`: optional SAM refinement.
* :mod:`.model`: the pure ``nn.Module``; :mod:`.predictor`: the :class:`~lmseg.inference.Segmenter`.
* :mod:`.factory`: builders, registered below for :func:`lmseg.create_segmenter`.

``SEGMENTERS``: ``"trident_vitb16"`` and ``"trident_vith14"`` need weights (``clip=``,
``dino=``, ``sam=``); ``"trident_tiny"`` builds random tiny backbones (meaningless outputs).
"""

from __future__ import annotations

from lmseg.models.trident.config import RefinementConfig, TridentConfig
from lmseg.models.trident.factory import create_trident, create_trident_tiny, create_trident_vith14
from lmseg.models.trident.model import TridentModel
from lmseg.models.trident.predictor import TridentSegmenter
from lmseg.models.trident.presets import PRESETS, preset

SEGMENTERS = {
    "trident_vitb16": create_trident,
    "trident_vith14": create_trident_vith14,
    "trident_tiny": create_trident_tiny,
}

__all__ = [
    "PRESETS",
    "SEGMENTERS",
    "RefinementConfig",
    "TridentConfig",
    "TridentModel",
    "TridentSegmenter",
    "create_trident",
    "create_trident_tiny",
    "create_trident_vith14",
    "preset",
]
