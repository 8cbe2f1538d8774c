"""sam3 method tests: skipped with a reason when the vision stack or sam3 is missing; a tiny random SAM 3."""

from __future__ import annotations

import os

import pytest

from tests.vision_stack import require_vision_stack

MISSING, pytest_pycollect_makemodule = require_vision_stack(
    "tests/models/sam3", ("torch", "torchvision", "open_clip", "timm", "sam3"))

SAMPLES = os.path.join(os.path.dirname(__file__), "..", "..", "fixtures", "samples")
IMAGE = os.path.join(SAMPLES, "cocoobject81_coco128seg_train128", "images", "000000000472.jpg")  # 640 x 226


@pytest.fixture(autouse=True)
def _isolated_cache_one_thread(tmp_path, monkeypatch):
    import torch

    monkeypatch.setenv("LMSEG_CACHE_DIR", str(tmp_path / "cache"))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small models: 1 thread is faster on the shared machines
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def tiny():
    """``sam3_tiny`` with its default settings (seed 0)."""
    from lmseg.registry import create_segmenter

    return create_segmenter("sam3_tiny")
