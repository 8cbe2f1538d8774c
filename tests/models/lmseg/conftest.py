"""Shared set-up of the LMSeg tests: skip cleanly without the vision stack; tiny models; sample data.

Every model here is built with random weights (no CLIP/SAM checkpoint can be had on the
development machines); correctness is shown by parity with independent computations.
Parity of the unmodified dense-CLIP path with open_clip's own computation is tested once, in
``tests/vision/test_backbone_clip.py::test_unmodified_path_equals_open_clip``; here
``test_model_uses_unmodified_clip_features`` checks that the model feeds exactly those features
into the fusion.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.vision_stack import require_vision_stack

MISSING, pytest_pycollect_makemodule = require_vision_stack(
    "tests/models/lmseg", ("torch", "torchvision", "open_clip", "segment_anything", "safetensors", "yaml"))

SAMPLES = Path(__file__).resolve().parents[2] / "fixtures" / "samples"
COCO_PACKS = ("cocoobject81_coco128seg_train128", "cocoobject81_panopticapi2")



@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("LMSEG_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture(scope="session")
def tiny_model():
    """A random ``lmseg_tiny`` model (eval mode); do not modify it in tests."""
    import torch

    from lmseg.models.lmseg import build_model, get_config

    torch.manual_seed(0)
    return build_model(get_config("lmseg_tiny"))


def fresh_tiny_model(seed: int = 0):
    import torch

    from lmseg.models.lmseg import build_model, get_config

    torch.manual_seed(seed)
    return build_model(get_config("lmseg_tiny"))


def build_coco_object_root(root: Path, split: str = "train2017") -> Path:
    """The 6 real COCO-Object samples laid out as COCO-Object's mmseg layout under ``root``."""
    base = root / "coco_stuff164k"
    for pack in COCO_PACKS:
        for image in sorted((SAMPLES / pack / "images").iterdir()):
            (base / "images" / split).mkdir(parents=True, exist_ok=True)
            (base / "annotations" / split).mkdir(parents=True, exist_ok=True)
            shutil.copyfile(image, base / "images" / split / image.name)
            shutil.copyfile(SAMPLES / pack / "labels" / f"{image.stem}.png",
                            base / "annotations" / split / f"{image.stem}_instanceTrainIds.png")
    return root
