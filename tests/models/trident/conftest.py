"""Trident tests: skipped with a reason when the vision stack is missing; tiny random models.

As in tests/vision: any exception on import counts as "missing" (a CUDA torchvision next to
a CPU torch raises RuntimeError, not ImportError).
"""

from __future__ import annotations

import importlib
import os
from functools import partial

import pytest

_NEEDED = ("torch", "torchvision", "open_clip", "segment_anything", "timm")


def _missing() -> str | None:
    for module in _NEEDED:
        try:
            importlib.import_module(module)
        except Exception as exc:  # noqa: BLE001
            return (f"tests/models/trident need {module}, which cannot be imported here ({exc!s:.120}); "
                    "run `scripts/setup_vision_env.sh .venv` and use .venv/bin/python")
    return None


MISSING = _missing()


class _SkippedModule(pytest.Module):
    def collect(self):  # pytest API
        pytest.skip(MISSING)


def pytest_pycollect_makemodule(module_path, parent):  # pytest hook
    if MISSING:
        return _SkippedModule.from_parent(parent, path=module_path)
    return None


if MISSING is None:
    import torch
    from torch import nn

    torch.set_num_threads(min(2, torch.get_num_threads()))

SAMPLES = os.path.join(os.path.dirname(__file__), "..", "..", "fixtures", "samples")


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("LMSEG_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture(scope="session")
def tiny_segmenter():
    """``trident_tiny`` with its default config (seed 0)."""
    from lmseg.models.trident import create_trident_tiny

    return create_trident_tiny()


@pytest.fixture(scope="session")
def sample_images() -> list[str]:
    """Two real images of different sizes and aspect ratios (683x512 and 640x226)."""
    ade = os.path.join(SAMPLES, "ade150_sceneparsing_val3", "images")
    coco = os.path.join(SAMPLES, "cocoobject81_coco128seg_train128", "images")
    picks = [os.path.join(ade, sorted(os.listdir(ade))[0]), os.path.join(coco, "000000000472.jpg")]
    return picks
