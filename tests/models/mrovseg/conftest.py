"""Shared set-up of the MROVSeg tests: skip cleanly without the vision stack; tiny models.

Every model is built with random weights (no CLIP checkpoint can be had here); correctness is
shown by parity with independent computations written out in the tests.
"""

from __future__ import annotations

import copy
import dataclasses
import functools

import pytest

from tests.vision_stack import require_vision_stack

MISSING, pytest_pycollect_makemodule = require_vision_stack(
    "tests/models/mrovseg", ("torch", "torchvision", "open_clip", "scipy", "safetensors", "yaml"))


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("LMSEG_CACHE_DIR", str(tmp_path / "cache"))


@functools.lru_cache(maxsize=None)
def _built(seed: int, overrides: tuple[tuple[str, object], ...]):
    import torch

    from lmseg.models.mrovseg import build_model, get_config

    torch.manual_seed(seed)
    return build_model(dataclasses.replace(get_config("mrovseg_tiny"), **dict(overrides)))


def tiny_model(seed: int = 0, **overrides):
    """A random ``mrovseg_tiny`` model (eval mode) seeded by ``seed``, config fields replaced by
    ``overrides``: a private copy of one built once per session (building re-reads CLIP's BPE
    vocabulary, the slow part)."""
    return copy.deepcopy(_built(seed, tuple(sorted(overrides.items()))))
