"""lmseg: open-vocabulary semantic segmentation (LMSeg, Trident, MROVSeg, MGCA).

>>> import lmseg
>>> segmenter = lmseg.create_segmenter("trident_vitb16", clip=..., dino=..., sam=...)
>>> result = segmenter.predict("photo.jpg", ["cat", "dog", "sofa, couch"])
>>> result.label_map        # (H, W) class indices
"""

from lmseg.registry import available_segmenters, create_segmenter
from lmseg.version import __version__

__all__ = ["__version__", "available_segmenters", "create_segmenter"]
