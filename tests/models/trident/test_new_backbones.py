"""Trident with the 2026 backbones: DINOv2 / DINOv3 / C-RADIO as the spatial backbone, SAM 2.1 refinement."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lmseg.errors import LmsegError
from lmseg.registry import available_segmenters, create_segmenter
from tests.models.trident.test_end_to_end import FP32
from tests.tolerances import fp32_tolerance
from tests.torch_threads import one_torch_thread  # noqa: F401 - autouse fixture

VOCAB = ["background", "person", "grass", "sky"]
REFINE = {"refinement": {"enabled": True, "minimal_area": 20, "coarse_thresh": 0.0}}


@pytest.mark.parametrize(("spatial", "timm_class"), [("dinov3_vitb16", "Eva"), ("radio_v3_b", "NaFlexVit")])
def test_spatial_backbones_run_end_to_end(spatial: str, timm_class: str, sample_images) -> None:
    from lmseg.backbones.dense_vit import DenseViT

    seg = create_segmenter("trident_tiny", spatial_model=spatial)
    assert isinstance(seg.model.dino, DenseViT) and type(seg.model.dino.model).__name__ == timm_class
    out = seg.predict(sample_images[1], VOCAB, return_scores=True)
    assert out.label_map.shape == (226, 640) and out.scores.shape == (4, 226, 640)
    probs = seg.logits(sample_images[1], VOCAB)
    assert np.isfinite(probs).all() and ((probs >= 0) & (probs <= 1)).all()
    # the spatial backbone matters: another one gives other probabilities
    assert not np.allclose(probs, create_segmenter("trident_tiny").logits(sample_images[1], VOCAB), **FP32)
    assert seg.protocol(VOCAB)["backbones"] == {"spatial_backbone": spatial}
    assert "backbones" not in create_segmenter("trident_tiny").protocol(VOCAB)  # published records unchanged


def test_sam21_refinement(sample_images) -> None:
    from lmseg.backbones.sam2 import Sam2Encoder

    coarse = create_segmenter("trident_tiny").predict(sample_images[1], VOCAB, return_scores=True)
    for iou_thresh, same in ((-1e9, False), (1e9, True)):
        config = {"refinement": {**REFINE["refinement"], "iou_thresh": iou_thresh}}
        seg = create_segmenter("trident_tiny", refine_model="sam2.1_test_tiny", config=config)
        assert isinstance(seg.model.refiner, Sam2Encoder)
        out = seg.predict(sample_images[1], VOCAB, return_scores=True)
        assert out.label_map.shape == coarse.label_map.shape  # the coarse map is the same model's
        # the same model's coarse scores, kept when every mask is rejected: exact
        unchanged = np.array_equal(out.label_map, coarse.label_map) and np.array_equal(out.scores, coarse.scores)
        assert unchanged == same
    assert seg.protocol(VOCAB)["backbones"] == {"refinement_backbone": "SAM 2.1 (256 px)"}


@torch.no_grad()
def test_sam2_prompts_batch_equals_one_prompt_at_a_time() -> None:
    """Regions go to SAM 2.1 as one batch; each equals the predictor's own single-prompt answer."""
    from lmseg.backbones.sam2 import create_sam2_encoder
    from lmseg.models.trident.config import RefinementConfig
    from lmseg.models.trident.prompters import Sam2Prompts

    torch.manual_seed(0)
    encoder = create_sam2_encoder("sam2.1_test_tiny", weights=None)
    image = np.random.default_rng(0).integers(0, 256, (90, 120, 3), dtype=np.uint8)
    predictor = encoder.predictor(encoder.encode(encoder.preprocess_numpy(image)), image.shape[:2])
    prompter = Sam2Prompts(predictor, encoder.transforms)
    probs = torch.rand(45, 60, generator=torch.Generator().manual_seed(1))
    mask = prompter.mask_prompt(probs, (90, 120), RefinementConfig(coarse_thresh=0.5))
    assert mask.shape == (1, 64, 64) and float(mask.max()) <= 0.005  # the whole image, cut and scaled
    boxes = torch.tensor([[2.0, 3.0, 30.0, 20.0], [10.0, 10.0, 50.0, 40.0]])  # half-resolution frame (45 x 60)
    points = torch.tensor([[10.0, 8.0], [30.0, 25.0]])
    iou, low_res = prompter.predict(boxes, points, mask, (45, 60))
    assert iou.shape == (2, 1) and low_res.shape == (2, 1, 64, 64)
    for i in range(2):
        _, one_iou, one_low = predictor.predict(
            point_coords=(points[i:i + 1] * 2).numpy(), point_labels=np.ones(1), box=(boxes[i] * 2).numpy(),
            mask_input=mask.numpy(), multimask_output=False, return_logits=True)
        # SAM 2.1's prompt encoder and mask decoder, 2 prompts batched against one: the longest reduction is
        # the two-way transformer's 2,048-wide MLP; the chain is the prompt encoding (1), 2 layers x (3
        # attentions x 6 products + 2 MLP layers) (40), the final attention (6), then the IoU head (3):
        # depth 50, or the upscaling (2), the hypernetwork MLP (3) and the mask product (1): depth 53.
        # Measured (2026-12-07, shared 2-core CPU): IoU 0 (atol 1.6e-3), masks 8.2e-8 (atol 1.7e-3)
        np.testing.assert_allclose(iou[i].numpy(), one_iou, **fp32_tolerance(terms=2048, depth=50))
        np.testing.assert_allclose(low_res[i].numpy(), one_low, **fp32_tolerance(terms=2048, depth=53))
    assert prompter.to_image(low_res, (90, 120)).shape == (2, 1, 90, 120)


def test_variants_and_bad_names() -> None:
    assert {"trident_vitb16_dinov2", "trident_vitb16_dinov3", "trident_vitb16_radio"} <= set(available_segmenters())
    with pytest.raises(LmsegError, match="unknown spatial_model 'dinov9'.*dinov3_vitb16"):
        create_segmenter("trident_tiny", spatial_model="dinov9")
    with pytest.raises(LmsegError, match="unknown refine_model 'sam2.1_hiera_large'; choose one of sam, sam2.1_test"):
        create_segmenter("trident_tiny", refine_model="sam2.1_hiera_large")
    with pytest.raises(LmsegError, match=r"needs weights for all its backbones; pass clip=.*dino= \(e.g. 'hub'.*"
                                         r"sam= .*sam2= \(e.g. 'sam2.1_hiera_large'"):
        create_segmenter("trident_vitb16_dinov3", refine_model="sam2.1_hiera_large", device="cpu")
    with pytest.raises(TypeError, match="sam2"):
        create_segmenter("trident_tiny", sam2="x")
