"""The resizes used for A-847 preparation are OpenCV's: stored reference outputs, and
``cv2.resize`` itself on a sweep of random sizes (uint8 RGB and grey, uint16 labels)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from lmseg.data.prepare.resize import resize_bilinear, resize_nearest, shorter_side_size
from tests.data import samples as S

REFERENCE = Path(__file__).resolve().parents[1] / "fixtures" / "opencv_reference"
SIZES = [(137, 171), (64, 97), (299, 13)]


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_bilinear_shrinking_is_bit_exact_with_opencv(size):
    source = S.stored(REFERENCE / "crop_source_300x400.png")
    expected = S.stored(REFERENCE / f"crop_bilinear_{size[0]}x{size[1]}.png")
    np.testing.assert_array_equal(resize_bilinear(source, size), expected)
    grey = resize_bilinear(source[..., 1], size)  # (H, W) works too
    assert grey.shape == size and grey.dtype == np.uint8


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_nearest_is_exact_with_opencv(size):
    source = S.stored(REFERENCE / "crop_source_300x400.png")
    np.testing.assert_array_equal(
        resize_nearest(source, size), S.stored(REFERENCE / f"crop_nearest_{size[0]}x{size[1]}.png")
    )


def test_nearest_enlarging_a_label_is_exact_with_opencv():
    source = S.stored(REFERENCE / "label_crop_source_100x150.tif")
    np.testing.assert_array_equal(
        resize_nearest(source, (173, 311)), S.stored(REFERENCE / "label_crop_nearest_173x311.tif")
    )


def test_full_ade847_label_to_shorter_side_512_as_san_catseg():
    label = S.stored(S.label_of(S.images(S.ADE847)[0], ".tif"))
    size = shorter_side_size(*label.shape, 512)
    assert size == (512, 768)
    resized = resize_nearest(label, size)
    np.testing.assert_array_equal(resized, S.stored(REFERENCE / "ade847_label_nearest_512x768.tif"))
    assert set(np.unique(resized)) <= set(np.unique(label))  # never blends label values


@pytest.mark.parametrize(
    ("height", "width", "expected"),
    [(1467, 2200, (512, 768)), (2200, 1467, (768, 512)), (512, 900, None), (300, 200, None), (513, 513, (512, 512))],
)
def test_shorter_side_rule(height, width, expected):
    assert shorter_side_size(height, width, 512) == expected
    assert shorter_side_size(height, width, 0) is None


def random_size_pairs(count: int, seed: int) -> list[tuple[tuple[int, int], tuple[int, int]]]:
    """``count`` (source, target) ``(h, w)`` pairs, a quarter for each enlarge/reduce combination of the axes."""
    rng = np.random.default_rng(seed)
    pairs = []
    for i in range(count):
        grow_h, grow_w = i % 2 == 0, (i // 2) % 2 == 0
        src = (int(rng.integers(2, 120)), int(rng.integers(2, 120)))
        dst = tuple(int(rng.integers(n + 1, 3 * n + 2)) if grow else int(rng.integers(1, n)) if n > 1 else 1
                    for n, grow in zip(src, (grow_h, grow_w)))
        pairs.append((src, dst))
    return pairs


@pytest.mark.parametrize("channels", [3, 1, None], ids=["rgb", "hw1", "grey"])
def test_sweep_of_random_sizes_equals_cv2_resize(channels):
    rng = np.random.default_rng(7)
    pairs = random_size_pairs(240, seed=channels or 0)
    grown = {(dst[0] > src[0], dst[1] > src[1]) for src, dst in pairs}
    assert grown == {(True, True), (True, False), (False, True), (False, False)}
    for src, dst in pairs:
        shape = src if channels is None else (*src, channels)
        image = rng.integers(0, 256, shape, dtype=np.uint8)
        bilinear, nearest = resize_bilinear(image, dst), resize_nearest(image, dst)
        assert bilinear.shape == nearest.shape == (dst if channels is None else (*dst, channels))
        expected = cv2.resize(image, dst[::-1], interpolation=cv2.INTER_LINEAR).reshape(bilinear.shape)
        np.testing.assert_array_equal(bilinear, expected, err_msg=f"{src} -> {dst}")
        expected = cv2.resize(image, dst[::-1], interpolation=cv2.INTER_NEAREST).reshape(nearest.shape)
        np.testing.assert_array_equal(nearest, expected, err_msg=f"{src} -> {dst}")


def test_uint16_labels_keep_their_values():
    label = np.random.default_rng(3).integers(0, 65535, (37, 53), dtype=np.uint16)
    resized = resize_nearest(label, (512, 733))
    assert resized.dtype == np.uint16 and set(np.unique(resized)) <= set(np.unique(label))
