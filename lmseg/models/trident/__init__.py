"""Trident: training-free open-vocabulary segmentation from CLIP, DINO and SAM.

After Shi, Dong and Xu (2024), "Harnessing Vision Foundation Models for High-Performance,
Training-Free Open Vocabulary Segmentation", and its public code
(https://github.com/YuHengsss/Trident, commit a93b346). The steps, as the modules number them
("Trident step 6"):

1. text: every name of each class (synonyms; background words for class 0 where configured)
   in the 80 OpenAI ImageNet templates, one normalised mean embedding per query;
2. CLIP side: keep-ratio resize (``cv2.resize``), CLIP normalisation, sides fitted to the patch
   and to at least one window;
3. windows of ``window`` pixels every ``stride`` (the last one flush with the border);
4. DINO features of each window;
5. CLIP blocks ``0..L-2`` of each window;
6. CLIP's last block as DINO-proxy attention;
7. splicing the windows' outputs into one canvas, overlaps averaged;
8. SAM side: the image with sides rounded up to multiples of 16, SAM's own preprocessing; the
   canvas resized to SAM's valid token grid;
9. SAM's last-block attention, filtered by value similarity, aggregates the canvas globally;
10. CLIP's ``ln_post`` and ``proj``, cosine with the query embeddings;
11. cosines to the image size, times the logit scale, softmax over the queries, max over each
    class's queries: the class probabilities (``logits()``);
12. background threshold and argmax: the label map;
13. optional SAM refinement of the label map.

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
