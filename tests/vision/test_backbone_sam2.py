"""Sam2Encoder (SAM 2.1 through the sam2 package): parity with SAM2ImagePredictor, strict weights."""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("sam2", reason="the sam2 package is not installed: run `make setup` (requirements/vision.txt)")

from lmseg.backbones.loading import CheckpointMismatchError  # noqa: E402
from lmseg.backbones.sam2 import Sam2Encoder, build_sam2_model, create_sam2_encoder  # noqa: E402
from lmseg.errors import LmsegError  # noqa: E402
from tests.tolerances import fp32_tolerance  # noqa: E402
from tests.torch_threads import one_torch_thread  # noqa: E402, F401 - autouse fixture

#: The tiny SAM 2.1 image encoder computed two ways (another batch; the predictor's preprocessing on an
#: array against ours on a tensor): the longest reduction is a trunk projection of 512 terms; the chain is
#: the patch embedding (1), 5 Hiera blocks x 6 products and the 3 stage projections (33), the FPN's 1 x 1
#: convolution (1), and for the preprocessing the antialiased resize (1): depth 36.
ENCODER = fp32_tolerance(terms=512, depth=36)


@pytest.fixture(scope="module")
def tiny() -> Sam2Encoder:
    torch.manual_seed(0)
    model = build_sam2_model("sam2.1_test_tiny")
    with torch.no_grad():  # SAM 2 initialises these to zero; make them count
        model.no_mem_embed.normal_(std=0.5)
        model.image_encoder.trunk.pos_embed.normal_(std=0.5)
    return Sam2Encoder(model).eval()


def _image(seed: int = 0, hw: tuple[int, int] = (120, 160)) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (*hw, 3), dtype=np.uint8)


@torch.no_grad()
def test_features_equal_the_package_predictor(tiny: Sam2Encoder) -> None:
    from sam2.sam2_image_predictor import SAM2ImagePredictor

    image = _image()
    ours = tiny(torch.from_numpy(image).permute(2, 0, 1)[None].float())
    reference = SAM2ImagePredictor(tiny.model)
    reference._bb_feat_sizes = [(64, 64), (32, 32), (16, 16)]  # the predictor hard-codes 1024's
    reference.set_image(image)
    assert ours.features.shape == (1, 64, 16, 16) and ours.valid_grid() == (16, 16)
    # ENCODER; measured (2026-12-07, shared 2-core CPU): 0 for the three levels (atol 5.8e-4)
    torch.testing.assert_close(ours.features, reference._features["image_embed"], **ENCODER)
    for mine, theirs in zip(ours.high_res, reference._features["high_res_feats"], strict=True):
        torch.testing.assert_close(mine, theirs, **ENCODER)
    # a batch of two gives each image's own features
    batch = torch.from_numpy(np.stack([image, _image(1)])).permute(0, 3, 1, 2).float()
    # ENCODER; measured (2026-12-07, shared 2-core CPU): 1.2e-6 (atol 5.8e-4)
    torch.testing.assert_close(tiny(batch).features[:1], ours.features, **ENCODER)


@torch.no_grad()
def test_predictor_with_features_predicts_as_set_image(tiny: Sam2Encoder) -> None:
    from sam2.sam2_image_predictor import SAM2ImagePredictor

    image = _image(2)
    features = tiny.encode(tiny.preprocess_numpy(image))
    ours = tiny.predictor(features, image.shape[:2])
    reference = SAM2ImagePredictor(tiny.model)
    reference._bb_feat_sizes = ours._bb_feat_sizes
    reference.set_image(image)
    prompt = {"point_coords": np.array([[80.0, 60.0]]), "point_labels": np.array([1]),
              "box": np.array([10.0, 10.0, 150.0, 100.0]), "multimask_output": False}
    masks, iou, low = ours.predict(**prompt, return_logits=True)
    masks_ref, iou_ref, low_ref = reference.predict(**prompt, return_logits=True)
    assert masks.shape == (1, 120, 160) and low.shape == (1, 64, 64)
    # the same operations in the same order (preprocess_numpy is set_image's transforms, encode its
    # forward_image and no_mem_embed, predict the package's): exact
    np.testing.assert_allclose(masks, masks_ref, rtol=0, atol=0)
    np.testing.assert_allclose(iou, iou_ref, rtol=0, atol=0)


def test_strict_loading_of_the_package_state_dict(tmp_path) -> None:
    """The official tiny architecture (random weights) saved as the official ``{"model": ...}`` file."""
    torch.manual_seed(1)
    source = build_sam2_model("sam2.1_hiera_tiny", image_size=256)
    path = tmp_path / "sam2.1_hiera_tiny.pt"
    torch.save({"model": source.state_dict()}, path)
    encoder = create_sam2_encoder("sam2.1_hiera_tiny", weights=path, image_size=256)
    for key, value in source.state_dict().items():
        assert torch.equal(encoder.model.state_dict()[key], value), key
    # the weights of the 1024 model fit any image_size (same keys and shapes)
    assert create_sam2_encoder("sam2.1_hiera_tiny", weights=path, image_size=512).img_size == 512
    state = dict(source.state_dict())
    state["image_encoder.trunk.extra"] = state.pop("no_mem_embed")
    torch.save({"model": state}, path)
    with pytest.raises(CheckpointMismatchError, match=r"missing key.*no_mem_embed.*unexpected key.*trunk.extra"):
        create_sam2_encoder("sam2.1_hiera_tiny", weights=path, image_size=256)
    small = build_sam2_model("sam2.1_hiera_small", image_size=256)
    torch.save({"model": small.state_dict()}, path)
    with pytest.raises(CheckpointMismatchError, match="does not fit SAM 2.1 sam2.1_hiera_tiny"):
        create_sam2_encoder("sam2.1_hiera_tiny", weights=path, image_size=256)


def test_bad_names_and_offline(monkeypatch) -> None:
    with pytest.raises(LmsegError, match="unknown SAM 2 model"):
        create_sam2_encoder("sam2.1_hiera_huge", weights=None)
    with pytest.raises(LmsegError, match="takes no weights"):
        create_sam2_encoder("sam2.1_test_tiny", weights="sam2.1_hiera_tiny")
    with pytest.raises(LmsegError, match="multiple of 32"):
        create_sam2_encoder("sam2.1_test_tiny", weights=None, image_size=100)
    monkeypatch.setenv("LMSEG_OFFLINE", "1")
    with pytest.raises(LmsegError, match=r"sam2.1_hiera_tiny.*not in the weights cache.*sam2.1_hiera_tiny.pt"):
        create_sam2_encoder("sam2.1_hiera_tiny", weights="official")
