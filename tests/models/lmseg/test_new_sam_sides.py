"""LMSeg fusing SAM 2.1 features (and SAM 3's image encoder): the fused features are the package's, trains, saves."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from lmseg.errors import LmsegError
from lmseg.models.lmseg import build_model, get_config, save_model
from lmseg.models.lmseg.model import segmentation_loss
from lmseg.registry import create_segmenter
from tests.torch_threads import one_torch_thread  # noqa: F401 - autouse fixture

from .conftest import SAMPLES

pytest.importorskip("sam2", reason="the sam2 package is not installed: run `make setup` (requirements/vision.txt)")


def _assert_fusion_takes_the_sam_features(model, images: torch.Tensor, shape: tuple[int, ...]) -> None:
    """The SAM-side features that enter the fusion (a forward hook on it) are, bit for bit,
    ``model.sam``'s own features of the same pixels, of shape ``shape``."""
    seen = {}

    def keep(module, args, output) -> None:  # returns None: the output is left as it is
        seen["sam"] = args[1]

    handle = model.head.fusion.register_forward_hook(keep)
    try:
        with torch.no_grad():
            model(images, torch.randn(3, 4, 32))
    finally:
        handle.remove()
    with torch.no_grad():
        expected = model.sam(images * 255.0).features
    assert seen["sam"].shape == shape
    torch.testing.assert_close(seen["sam"], expected, rtol=0, atol=0)


def test_sam21_features_enter_the_fusion() -> None:
    from lmseg.backbones.sam2 import Sam2Encoder

    torch.manual_seed(0)
    model = build_model(get_config("lmseg_tiny_sam21"))
    assert isinstance(model.sam, Sam2Encoder) and model.sam.img_size == 128
    assert model.head.fusion.proj.in_channels == 64  # the test SAM 2.1's image_embed width
    images = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    # model.sam's features are what SAM2ImagePredictor.set_image computes (tests/vision/test_backbone_sam2.py)
    _assert_fusion_takes_the_sam_features(model, images, (2, 64, 8, 8))


def test_sam21_model_trains_only_its_head_and_clip_attention() -> None:
    torch.manual_seed(0)
    model = build_model(get_config("lmseg_tiny_sam21"))
    model.train()
    assert not model.sam.training  # frozen, eval mode even in training
    g = torch.Generator().manual_seed(2)
    labels = torch.randint(0, 3, (2, 64, 64), generator=g)
    loss = segmentation_loss(model(torch.rand(2, 3, 64, 64, generator=g), torch.randn(3, 4, 32, generator=g)), labels)
    loss.backward()
    assert all(p.grad is None for p in model.sam.parameters())
    assert model.head.fusion.proj.weight.grad is not None and float(model.head.fusion.proj.weight.grad.abs().sum()) > 0


def test_sam21_segmenter_and_checkpoint_round_trip(tmp_path) -> None:
    image = str(SAMPLES / "cocoobject81_coco128seg_train128" / "images" / "000000000472.jpg")
    seg = create_segmenter("lmseg_tiny_sam21")
    out = seg.predict(image, ["person", "grass", "sky"], return_scores=True)
    assert out.label_map.shape == (226, 640) and np.isfinite(out.scores).all()
    path = save_model(seg.model, tmp_path / "tiny_sam21.pt")  # the random SAM 2.1 is part of the checkpoint
    reloaded = create_segmenter("lmseg_tiny_sam21", checkpoint=path, seed=5)
    for key, value in seg.model.sam.state_dict().items():
        assert torch.equal(reloaded.model.sam.state_dict()[key], value), key
    np.testing.assert_array_equal(reloaded.predict(image, ["person", "grass", "sky"]).label_map, out.label_map)


def test_sam3_image_encoder_as_the_sam_side() -> None:
    pytest.importorskip("sam3", reason="the sam3 package is not installed: run `make setup`")
    from lmseg.backbones.sam3 import Sam3ImageEncoder

    torch.manual_seed(0)
    model = build_model(replace(get_config("lmseg_tiny"), name="lmseg_tiny", sam_model="sam3_test_tiny",
                                sam_image_size=112))
    assert isinstance(model.sam, Sam3ImageEncoder)
    images = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(3))
    _assert_fusion_takes_the_sam_features(model, images, (1, 256, 8, 8))


def test_sam_side_errors() -> None:
    with pytest.raises(LmsegError, match="random test encoder; it takes no SAM weights"):
        build_model(get_config("lmseg_tiny_sam21"), sam="sam2.1_hiera_tiny")
    with pytest.raises(LmsegError, match=r"lmseg_vitb16_sam21 needs a trained LMSeg checkpoint.*"
                                         r"lmseg_vitb16_sam21_cocostuff.yaml"):
        create_segmenter("lmseg_vitb16_sam21", sam="sam2.1_hiera_large")
    with pytest.raises(LmsegError, match="sam_image_size must be 0"):
        replace(get_config("lmseg_tiny"), sam_image_size=-1)
