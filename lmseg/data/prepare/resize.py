"""Image resizes done by OpenCV itself, as the reference implementations do them.

The published runs resize with OpenCV: mmcv's ``imresize``/``imrescale`` (Trident's test
pipeline and its SAM input) and the SAN / CAT-Seg ADE-847 preparation script call
``cv2.resize``. Using the library itself (``opencv-python-headless``, pinned in
``requirements/vision.txt``) is what makes the pixels identical; a re-implementation differed
by one grey level wherever both axes were enlarged.

* :func:`shorter_side_size`: the target size rule of the ADE-847 script (shorter side to
  ``max_size`` if it is larger; aspect ratio kept; Python ``round``).
* :func:`resize_nearest`: ``cv2.resize(..., INTER_NEAREST)``; label values are never blended.
* :func:`resize_bilinear`: ``cv2.resize(..., INTER_LINEAR)`` (half-pixel centres, edge
  clamping, no antialiasing; OpenCV's 11-bit fixed-point arithmetic for uint8).
"""

from __future__ import annotations

import cv2
import numpy as np

__all__ = ["RESIZE_LIBRARY", "resize_bilinear", "resize_nearest", "shorter_side_size"]

#: What does the resizing, for run records (``"opencv <version>"``).
RESIZE_LIBRARY = f"opencv {cv2.__version__}"


def shorter_side_size(height: int, width: int, max_size: int) -> tuple[int, int] | None:
    """``(new_height, new_width)`` with the shorter side ``max_size``, or None to keep the size.

    None when ``max_size`` is 0 or the shorter side is already at most ``max_size``.
    """
    if max_size <= 0:
        return None
    if width >= height > max_size:
        return max_size, round(width / float(height) * max_size)
    if height >= width > max_size:
        return round(height / float(width) * max_size), max_size
    return None


def _cv2_resize(array: np.ndarray, size: tuple[int, int], interpolation: int) -> np.ndarray:
    """``cv2.resize`` to ``size = (h, w)``, keeping a trailing channel axis of length 1."""
    out = cv2.resize(np.ascontiguousarray(array), (int(size[1]), int(size[0])), interpolation=interpolation)
    return out[:, :, None] if array.ndim == 3 and out.ndim == 2 else out


def resize_nearest(array: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour resize (``cv2.INTER_NEAREST``) of an ``(H, W)`` or ``(H, W, C)`` array.

    Args:
        array: uint8, uint16, int16, int32, float32 or float64 values (labels or pixels).
        size: ``(h, w)`` of the result.

    Returns:
        ``(h, w)`` or ``(h, w, C)`` array of the same dtype; every value is one of the input's.
    """
    return _cv2_resize(array, size, cv2.INTER_NEAREST)


def resize_bilinear(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinear resize (``cv2.INTER_LINEAR``) of a uint8 ``(H, W)`` or ``(H, W, C)`` image.

    Returns:
        uint8 ``(h, w)`` or ``(h, w, C)``, exactly ``cv2.resize(image, (w, h))``.
    """
    return _cv2_resize(image, size, cv2.INTER_LINEAR)
