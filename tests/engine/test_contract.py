"""The written predictor contract holds for the registered tiny segmenters: ``logits`` are
per-class probabilities, ``settings()`` is JSON-able and is what evaluation records."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("open_clip", reason="the tiny segmenters need open_clip; use the vision environment")
pytest.importorskip("segment_anything", reason="the tiny segmenters need segment-anything")

from lmseg.errors import LmsegError  # noqa: E402
from lmseg.inference.segmenter import scores, segmenter_settings  # noqa: E402
from lmseg.registry import create_segmenter  # noqa: E402


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("LMSEG_CACHE_DIR", str(tmp_path / "cache"))


@pytest.mark.parametrize("name", ["lmseg_tiny", "trident_tiny"])
def test_tiny_segmenters_follow_the_contract(name) -> None:
    segmenter = create_segmenter(name)
    image = np.random.default_rng(0).integers(0, 256, (70, 90, 3), dtype=np.uint8)
    probs = scores(segmenter, image, ["cat", "dog", "sofa, couch"])
    assert probs.shape == (3, 70, 90) and probs.dtype == np.float32
    assert probs.min() >= 0.0 and probs.max() <= 1.0
    settings = segmenter_settings(segmenter)
    assert settings and json.loads(json.dumps(settings)) == settings
    assert segmenter.predict(image, ["cat", "dog"]).label_map.shape == (70, 90)


def test_an_object_without_settings_is_not_a_segmenter() -> None:
    class NoSettings:
        def predict(self, image, vocabulary, *, return_scores=False): ...

    with pytest.raises(LmsegError, match="NoSettings is not a Segmenter: it lacks settings"):
        segmenter_settings(NoSettings())
