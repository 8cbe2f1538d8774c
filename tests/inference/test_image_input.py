"""Images and vocabularies as users hand them to a segmenter."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lmseg.errors import LmsegError
from lmseg.inference import as_rgb_array, as_vocabulary

RGB = (np.arange(16 * 20 * 3) % 256).astype(np.uint8).reshape(16, 20, 3)


def test_paths_pil_images_and_arrays_give_the_same_rgb(tmp_path: Path) -> None:
    path = tmp_path / "x.png"
    Image.fromarray(RGB).save(path)
    for image in (path, str(path), Image.fromarray(RGB), RGB):
        out = as_rgb_array(image)
        assert out.dtype == np.uint8 and out.shape == (16, 20, 3)
        np.testing.assert_array_equal(out, RGB)


def test_grayscale_and_rgba_are_converted() -> None:
    gray = RGB[:, :, 0]
    np.testing.assert_array_equal(as_rgb_array(gray), np.repeat(gray[:, :, None], 3, axis=2))
    np.testing.assert_array_equal(as_rgb_array(gray[:, :, None]), np.repeat(gray[:, :, None], 3, axis=2))
    rgba = np.concatenate([RGB, np.full((16, 20, 1), 7, np.uint8)], axis=2)
    np.testing.assert_array_equal(as_rgb_array(rgba), RGB)
    np.testing.assert_array_equal(as_rgb_array(Image.fromarray(rgba, "RGBA")), RGB)


def test_16_bit_images_are_scaled_not_clipped(tmp_path: Path) -> None:
    wide = (RGB[:, :, 0].astype(np.uint16) << 8) | 0xFF  # high byte = the 8-bit value
    expected = np.repeat(RGB[:, :, :1], 3, axis=2)
    np.testing.assert_array_equal(as_rgb_array(wide), expected)
    path = tmp_path / "wide.png"
    Image.fromarray(wide).save(path)  # a 16-bit grayscale PNG (mode I;16)
    np.testing.assert_array_equal(as_rgb_array(path), expected)


def test_float_images_in_unit_range() -> None:
    np.testing.assert_array_equal(as_rgb_array(RGB / 255.0), RGB)
    with pytest.raises(LmsegError, match=r"values in \[0, 1\]"):
        as_rgb_array(RGB.astype(np.float32))  # 0..255 floats are a common mistake


@pytest.mark.parametrize(
    ("image", "message"),
    [
        (np.zeros((1, 1, 3), np.uint8), "1x1 pixels; lmseg needs at least 8"),
        (np.zeros((16, 16, 2), np.uint8), r"got shape \(16, 16, 2\)"),
        (np.zeros((3, 16, 16), np.uint8), r"HWC; got shape \(3, 16, 16\)"),
        (np.zeros((16, 16, 3), bool), "got dtype bool"),
        ([[0, 1], [2, 3]], "got list"),
    ],
)
def test_unusable_images_get_a_clear_message(image: object, message: str) -> None:
    with pytest.raises(LmsegError, match=message):
        as_rgb_array(image)


def test_unreadable_files_are_named(tmp_path: Path) -> None:
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    with pytest.raises(LmsegError, match=f"cannot read image {broken}"):
        as_rgb_array(broken)
    with pytest.raises(LmsegError, match="does not exist"):
        as_rgb_array(tmp_path / "missing.png")


def test_vocabularies_from_names_lists_and_objects() -> None:
    assert len(as_vocabulary("ade150")) == 150
    vocab = as_vocabulary(["cat", "sofa, couch", "lamp;light"])
    assert [c.names for c in vocab.classes] == [("cat",), ("sofa", "couch"), ("lamp", "light")]
    assert as_vocabulary(vocab) is vocab
    with pytest.raises(LmsegError, match="empty"):
        as_vocabulary([])
    with pytest.raises(LmsegError, match="more than once"):
        as_vocabulary(["cat", "Cat"])
    with pytest.raises(LmsegError, match="list of class names"):
        as_vocabulary([1, 2])
