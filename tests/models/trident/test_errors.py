"""Bad inputs and missing weights give one clear LmsegError."""

from __future__ import annotations

import numpy as np
import pytest

from lmseg.errors import LmsegError
from lmseg.models.trident import TridentConfig
from lmseg.registry import create_segmenter
from tests.models.trident.conftest import preset_config


@pytest.mark.parametrize(
    ("image", "message"),
    [
        ("/no/such/image.png", "image.png"),
        (np.zeros((4, 4, 3), np.uint8), "at least 8 pixels"),
        (np.zeros((10, 10, 3), np.int64), "uint8, uint16 or float"),
        (np.zeros((2, 10, 10, 3), np.uint8), "must be \\(H, W\\)"),
        (np.full((10, 10, 3), 2.0), "\\[0, 1\\]"),
        (12, "expected an image path"),
    ],
)
def test_bad_images(tiny_segmenter, image, message) -> None:
    with pytest.raises(LmsegError, match=message):
        tiny_segmenter.predict(image, ["cat", "dog"])


def test_bad_vocabularies(tiny_segmenter) -> None:
    image = np.zeros((32, 32, 3), np.uint8)
    with pytest.raises(LmsegError):
        tiny_segmenter.predict(image, [])
    with pytest.raises(LmsegError, match="unknown"):
        tiny_segmenter.predict(image, "no_such_dataset")
    with pytest.raises(LmsegError):
        tiny_segmenter.logits(image, ["cat", "cat"])


def test_background_names_need_a_background_class(tiny_segmenter) -> None:
    from dataclasses import replace

    from lmseg.models.trident import TridentPredictor

    model = tiny_segmenter.model
    cfg = replace(model.config, background_names=("sky", "wall"))
    seg = TridentPredictor(type(model)(model.clip, model.dino, model.sam, cfg))
    with pytest.raises(LmsegError, match="not 'background'"):
        seg.predict(np.zeros((32, 32, 3), np.uint8), ["cat", "dog"])


def test_missing_weights_name_all_three() -> None:
    with pytest.raises(LmsegError) as info:
        create_segmenter("trident_vitb16")
    message = str(info.value)
    assert "clip=" in message and "dino=" in message and "sam=" in message and "'openai'" in message
    with pytest.raises(LmsegError, match="laion2b_s32b_b79k"):
        create_segmenter("trident_vith14", dino="dino_vitb16", sam="sam_vit_b")


def test_unavailable_weights_are_reported_together(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("LMSEG_OFFLINE", "1")
    with pytest.raises(LmsegError) as info:
        create_segmenter("trident_vitb16", clip=tmp_path / "clip.pt", dino="dino_vitb16", sam="sam_vit_b", device="cpu")
    message = str(info.value)
    assert "sam:" in message and "dino:" in message and "clip:" in message
    assert "sam_vit_b_01ec64.pth" in message  # says what to download


def test_config_and_presets() -> None:
    voc20 = preset_config("voc20")
    assert voc20.stride == 112 and voc20.cos_fac == 0.0 and voc20.short_side == 336
    city = preset_config("cityscapes19")
    assert (city.short_side, city.cos_fac, city.refine_neg_cos, city.split_halves) == (688, 3.0, False, True)
    assert preset_config("ade150").refinement.coarse_thresh == 0.05 and preset_config("voc21").prob_thd == 0.2
    assert preset_config("pc60").prob_thd == 0.15 and preset_config("coco_object").prob_thd == 0.25
    assert preset_config("voc21").background_names[:3] == ("sky", "wall", "tree")
    d = TridentConfig()
    assert (d.window, d.stride, d.beta, d.gamma, d.cos_fac, d.logit_scale, d.max_cos_thresh) == (
        336, 224, 1.2, 3.0, 1.2, 40.0, 0.9)
    assert (d.refinement.iou_thresh, d.refinement.minimal_area, d.refinement.mask_coefficient) == (0.8, 225, 0.005)
    with pytest.raises(LmsegError, match="no Trident preset 'nope'; known: .*voc21"):
        preset_config("nope")
    with pytest.raises(LmsegError, match="prob_thd"):
        TridentConfig(prob_thd=2.0)
    with pytest.raises(LmsegError, match="preset"):
        create_segmenter("trident_vitb16", clip="openai", dino="x", sam="y", benchmark="nope")
    with pytest.raises(LmsegError, match="either a complete TridentConfig or benchmark="):
        create_segmenter("trident_vitb16", config=TridentConfig(), benchmark="voc21")
