"""The bounds of one web request, and reading an uploaded image within them.

An upload is checked in this order, each failure an :class:`~lmseg.errors.LmsegError` whose
message the page shows as it is:

1. file size, from the file system (nothing read);
2. pixel count, from the image header (Pillow's lazy ``open`` reads no pixel data), so a
   decompression bomb (a small file that decodes to billions of pixels) is refused before
   any decoding; then pixels x classes: the page keeps a score for every class at every pixel
   (the heat maps and the table), so the memory of a request grows with their product;
3. decoding, through :func:`lmseg.inference.as_rgb_array` (unreadable, truncated or non-image
   files, and images under ``MIN_SIDE`` pixels, are refused there).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from lmseg.errors import LmsegError
from lmseg.inference import as_rgb_array

__all__ = ["WebLimits", "check_positive", "read_upload"]

_MB = 1024 * 1024


@dataclass(frozen=True)
class WebLimits:
    """What one request may ask for.

    Attributes:
        max_upload_bytes: largest image file accepted (default 20 MB).
        max_pixels: largest width x height accepted, checked before decoding (default 40 M).
        max_classes: most classes in one vocabulary (default 200).
        max_class_pixels: most pixels x classes in one request (default 250 million: a request
            holds at most 1 GB of float32 scores, e.g. 200 classes at 1.25 megapixels or 20 at
            12.5; the predictors work in chunks of classes, so the scores are what grows).
        time_limit_s: longest a request may take to segment, in seconds (default 120).

    Class names are bounded by the vocabulary rule of every front end
    (:data:`lmseg.vocab.vocabulary.MAX_NAME_CHARS`).
    """

    max_upload_bytes: int = 20 * _MB
    max_pixels: int = 40_000_000
    max_classes: int = 200
    max_class_pixels: int = 250_000_000
    time_limit_s: float = 120.0

    def __post_init__(self) -> None:
        for name in ("max_upload_bytes", "max_pixels", "max_classes", "max_class_pixels", "time_limit_s"):
            check_positive(f"web limit {name}", getattr(self, name))


def check_positive(what: str, value: float) -> None:
    """Fail unless ``value`` is a finite number above 0 (``nan`` and ``inf`` are refused).

    Raises:
        LmsegError: ``"<what> must be a finite number above 0, got <value>"``.
    """
    if not (math.isfinite(value) and value > 0):
        raise LmsegError(f"{what} must be a finite number above 0, got {value}")


def read_upload(path: str | Path, limits: WebLimits, num_classes: int = 1) -> np.ndarray:
    """Decode an uploaded image file after checking its size, pixel count and pixels x classes.

    Args:
        path: the uploaded file (any name; the type is found from its content).
        limits: the bounds to apply.
        num_classes: the classes the image is to be segmented into (1: the preview).

    Returns:
        ``(H, W, 3)`` uint8 RGB in [0, 255].

    Raises:
        LmsegError: missing file, file too large, too many pixels, or not a readable image.
    """
    path = Path(path)
    if not path.is_file():
        raise LmsegError("no image was received; upload an image or click one of the samples")
    size = path.stat().st_size
    if size > limits.max_upload_bytes:
        raise LmsegError(
            f"the file is {size / _MB:.1f} MB; this page accepts images up to "
            f"{limits.max_upload_bytes / _MB:.3g} MB: downscale or recompress it"
        )
    width, height = _header_size(path, limits)
    if width * height > limits.max_pixels:
        raise LmsegError(
            f"the image is {width}x{height} = {width * height / 1e6:.0f} million pixels; this page accepts up to "
            f"{limits.max_pixels / 1e6:.3g} million: downscale it first"
        )
    if width * height * num_classes > limits.max_class_pixels:
        most = limits.max_class_pixels // num_classes
        raise LmsegError(
            f"{width}x{height} pixels x {num_classes} classes = {width * height * num_classes / 1e6:,.0f} million; this "
            f"page segments up to {limits.max_class_pixels / 1e6:,.0f} million pixels x classes per request (it keeps "
            f"every class's score at every pixel): use fewer classes, or an image of at most {most / 1e6:.3g} million "
            "pixels"
        )
    return as_rgb_array(path)


def _header_size(path: Path, limits: WebLimits) -> tuple[int, int]:
    """``(width, height)`` from the header alone (Pillow's own bomb check may refuse it first)."""
    try:
        with Image.open(path) as image:
            return image.size
    except Image.DecompressionBombError:
        raise LmsegError(
            f"the image declares more than {2 * (Image.MAX_IMAGE_PIXELS or 0) / 1e6:.0f} million pixels (refused as "
            f"a decompression bomb); this page accepts up to {limits.max_pixels / 1e6:.3g} million: downscale it first"
        ) from None
    except (OSError, UnidentifiedImageError, ValueError, SyntaxError):
        raise LmsegError(
            f"the file {path.name!r} is not an image this page can read (use JPEG, PNG, WebP, BMP or TIFF)"
        ) from None
