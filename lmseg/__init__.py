"""lmseg: open-vocabulary semantic segmentation (LMSeg, Trident, MROVSeg, MGCA).

>>> import lmseg
>>> segmenter = lmseg.create_segmenter("trident_vitb16", clip=..., dino=..., sam=...)
>>> result = segmenter.predict("photo.jpg", ["cat", "dog", "sofa, couch"])
>>> result.label_map        # (H, W) class indices
"""

from lmseg.registry import available_segmenters, create_segmenter

__version__ = "0.1.0"
__all__ = ["available_segmenters", "create_segmenter"]
