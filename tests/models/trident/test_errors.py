"""Bad inputs and missing weights give one clear LmsegError."""

from __future__ import annotations

import numpy as np
import pytest

from lmseg.errors import LmsegError
from lmseg.models.trident import TridentConfig, create_trident, create_trident_vith14, preset
from lmseg.registry import create_segmenter


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

    from lmseg.models.trident import TridentSegmenter

    model = tiny_segmenter.model
    cfg = replace(model.config, background_names=("sky", "wall"))
    seg = TridentSegmenter(type(model)(model.clip, model.dino, model.sam, cfg))
    with pytest.raises(LmsegError, match="not 'background'"):
        seg.predict(np.zeros((32, 32, 3), np.uint8), ["cat", "dog"])


def test_missing_weights_name_all_three() -> None:
    with pytest.raises(LmsegError) as info:
        create_segmenter("trident_vitb16")
    message = str(info.value)
    assert "clip=" in message and "dino=" in message and "sam=" in message and "'openai'" in message
    with pytest.raises(LmsegError, match="laion2b_s32b_b79k"):
        create_trident_vith14(dino="dino_vitb16", sam="sam_vit_b")


def test_unavailable_weights_are_reported_together(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("LMSEG_OFFLINE", "1")
    with pytest.raises(LmsegError) as info:
        create_trident(clip=tmp_path / "clip.pt", dino="dino_vitb16", sam="sam_vit_b", device="cpu")
    message = str(info.value)
    assert "sam:" in message and "dino:" in message and "clip:" in message
    assert "sam_vit_b_01ec64.pth" in message  # says what to download


def test_config_and_presets() -> None:
    assert preset("voc20").stride == 112 and preset("voc20").cos_fac == 0.0 and preset("voc20").short_side == 336
    city = preset("cityscapes19")
    assert (city.short_side, city.cos_fac, city.refine_neg_cos, city.split_halves) == (688, 3.0, False, True)
    assert preset("ade150").refinement.coarse_thresh == 0.05 and preset("voc21").prob_thd == 0.2
    assert preset("pc60").prob_thd == 0.15 and preset("coco_object").prob_thd == 0.25
    assert preset("voc21").background_names[:3] == ("sky", "wall", "tree")
    d = TridentConfig()
    assert (d.window, d.stride, d.beta, d.gamma, d.cos_fac, d.logit_scale, d.max_cos_thresh) == (
        336, 224, 1.2, 3.0, 1.2, 40.0, 0.9)
    assert (d.refinement.iou_thresh, d.refinement.minimal_area, d.refinement.mask_coefficient) == (0.8, 225, 0.005)
    with pytest.raises(KeyError, match="known"):
        preset("nope")
    with pytest.raises(ValueError, match="prob_thd"):
        TridentConfig(prob_thd=2.0)
    with pytest.raises(LmsegError, match="preset"):
        create_trident(clip="openai", dino="x", sam="y", benchmark="nope")
