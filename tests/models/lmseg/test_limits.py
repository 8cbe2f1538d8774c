"""LMSeg refuses images beyond its pixel and aspect-ratio limits with the image size, and runs up to them."""

from __future__ import annotations

import numpy as np
import pytest

from lmseg.errors import LmsegError
from lmseg.models.lmseg import InferenceConfig, LMSegPredictor


def test_aspect_ratio_limit(tiny_model) -> None:
    predictor = LMSegPredictor(tiny_model, inference=InferenceConfig(short_side=64, max_aspect_ratio=16), cache=None)
    out = predictor.predict(np.full((10, 160, 3), 90, np.uint8), ["cat", "dog"])
    assert out.label_map.shape == (10, 160)
    with pytest.raises(LmsegError, match=r"4000x10 pixels, an aspect ratio of 400.0:1; at most 16:1.*max_aspect_ratio"):
        predictor.predict(np.zeros((10, 4000, 3), np.uint8), ["cat", "dog"])
    with pytest.raises(LmsegError, match="max_pixels and max_aspect_ratio must be at least 1"):
        InferenceConfig(max_aspect_ratio=0.5)
