"""Text-side tests (lmseg.text): skipped with a reason when the vision stack is missing."""

from __future__ import annotations

import pytest

from tests.vision_stack import require_vision_stack

MISSING, pytest_pycollect_makemodule = require_vision_stack("tests/text", ("torch", "open_clip"))


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("LMSEG_CACHE_DIR", str(tmp_path / "cache"))
