"""Shared fixtures: benchmark trees built from the real samples, fake models in the real registry."""

from __future__ import annotations

import importlib.util

import pytest

from tests.data.samples import build_ade150

TINY_MODELS = ("lmseg_tiny", "trident_tiny")  # lmseg_tiny first: about 10x faster on CPU
HAS_TORCH = importlib.util.find_spec("torch") is not None


@pytest.fixture(autouse=True)
def fake_models(monkeypatch):
    """Make the fake segmenters of ``fake_models.py`` available to ``create_segmenter``."""
    import lmseg.registry

    monkeypatch.setattr(
        lmseg.registry, "EXTRA_PACKAGES", (*lmseg.registry.EXTRA_PACKAGES, "tests.pipelines.fake_models")
    )


@pytest.fixture
def ade_root(tmp_path):
    """A datasets root with ADEChallengeData2016 holding the 3 real ADE-150 validation samples."""
    root = tmp_path / "data"
    build_ade150(root)
    return root


@pytest.fixture(scope="session")
def tiny_model() -> str:
    """A registered tiny model with random weights (Trident or LMSeg), or skip."""
    from lmseg.errors import LmsegError
    from lmseg.registry import available_segmenters

    try:
        names = available_segmenters()
    except LmsegError as exc:
        pytest.skip(f"the model packages do not import: {exc}")
    for name in TINY_MODELS:
        if name in names:
            return name
    pytest.skip(f"no tiny model registered yet (looked for {', '.join(TINY_MODELS)}; registered: {names})")
