"""The numpy resizing used for A-847 preparation equals OpenCV's (stored reference outputs)."""

from __future__ import annotations

from pathlib import Path

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
