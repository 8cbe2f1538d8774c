"""Images as users hand them over: a path, a PIL image or a numpy array.

Everything becomes an ``(H, W, 3)`` uint8 RGB array in [0, 255]. Conversions that keep the
meaning of the pixels are done (grayscale to RGB, alpha dropped, 16-bit and float scaled);
anything else is refused with a message saying what was received and what is expected.

A segmenter bounds the images it accepts with :class:`ImageLimits` (pixels and aspect ratio);
:func:`as_rgb_array` checks them on the file header or array shape, before decoding.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from lmseg.data.image_io import image_size, pil_to_rgb, read_image
from lmseg.errors import LmsegError

ImageInput = str | Path | Image.Image | np.ndarray

MIN_SIDE = 8  # smaller images carry too little to segment (and a 1x1 image is almost surely a mistake)


@dataclass(frozen=True)
class ImageLimits:
    """The largest and most elongated images a segmenter accepts.

    Attributes:
        max_pixels: ``H * W`` above this is refused (memory grows with it).
        max_aspect_ratio: ``max(H, W) / min(H, W)`` above this is refused.
        setting: how a user raises the limits, named in the message
            (``"config.max_pixels / config.max_aspect_ratio"``).
    """

    max_pixels: int
    max_aspect_ratio: float
    setting: str

    def check(self, height: int, width: int) -> None:
        """Raise :class:`LmsegError` naming the image size if it exceeds a limit."""
        if height * width > self.max_pixels:
            raise LmsegError(
                f"the image is {width}x{height} pixels ({height * width:,}); at most {self.max_pixels:,} are "
                f"accepted: downscale it, or raise the limit ({self.setting})"
            )
        ratio = max(height, width) / max(1, min(height, width))
        if ratio > self.max_aspect_ratio:
            raise LmsegError(
                f"the image is {width}x{height} pixels, an aspect ratio of {ratio:.1f}:1; at most "
                f"{self.max_aspect_ratio:g}:1 is accepted: crop it into less elongated parts ({self.setting})"
            )


def class_pixel_limits(limits: ImageLimits | None, num_classes: int, max_class_pixels: int) -> ImageLimits:
    """``limits`` tightened so that an image's pixels x ``num_classes`` stay within
    ``max_class_pixels`` (the work that keeps a map per class at the image's size)."""
    pixels = max(1, max_class_pixels // max(1, num_classes))
    if limits is not None and limits.max_pixels <= pixels:
        return limits
    return ImageLimits(pixels, limits.max_aspect_ratio if limits is not None else float("inf"),
                       f"at most {max_class_pixels:,} pixels x classes per image, so {pixels:,} pixels with "
                       f"{num_classes} classes; --max-class-pixels N")


def as_rgb_array(image: ImageInput, limits: ImageLimits | None = None) -> np.ndarray:
    """Return ``image`` as ``(H, W, 3)`` uint8 RGB.

    Args:
        image: a file path; a PIL image of any mode; or a numpy array ``(H, W)``,
            ``(H, W, 1)``, ``(H, W, 3)`` or ``(H, W, 4)`` (alpha dropped) of dtype uint8,
            uint16 (scaled to 8 bits) or float in [0, 1].
        limits: checked on the file header, the PIL size or the array shape before any pixel
            is decoded or converted.

    Raises:
        LmsegError: unreadable file, unsupported array shape or dtype, float values outside
            [0, 1], a side shorter than ``MIN_SIDE`` pixels, or an image beyond ``limits``.
    """
    if limits is not None:
        limits.check(*_size(image))
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


def _size(image: ImageInput) -> tuple[int, int]:
    """``(height, width)`` without decoding (file header, PIL size, array shape)."""
    if isinstance(image, (str, Path)):
        return image_size(image)
    if isinstance(image, Image.Image):
        return image.size[1], image.size[0]
    if isinstance(image, np.ndarray) and image.ndim in (2, 3):
        return int(image.shape[0]), int(image.shape[1])
    return MIN_SIDE, MIN_SIDE  # anything else is refused with its own message by as_rgb_array


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
