"""Resizing as the SAN / CAT-Seg ADE-847 preparation does it (``cv2.resize``), in numpy.

* :func:`shorter_side_size`: the target size rule of that script (shorter side to
  ``max_size`` if it is larger; aspect ratio kept; Python ``round``).
* :func:`resize_nearest`: OpenCV ``INTER_NEAREST`` exactly: destination pixel ``x`` takes
  source pixel ``min(floor(x * (1 / (dst_w / src_w))), src_w - 1)``; the same along y.
  Label values are never blended.
* :func:`resize_bilinear`: OpenCV ``INTER_LINEAR`` for uint8 images (half-pixel centres, edge
  clamping, no antialiasing, OpenCV's fixed-point weights and rounding). Pillow's
  ``BILINEAR`` is not used because it antialiases when shrinking, which gives other pixels.
"""

from __future__ import annotations

import numpy as np

__all__ = ["resize_bilinear", "resize_nearest", "shorter_side_size"]


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


def _nearest_index(src: int, dst: int) -> np.ndarray:
    inverse_scale = 1.0 / (dst / src)
    return np.minimum(np.floor(np.arange(dst) * inverse_scale).astype(np.int64), src - 1)


def resize_nearest(array: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour resize of a ``(H, W)`` or ``(H, W, C)`` array to ``size = (h, w)``."""
    rows = _nearest_index(array.shape[0], size[0])
    cols = _nearest_index(array.shape[1], size[1])
    return array[rows[:, None], cols[None, :]]


_COEF_SCALE = 2048  # OpenCV's INTER_RESIZE_COEF_SCALE: 11-bit fixed-point weights


def _linear_weights(src: int, dst: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per destination index: the two source indices and their fixed-point weights (sum 2048)."""
    position = ((np.arange(dst) + 0.5) * (1.0 / (dst / src)) - 0.5).astype(np.float32)
    first = np.floor(position).astype(np.int64)
    fraction = (position - first).astype(np.float32)
    before = first < 0
    fraction[before], first[before] = 0.0, 0
    after = first >= src - 1
    fraction[after], first[after] = 0.0, src - 1
    weight_first = np.rint((np.float32(1.0) - fraction) * np.float32(_COEF_SCALE)).astype(np.int64)
    return first, np.minimum(first + 1, src - 1), weight_first, _COEF_SCALE - weight_first


def resize_bilinear(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinear resize of a uint8 ``(H, W)`` or ``(H, W, C)`` image to ``size = (h, w)``.

    Same arithmetic as OpenCV's ``INTER_LINEAR`` for uint8 (11-bit weights, its vectorised
    rounding): bit-exact when shrinking (checked against opencv-python-headless 5.0 on 150
    random sizes); when enlarging a few pixels may differ by one grey level.
    """
    extra = (None,) * (image.ndim - 2)
    top, bottom, wy_top, wy_bottom = _linear_weights(image.shape[0], size[0])
    left, right, wx_left, wx_right = _linear_weights(image.shape[1], size[1])
    wx_left, wx_right = wx_left[(None, slice(None), *extra)], wx_right[(None, slice(None), *extra)]
    wy_top, wy_bottom = wy_top[(slice(None), None, *extra)], wy_bottom[(slice(None), None, *extra)]
    source = image.astype(np.int64)
    upper = source[top][:, left] * wx_left + source[top][:, right] * wx_right
    lower = source[bottom][:, left] * wx_left + source[bottom][:, right] * wx_right
    blended = ((wy_top * (upper >> 4)) >> 16) + ((wy_bottom * (lower >> 4)) >> 16)
    return np.clip((blended + 2) >> 2, 0, 255).astype(np.uint8)
