"""Image sizes and resizes of Trident's input pipeline (Trident steps 2 and 8).

* :func:`rescale_size` / :func:`resize_short_side`: mmcv's keep-ratio ``imrescale`` with
  ``scale=(max_long_side, short_side)``: ``cv2.resize`` bilinear on uint8, as mmcv's cv2
  backend (:func:`lmseg.data.prepare.resize.resize_bilinear`).
* :func:`normalize_clip`: CLIP's mean/std on the 0-255 scale -> ``(1, 3, H, W)`` float32.
* :func:`fit_to_patches`: the public ``preprocess_image``: sides rounded up to multiples of the
  CLIP patch size and at least the window size (torch bilinear, align_corners False).
* :func:`round_up_for_sam`: the image SAM sees: each side rounded up to a multiple of 16 by an
  aspect-changing ``cv2.resize`` (bilinear) of the original image, as the public code does.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from lmseg.data.prepare.resize import resize_bilinear
from lmseg.models.trident.config import CLIP_MEAN_255, CLIP_STD_255


def rescale_size(height: int, width: int, short_side: int, max_long_side: int) -> tuple[int, int]:
    """``(h, w)`` after a keep-ratio resize with short side <= ``short_side`` and long side <= ``max_long_side``.

    The scale is ``min(max_long_side / long, short_side / short)`` and each side becomes
    ``int(side * scale + 0.5)`` (mmcv ``rescale_size``); images are enlarged as well as shrunk.
    """
    scale = min(max_long_side / max(height, width), short_side / min(height, width))
    return int(height * scale + 0.5), int(width * scale + 0.5)


def resize_short_side(image: np.ndarray, short_side: int, max_long_side: int) -> np.ndarray:
    """Keep-ratio resize of an ``(H, W, 3)`` uint8 image (see :func:`rescale_size`); uint8 out."""
    size = rescale_size(image.shape[0], image.shape[1], short_side, max_long_side)
    if size == image.shape[:2]:
        return image
    return resize_bilinear(image, size)


def normalize_clip(image: np.ndarray) -> torch.Tensor:
    """``(H, W, 3)`` uint8 RGB -> ``(1, 3, H, W)`` float32 normalised with CLIP mean/std (0-255 scale)."""
    x = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).float()[None]
    mean = torch.tensor(CLIP_MEAN_255).view(1, 3, 1, 1)
    std = torch.tensor(CLIP_STD_255).view(1, 3, 1, 1)
    return (x - mean) / std


def fit_to_patches(image: torch.Tensor, patch: int, window: int) -> torch.Tensor:
    """Resize ``(B, C, H, W)`` so both sides are multiples of ``patch`` and at least ``window``.

    Unchanged if both sides already are multiples of ``patch`` and at least ``window``.
    Otherwise the long side is rounded up to a
    multiple of ``patch``, the short side becomes ``int(short * new_long / long)`` rounded up to a
    multiple of ``patch``, each side at least ``window``; bilinear, align_corners False.
    """
    height, width = image.shape[-2:]
    if height % patch == 0 and width % patch == 0 and min(height, width) >= window:
        return image
    longer = max(height, width)
    new_longer = -(-longer // patch) * patch
    new_h = int(height * new_longer / longer)
    new_w = int(width * new_longer / longer)
    new_h = max(-(-new_h // patch) * patch, window)
    new_w = max(-(-new_w // patch) * patch, window)
    return F.interpolate(image, (new_h, new_w), mode="bilinear", align_corners=False)


def round_up_for_sam(image: np.ndarray, multiple: int = 16) -> np.ndarray:
    """``(H, W, 3)`` uint8 resized (aspect-changing, ``cv2.resize`` bilinear): sides multiples of ``multiple``."""
    height, width = image.shape[:2]
    size = (-(-height // multiple) * multiple, -(-width // multiple) * multiple)
    if size == (height, width):
        return image
    return resize_bilinear(image, size)
