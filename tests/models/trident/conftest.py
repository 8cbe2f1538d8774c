"""Trident tests: skipped with a reason when the vision stack is missing; tiny random models.

As in tests/vision: any exception on import counts as "missing" (a CUDA torchvision next to
a CPU torch raises RuntimeError, not ImportError).
"""

from __future__ import annotations

import os

import pytest

from tests.vision_stack import require_vision_stack

MISSING, pytest_pycollect_makemodule = require_vision_stack(
    "tests/models/trident", ("torch", "torchvision", "open_clip", "segment_anything", "timm"))


SAMPLES = os.path.join(os.path.dirname(__file__), "..", "..", "fixtures", "samples")


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("LMSEG_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture(scope="session")
def tiny_segmenter():
    """``trident_tiny`` with its default config (seed 0)."""
    from lmseg.registry import create_segmenter

    return create_segmenter("trident_tiny")


def preset_config(benchmark: str):
    """The :class:`TridentConfig` that ``benchmark=`` selects for the published variants."""
    from lmseg.models.building import variant_settings
    from lmseg.models.presets import trident_inference
    from lmseg.models.trident import VARIANTS, TridentConfig

    return variant_settings(VARIANTS["trident_vitb16"], TridentConfig(), None, benchmark, trident_inference,
                            where="Trident config")


@pytest.fixture(scope="session")
def sample_images() -> list[str]:
    """Two real images of different sizes and aspect ratios (683x512 and 640x226)."""
    ade = os.path.join(SAMPLES, "ade150_sceneparsing_val3", "images")
    coco = os.path.join(SAMPLES, "cocoobject81_coco128seg_train128", "images")
    picks = [os.path.join(ade, sorted(os.listdir(ade))[0]), os.path.join(coco, "000000000472.jpg")]
    return picks
