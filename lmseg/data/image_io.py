"""Reading and writing images and label maps with Pillow, with errors that name the file.

Conventions:
    * Images are returned as ``(H, W, 3)`` uint8 RGB in [0, 255], whatever the file's mode
      (grayscale, palette, RGBA and CMYK files are converted; 16-bit files are scaled down to
      8 bits, not clipped). EXIF orientation is **not** applied: benchmark labels are aligned
      with the stored pixel grid.
    * Label maps are single-channel index images: 8-bit PNG (mode ``L``, or ``P`` whose
      palette *indices* are the values, as in VOC's ``SegmentationClass``) or 16-bit
      (``I;16`` TIFF/PNG, as in ADE-847 and PC-459). They are returned as ``(H, W)`` arrays of
      the raw stored values (uint8 or uint16); what the values mean is the job of
      :class:`lmseg.data.label_map.LabelMap`.
    * Truncated or corrupt files raise :class:`~lmseg.errors.LmsegError`; Pillow's global
      ``LOAD_TRUNCATED_IMAGES`` switch is never touched.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from lmseg.errors import LmsegError
from lmseg.io.atomic import atomic_path

__all__ = ["image_size", "pil_to_rgb", "read_image", "read_label_file", "write_label_file"]

_LABEL_MODES = {"L": np.uint8, "P": np.uint8, "I;16": np.uint16, "I;16L": np.uint16, "I;16B": np.uint16, "I": np.int32}
_READ_ERRORS = (OSError, UnidentifiedImageError, ValueError, SyntaxError, Image.DecompressionBombError)


def pil_to_rgb(image: Image.Image) -> np.ndarray:
    """Convert a decoded Pillow image of any mode to ``(H, W, 3)`` uint8 RGB.

    Pillow's own ``convert("RGB")`` clips 16- and 32-bit values at 255; here they are scaled
    instead (16-bit: the high byte; 32-bit integer and float images: their min-max range).
    """
    if image.mode.startswith("I;16"):
        gray = (np.asarray(image).astype(np.uint16) >> 8).astype(np.uint8)
    elif image.mode in ("I", "F"):
        values = np.asarray(image).astype(np.float64)
        low, high = float(values.min()), float(values.max())
        gray = np.zeros(values.shape, np.uint8) if high == low else np.round(
            (values - low) * (255.0 / (high - low))).astype(np.uint8)
    else:
        return np.asarray(image.convert("RGB"))
    return np.repeat(gray[:, :, None], 3, axis=2)


def read_image(path: str | Path) -> np.ndarray:
    """Decode an image file fully.

    Returns:
        ``(H, W, 3)`` uint8 RGB array.

    Raises:
        LmsegError: the file is missing, not an image, truncated or otherwise unreadable.
    """
    path = Path(path)
    try:
        with Image.open(path) as image:
            image.load()
            return pil_to_rgb(image)
    except FileNotFoundError:
        raise LmsegError(f"image file {path} does not exist") from None
    except _READ_ERRORS as exc:
        raise LmsegError(f"cannot read image {path}: {exc} (is the file truncated or not an image?)") from None


def read_label_file(path: str | Path) -> np.ndarray:
    """Decode a single-channel label map, keeping the stored values.

    Returns:
        ``(H, W)`` uint8 (8-bit files), uint16 (16-bit files) or int32 (32-bit files) array.

    Raises:
        LmsegError: the file is missing, unreadable or truncated, or is not a single-channel
            index image (an RGB "colour" label map, for example).
    """
    path = Path(path)
    try:
        with Image.open(path) as image:
            image.load()
            mode = image.mode
            if mode not in _LABEL_MODES:
                raise LmsegError(
                    f"label file {path} has image mode {mode!r} ({len(image.getbands())} channels); expected a "
                    "single-channel index image (8-bit L/P or 16-bit), not a colour rendering of the labels"
                )
            array = np.asarray(image)
    except FileNotFoundError:
        raise LmsegError(f"label file {path} does not exist") from None
    except _READ_ERRORS as exc:
        raise LmsegError(f"cannot read label file {path}: {exc} (is the file truncated or not an image?)") from None
    if array.ndim != 2:
        raise LmsegError(f"label file {path} decodes to shape {array.shape}; expected (H, W)")
    return array.astype(_LABEL_MODES[mode], copy=False)


def image_size(path: str | Path) -> tuple[int, int]:
    """``(height, width)`` from the file header, without decoding the pixels (so without
    Pillow's decompression-bomb warning, which is about decoding)."""
    path = Path(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(path)
        with image:
            width, height = image.size
    except FileNotFoundError:
        raise LmsegError(f"image file {path} does not exist") from None
    except _READ_ERRORS as exc:
        raise LmsegError(f"cannot read image {path}: {exc}") from None
    return height, width


def write_label_file(path: str | Path, label: np.ndarray) -> None:
    """Write a label map atomically (:func:`lmseg.io.atomic.atomic_path`).

    Args:
        path: destination; ``.png`` for uint8 maps, ``.tif``/``.tiff`` (or ``.png``) for uint16.
        label: ``(H, W)`` uint8 or uint16 array, written losslessly and uncompressed in TIFF
            (as the detectron2/CAT-Seg preparation scripts do).
    """
    path = Path(path)
    label = np.asarray(label)
    if label.ndim != 2 or label.dtype not in (np.uint8, np.uint16):
        raise LmsegError(f"a label map must be a (H, W) uint8 or uint16 array, got {label.dtype} {label.shape}")
    if label.dtype == np.uint16 and path.suffix.lower() not in (".tif", ".tiff", ".png"):
        raise LmsegError(f"16-bit labels need a .tif or .png file name, got {path.name}")
    with atomic_path(path) as tmp:
        Image.fromarray(label).save(tmp, format="TIFF" if path.suffix.lower() in (".tif", ".tiff") else "PNG")
