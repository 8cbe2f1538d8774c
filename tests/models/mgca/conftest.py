"""Shared set-up of the MGCA tests: skip cleanly without the vision stack; a private cache.

Every model here has random weights (no CLIP weights can be had on the development machines);
losses and units are checked against direct computations on small tensors.
"""

from __future__ import annotations

import pytest

from tests.vision_stack import require_vision_stack

MISSING, pytest_pycollect_makemodule = require_vision_stack(
    "tests/models/mgca", ("torch", "torchvision", "open_clip", "skimage"))


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("LMSEG_CACHE_DIR", str(tmp_path / "cache"))
