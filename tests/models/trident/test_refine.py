"""Connected regions and SAM refinement: synthetic cases with known answers, and the stock SamPredictor."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from segment_anything.utils.transforms import ResizeLongestSide

from lmseg.models.trident.config import RefinementConfig
from lmseg.models.trident.prompters import SamPrompts
from lmseg.models.trident.refine import refine_with_sam
from lmseg.models.trident.regions import class_regions, label_regions
from tests.tolerances import fp32_tolerance


def test_label_regions_8_connected_raster_order() -> None:
    mask = np.array([
        [0, 0, 0, 1, 0],
        [1, 1, 0, 0, 1],  # (1,4) touches (0,3) diagonally
        [0, 0, 1, 0, 0],  # (2,2) touches (1,1) diagonally
        [1, 0, 0, 0, 0],
    ], dtype=bool)
    labels, count = label_regions(mask)
    assert count == 3
    assert labels.tolist() == [[0, 0, 0, 1, 0], [2, 2, 0, 0, 1], [0, 0, 2, 0, 0], [3, 0, 0, 0, 0]]


def test_class_regions_boxes_points_area_and_skips() -> None:
    labels = torch.full((8, 10), 9)
    labels[1:4, 1:5] = 1  # 12 px
    labels[6:8, 7:9] = 1  # 4 px: below minimal area
    labels[5:8, 0:3] = 2  # class 2, but its max probability is below coarse_thresh
    probs = torch.zeros(3, 8, 10)
    probs[1, 1:4, 1:5] = 0.5
    probs[1, 2, 3] = 0.9
    probs[2] = 0.1
    found = class_regions(labels, probs, coarse_thresh=0.2, minimal_area=5)
    assert list(found) == [1] and len(found[1]) == 1
    region = found[1][0]
    assert region.box == (1, 1, 4, 3) and region.point == (3, 2) and region.mask.sum() == 12


@dataclass
class _Model:
    """The parts of ``Sam`` that refinement uses."""

    mask_threshold: float = 0.0

    class prompt_encoder:  # noqa: N801 - attribute namespace like Sam.prompt_encoder
        mask_input_size = (256, 256)

    def postprocess_masks(self, low_res, input_size, original_size):
        x = F.interpolate(low_res, (64, 64), mode="bilinear", align_corners=False)
        x = x[..., : input_size[0], : input_size[1]]
        return F.interpolate(x, original_size, mode="bilinear", align_corners=False)


class ScriptedPredictor:
    """A SamPredictor stand-in that answers each prompt with a scripted mask and IoU.

    ``answers`` maps a region's (half-resolution) box centre class to ``(mask (H, W) bool at
    image size, iou)``; the low-res logits are +20 / -20 so that the mask comes back exactly.
    """

    def __init__(self, image_hw, answers):
        self.transform = ResizeLongestSide(64)
        self.model = _Model()
        self.device = torch.device("cpu")
        self.original_size = image_hw
        self.input_size = ResizeLongestSide.get_preprocess_shape(*image_hw, 64)
        self.answers = answers
        self.calls = []

    def predict_torch(self, point_coords, point_labels, boxes, mask_input, multimask_output):
        self.calls.append(dict(points=point_coords, boxes=boxes, mask=mask_input, multi=multimask_output))
        masks, ious = [], []
        for box in boxes:
            cls = len(self.calls)  # prompts arrive class by class in class order
            mask, iou = self.answers[cls]
            canvas = torch.zeros(64, 64)
            h, w = self.input_size
            small = F.interpolate(mask[None, None].float(), (h, w), mode="nearest")[0, 0]
            canvas[:h, :w] = small
            masks.append(canvas)
            ious.append(iou)
        low_res = (torch.stack(masks)[:, None] * 40 - 20)
        low_res = F.interpolate(low_res, (256, 256), mode="nearest")
        return low_res > 0, torch.tensor(ious)[:, None], low_res


def test_refinement_known_answer() -> None:
    h, w = 64, 64
    probs = torch.full((3, h, w), 0.05)
    probs[0] = 0.9
    probs[1, 8:32, 8:32], probs[0, 8:32, 8:32] = 0.8, 0.1  # class 1 square
    probs[2, 40:60, 40:60], probs[0, 40:60, 40:60] = 0.7, 0.2  # class 2 square
    labels = probs.argmax(0)
    sam_mask_1 = torch.zeros(h, w, dtype=torch.bool)
    sam_mask_1[4:36, 4:36] = True  # SAM grows class 1's region
    sam_mask_0 = torch.zeros(h, w, dtype=torch.bool)
    sam_mask_0[:, :] = True
    answers = {1: (sam_mask_0, 0.95), 2: (sam_mask_1, 0.9), 3: (torch.ones(h, w, dtype=torch.bool), 0.5)}
    predictor = ScriptedPredictor((h, w), answers)
    cfg = RefinementConfig(enabled=True, coarse_thresh=0.2, minimal_area=10, iou_thresh=0.8)
    out = refine_with_sam(SamPrompts(predictor), labels, probs, cfg)
    assert len(predictor.calls) == 3 and out.kept_masks == 2  # class 2's mask fails the IoU filter
    # known answer: score_c = sigmoid(20) * p_c inside c's kept masks
    s = torch.sigmoid(torch.tensor(20.0))
    expected = torch.zeros(3, h, w)
    expected[0] = s * probs[0]
    expected[1][sam_mask_1] = (s * probs[1])[sam_mask_1]
    # class 2 failed: its region's pixels take at least the coarse probabilities
    failed = torch.zeros(h, w, dtype=torch.bool)
    failed[40:60, 40:60] = True
    expected = torch.where(failed & (probs > expected), probs, expected)
    # one product (and maxima) per score in either: fp32_tolerance(terms=1). Measured (2026-12-07, shared 2-core
    # CPU): 0 (atol 7.2e-7)
    torch.testing.assert_close(out.scores, expected, **fp32_tolerance(terms=1))
    # labels come from the kept masks only: class 1 where s*0.8 beats class 0's s*0.1; class 2's square
    # (its mask failed) is covered by class 0's kept mask, so it is labelled 0 (the public behaviour)
    exp_labels = torch.zeros(h, w, dtype=torch.long)
    exp_labels[8:32, 8:32] = 1
    assert torch.equal(out.labels, exp_labels)
    # the prompts: half-resolution box/point scaled to SAM's input frame, unbatched mask prompt
    call = predictor.calls[1]
    assert call["boxes"].tolist() == [[8.0, 8.0, 30.0, 30.0]] and call["points"].tolist() == [[[8.0, 8.0]]]
    assert call["mask"].shape == (1, 256, 256) and call["multi"] is False
    assert torch.isclose(call["mask"].max(), torch.tensor(0.005 * 0.8)) and call["mask"][0, 200, 200] == 0


def test_refinement_without_kept_masks_returns_coarse() -> None:
    probs = torch.rand(3, 40, 50, generator=torch.Generator().manual_seed(0)).softmax(0)
    labels = probs.argmax(0)
    predictor = ScriptedPredictor((40, 50), {k: (torch.ones(40, 50, dtype=torch.bool), 0.1) for k in range(1, 4)})
    out = refine_with_sam(SamPrompts(predictor), labels, probs,
                          RefinementConfig(enabled=True, coarse_thresh=0.0, minimal_area=1))
    assert out.kept_masks == 0 and out.labels is labels and out.scores is probs


def test_refinement_with_stock_sam_predictor(tiny_segmenter, sample_images) -> None:
    """The real SamPredictor path: masks kept with a permissive IoU filter, none with an impossible one."""
    from dataclasses import replace

    from lmseg.models.trident import TridentPredictor

    vocab = ["background", "person", "grass", "sky"]
    coarse = tiny_segmenter.predict(sample_images[1], vocab, return_scores=True)
    base = tiny_segmenter.config
    for thresh, expect_same in ((-1e9, False), (1e9, True)):
        cfg = replace(base, refinement=replace(base.refinement, enabled=True, iou_thresh=thresh, minimal_area=20,
                                               coarse_thresh=0.0))
        model = tiny_segmenter.model
        model_cfg = type(model)(model.clip, model.dino, model.sam, cfg)
        out = TridentPredictor(model_cfg).predict(sample_images[1], vocab, return_scores=True)
        assert out.label_map.shape == coarse.label_map.shape and out.scores.shape == coarse.scores.shape
        # the same model's coarse scores, kept when every mask is rejected: exact
        same = np.array_equal(out.label_map, coarse.label_map) and np.array_equal(out.scores, coarse.scores)
        assert same == expect_same
