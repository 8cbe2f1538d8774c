"""LabelMap decoding against the formulas it implements, value by value."""

from __future__ import annotations

import numpy as np
import pytest

from lmseg.data import LabelMap
from lmseg.errors import LmsegError
from tests.data import samples as S


def test_reduce_zero_label_matches_mmseg_formula_for_every_valid_byte():
    stored = np.array([v for v in range(256) if v <= 150 or v == 255], dtype=np.uint8).reshape(1, -1)
    decoded = LabelMap.reduce_zero_label(150).decode(stored)
    np.testing.assert_array_equal(decoded, S.reduce_zero_label(stored))
    assert decoded.dtype == np.uint8


@pytest.mark.parametrize("bad", [151, 200, 254])
def test_reduce_zero_label_rejects_values_beyond_the_classes(bad):
    with pytest.raises(LmsegError, match=f"outside the class range: {bad}"):
        LabelMap.reduce_zero_label(150).decode(np.array([[1, bad]], np.uint8), "a.png")


def test_identity_over_255_classes_is_uint16_with_65535_ignore():
    label_map = LabelMap.identity(847)
    assert label_map.ignore_index == 65535 and label_map.dtype == np.uint16
    stored = np.array([[0, 255, 846, 65535]], dtype=np.uint16)
    np.testing.assert_array_equal(label_map.decode(stored), stored)
    with pytest.raises(LmsegError, match="outside the class range: 847"):
        label_map.decode(np.array([[847]], np.uint16))


def test_uint16_values_in_an_8bit_label_space_are_rejected():
    with pytest.raises(LmsegError, match="outside the class range: 300, 1000"):
        LabelMap.identity(19).decode(np.array([[0, 300, 1000]], np.uint16))


def test_mapping_with_unmapped_values_ignored():
    label_map = LabelMap.from_mapping(3, {10: 0, 20: 1, 30: 2}, unmapped_is_ignore=True)
    np.testing.assert_array_equal(
        label_map.decode(np.array([[10, 20, 30, 0, 255, 7]], np.uint8)), [[0, 1, 2, 255, 255, 255]]
    )


def test_mapping_targets_are_checked():
    with pytest.raises(ValueError, match="outside 0..2"):
        LabelMap.from_mapping(3, {1: 3})
