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

The ``prompter`` is SAM with its image set (:mod:`.prompters`): a stock
``segment_anything.SamPredictor`` as published (:class:`~.prompters.SamPrompts`), or SAM 2.1's
``SAM2ImagePredictor`` (:class:`~.prompters.Sam2Prompts`, whose mask prompt covers the whole
image and is batched per region).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from lmseg.models.trident.config import RefinementConfig
from lmseg.models.trident.prompters import Prompter
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
    prompter: Prompter, labels: torch.Tensor, probs: torch.Tensor, config: RefinementConfig
) -> RefinementResult:
    """Refine a coarse segmentation with SAM prompts.

    Args:
        prompter: SAM with the image of this picture set (:mod:`.prompters`).
        labels: ``(H, W)`` int64 coarse labels (after background thresholding).
        probs: ``(N, H, W)`` float32 coarse class probabilities at the image size.
        config: thresholds (see :class:`RefinementConfig`).
    """
    num_classes, height, width = probs.shape
    ratio = config.down_ratio
    dh, dw = height // ratio, width // ratio
    labels_down = F.interpolate(labels[None, None].float(), (dh, dw), mode="nearest")[0, 0].long()
    probs_down = F.interpolate(probs[None].float(), (dh, dw), mode="bilinear", align_corners=False)[0]
    if config.coarse_thresh > 0:
        labels_down = torch.where(probs_down.max(dim=0).values < config.coarse_thresh, num_classes, labels_down)
    regions = class_regions(
        labels_down, probs_down, coarse_thresh=config.coarse_thresh, minimal_area=config.minimal_area
    )

    kept_logits: list[torch.Tensor] = []
    kept_class: list[int] = []
    failed: list[torch.Tensor] = []
    for c, found in regions.items():
        prompt = prompter.mask_prompt(probs_down[c], (height, width), config)
        boxes = torch.tensor([r.box for r in found], dtype=torch.float32)
        points = torch.tensor([r.point for r in found], dtype=torch.float32)
        iou, low_res = prompter.predict(boxes, points, prompt, (dh, dw))
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
    logits = prompter.to_image(low_res, (height, width))
    logits = logits[:, 0].float().to(probs.device)  # (M, H, W)
    masks = logits > prompter.mask_threshold
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
