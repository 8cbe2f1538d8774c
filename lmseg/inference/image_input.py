"""Images as users hand them over: a path, a PIL image or a numpy array.

Everything becomes an ``(H, W, 3)`` uint8 RGB array in [0, 255]. Conversions that keep the
meaning of the pixels are done (grayscale to RGB, alpha dropped, 16-bit and float scaled);
anything else is refused with a message saying what was received and what is expected.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from lmseg.data.image_io import pil_to_rgb, read_image
from lmseg.errors import LmsegError

ImageInput = str | Path | Image.Image | np.ndarray

MIN_SIDE = 8  # smaller images carry too little to segment (and a 1x1 image is almost surely a mistake)


def as_rgb_array(image: ImageInput) -> np.ndarray:
    """Return ``image`` as ``(H, W, 3)`` uint8 RGB.

    Args:
        image: a file path; a PIL image of any mode; or a numpy array ``(H, W)``,
            ``(H, W, 1)``, ``(H, W, 3)`` or ``(H, W, 4)`` (alpha dropped) of dtype uint8,
            uint16 (scaled to 8 bits) or float in [0, 1].

    Raises:
        LmsegError: unreadable file, unsupported array shape or dtype, float values outside
            [0, 1], or a side shorter than ``MIN_SIDE`` pixels.
    """
    if isinstance(image, (str, Path)):
        rgb = read_image(image)
    elif isinstance(image, Image.Image):
        rgb = pil_to_rgb(image)
    elif isinstance(image, np.ndarray):
        rgb = _array_to_rgb(image)
    else:
        raise LmsegError(f"expected an image path, a PIL image or a numpy array, got {type(image).__name__}")
    height, width = rgb.shape[:2]
    if min(height, width) < MIN_SIDE:
        raise LmsegError(f"the image is {width}x{height} pixels; lmseg needs at least {MIN_SIDE} pixels per side")
    return rgb


def _array_to_rgb(array: np.ndarray) -> np.ndarray:
    if array.ndim == 3 and array.shape[2] in (1, 3, 4):
        channels = array[:, :, :3] if array.shape[2] != 1 else np.repeat(array, 3, axis=2)
    elif array.ndim == 2:
        channels = np.repeat(array[:, :, None], 3, axis=2)
    else:
        raise LmsegError(f"an image array must be (H, W), (H, W, 1), (H, W, 3) or (H, W, 4) HWC; got shape {array.shape}")
    if channels.dtype == np.uint8:
        return np.ascontiguousarray(channels)
    if channels.dtype == np.uint16:
        return (channels >> 8).astype(np.uint8)
    if np.issubdtype(channels.dtype, np.floating):
        if not np.isfinite(channels).all() or channels.min() < 0 or channels.max() > 1:
            raise LmsegError("a float image array must hold values in [0, 1] (uint8 arrays hold 0..255)")
        return np.round(channels * 255).astype(np.uint8)
    raise LmsegError(f"an image array must be uint8, uint16 or float in [0, 1]; got dtype {channels.dtype}")
