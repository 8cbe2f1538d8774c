"""sam3: training-free open-vocabulary semantic segmentation from SAM 3's text-prompted concept detector.

>>> import lmseg
>>> seg = lmseg.create_segmenter("sam3", weights="facebook/sam3")
>>> result = seg.predict("photo.jpg", ["person", "dog", "sky"])

Every class name becomes text prompts (its synonyms; its attribute phrases when a stage-1
table is given); SAM 3 encodes the image once and answers the prompts in batches with
instance masks, detection and presence scores and a semantic map each; one documented rule
(:mod:`.config`, ``docs/sam3.md``) makes them a label map. Modules, in the layout of every
method (:mod:`lmseg.models.building`):

* :mod:`.config`: the rule's settings (:class:`Sam3Config`, every open choice a field) and the
  variants' models.
* :mod:`.prompts`: a vocabulary's prompts.
* :mod:`.evidence`: the rule on tensors.
* :mod:`.model`: the pure ``nn.Module`` (SAM 3 + the rule, class maps out).
* :mod:`.predictor`: the :class:`~lmseg.inference.Segmenter`.
* :mod:`.variants`: ``SEGMENTERS``: ``"sam3"`` (the released model; ``weights=``) and
  ``"sam3_tiny"`` (random, tiny; meaningless outputs). Training-free: no ``TRAIN_TASKS``.
"""

from __future__ import annotations

from lmseg.models.sam3.config import SAM3_MODELS, Sam3Config
from lmseg.models.sam3.model import Sam3Semantic
from lmseg.models.sam3.predictor import Sam3Predictor
from lmseg.models.sam3.variants import SEGMENTERS, VARIANTS

__all__ = ["SAM3_MODELS", "SEGMENTERS", "VARIANTS", "Sam3Config", "Sam3Predictor", "Sam3Semantic"]
