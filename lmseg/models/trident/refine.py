"""Optional SAM refinement of the coarse map (Trident step 13).

On the probability map downsampled by ``down_ratio`` (2): pixels whose max probability is
below ``coarse_thresh`` are ignored, classes whose max is below it are skipped, and every
8-connected region of at least ``minimal_area`` pixels of a class becomes one SAM prompt: its
bounding box, the point of highest class probability inside it, and the class's probability
map as a mask prompt (resized to 256 on the long side, zero-padded, ``mask_coefficient * p``
where ``p > coarse_thresh`` else 0). One mask per prompt; masks whose predicted IoU is not
above ``iou_thresh`` are dropped. Mask logits are brought to the image size; a class's
refined score is the max over its kept masks of ``sigmoid(logit) * coarse probability``, zero
outside the union of those masks; the label is the argmax. Pixels with no kept mask keep the
coarse label; if no mask is kept at all the coarse result is returned unchanged.

Public-code details kept on purpose (they change numbers):

* The mask prompt is passed as ``(1, 256, 256)``, i.e. *unbatched*, shared by all regions of
  the class, exactly as the public code does. segment-anything's ``LayerNorm2d`` then
  normalises over the wrong axis of the prompt encoder's mask branch; the stock library is
  called unchanged, so this is reproduced, not re-implemented.
* Regions whose mask was dropped raise the refined score of their pixels to at least the
  coarse probability (the public ``map_failed_regions``); labels are unaffected.

The ``predictor`` is a stock ``segment_anything.SamPredictor`` whose image is already set.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from lmseg.models.trident.config import RefinementConfig
from lmseg.models.trident.regions import class_regions


@dataclass(frozen=True)
class RefinementResult:
    """Refined labels and scores.

    Attributes:
        labels: ``(H, W)`` int64.
        scores: ``(N, H, W)`` float32 in [0, 1]: refined class scores (the coarse probabilities
            where the refinement changed nothing).
        kept_masks: how many SAM masks passed the IoU filter (0: the coarse result came back).
    """

    labels: torch.Tensor
    scores: torch.Tensor
    kept_masks: int


@torch.no_grad()
def refine_with_sam(
    predictor, labels: torch.Tensor, probs: torch.Tensor, config: RefinementConfig
) -> RefinementResult:
    """Refine a coarse segmentation with SAM prompts.

    Args:
        predictor: a ``SamPredictor`` with its image set (the image SAM encoded for this
            picture); uses ``transform``, ``predict_torch``, ``model.postprocess_masks``,
            ``input_size``, ``original_size``, ``device``.
        labels: ``(H, W)`` int64 coarse labels (after background thresholding).
        probs: ``(N, H, W)`` float32 coarse class probabilities at the image size.
        config: thresholds (see :class:`RefinementConfig`).
    """
    num_classes, height, width = probs.shape
    device = predictor.device
    ratio = config.down_ratio
    dh, dw = height // ratio, width // ratio
    labels_down = F.interpolate(labels[None, None].float(), (dh, dw), mode="nearest")[0, 0].long()
    probs_down = F.interpolate(probs[None].float(), (dh, dw), mode="bilinear", align_corners=False)[0]
    if config.coarse_thresh > 0:
        labels_down = torch.where(probs_down.max(dim=0).values < config.coarse_thresh, num_classes, labels_down)
    regions = class_regions(
        labels_down, probs_down, coarse_thresh=config.coarse_thresh, minimal_area=config.minimal_area
    )
    side = int(predictor.model.prompt_encoder.mask_input_size[0])  # 256 for the official SAMs
    prompt_h, prompt_w = predictor.transform.get_preprocess_shape(height, width, side)

    kept_logits: list[torch.Tensor] = []
    kept_class: list[int] = []
    failed: list[torch.Tensor] = []
    for c, found in regions.items():
        prompt = F.interpolate(probs_down[c][None, None], (prompt_h, prompt_w), mode="bilinear", align_corners=False)[0]
        prompt = F.pad(prompt, (0, side - prompt_w, 0, side - prompt_h), value=0.0)
        prompt = torch.where(prompt > config.coarse_thresh, config.mask_coefficient * prompt, torch.zeros_like(prompt))
        boxes = torch.tensor([r.box for r in found], dtype=torch.float32)
        points = torch.tensor([r.point for r in found], dtype=torch.float32)
        boxes = predictor.transform.apply_boxes_torch(boxes, (dh, dw)).to(device)
        points = predictor.transform.apply_coords_torch(points, (dh, dw))[:, None].to(device)
        _, iou, low_res = predictor.predict_torch(
            point_coords=points,
            point_labels=torch.ones(len(found), 1, device=device),
            boxes=boxes,
            mask_input=prompt.to(device),  # (1, side, side): unbatched, as the public code (see module docstring)
            multimask_output=False,
        )
        valid = (iou > config.iou_thresh).squeeze(-1).cpu()
        if int(valid.sum()) != len(found):
            failed.extend(torch.from_numpy(r.mask) for r, ok in zip(found, valid.tolist()) if not ok)
        if not bool(valid.any()):
            continue
        kept_logits.append(low_res[valid.to(low_res.device)].float())
        kept_class.extend([c] * int(valid.sum()))

    if not kept_logits:
        return RefinementResult(labels, probs, 0)
    low_res = torch.cat(kept_logits)
    logits = predictor.model.postprocess_masks(low_res, predictor.input_size, predictor.original_size)
    if tuple(logits.shape[-2:]) != (height, width):
        logits = F.interpolate(logits, (height, width), mode="bilinear", align_corners=False)
    logits = logits[:, 0].float().to(probs.device)  # (M, H, W)
    masks = logits > predictor.model.mask_threshold
    sig = logits.sigmoid()
    owner = torch.tensor(kept_class, device=probs.device)
    scores = torch.zeros_like(probs, dtype=torch.float32)
    for c in owner.unique().tolist():
        mine = owner == c
        union = masks[mine].any(dim=0)
        scores[c] = (sig[mine] * probs[c]).max(dim=0).values * union
    refined = scores.argmax(dim=0)
    refined = torch.where(scores.sum(dim=0) == 0, labels, refined)
    if failed:
        area = torch.stack(failed).float()[None]
        area = F.interpolate(area, (height, width), mode="nearest")[0].to(probs.device).sum(dim=0) != 0
        failed_scores = area * probs.float()
        scores = torch.where(failed_scores > scores, failed_scores, scores)
        refined = torch.where(failed_scores.max(dim=0).values > scores.max(dim=0).values, labels, refined)
    return RefinementResult(refined, scores, int(low_res.shape[0]))
