"""The SAM that answers the refinement prompts: SAM (as published) or SAM 2.1.

:func:`~lmseg.models.trident.refine.refine_with_sam` asks one question per class: masks for
its regions, each prompted with a box, a point and the class's probability map. The two SAMs
take those prompts in different frames, so each gets a small adapter over its package's own
predictor:

* :class:`SamPrompts` (segment-anything ``SamPredictor``, the published refinement): the image
  lies in the top-left of a square canvas at its aspect ratio, so the mask prompt is the
  probability map resized to 256 on the long side and zero-padded, passed *unbatched*
  (``(1, 256, 256)``) as the public code passes it (see :mod:`.refine`);
* :class:`Sam2Prompts` (sam2 ``SAM2ImagePredictor``, new): the whole image is squeezed into
  the square, so the mask prompt is the probability map resized to the full 256 x 256, one per
  region (SAM 2's prompt encoder takes only batched masks); boxes and points go through the
  predictor's own ``predict`` (its coordinate transforms) in original pixels.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
import torch
import torch.nn.functional as F

from lmseg.models.trident.config import RefinementConfig


class Prompter(Protocol):
    """What the refinement needs from a SAM with its image set."""

    @property
    def mask_threshold(self) -> float: ...

    def mask_prompt(self, probs: torch.Tensor, image_hw: tuple[int, int], config: RefinementConfig) -> torch.Tensor:
        """The mask prompt of one class from its ``(dh, dw)`` probability map."""

    def predict(self, boxes: torch.Tensor, points: torch.Tensor, mask: torch.Tensor,
                frame_hw: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
        """``(iou (M, 1), low_res (M, 1, h, w))`` for ``M`` regions: ``boxes (M, 4)`` xyxy and
        ``points (M, 2)`` xy in a ``frame_hw`` frame, one mask prompt."""

    def to_image(self, low_res: torch.Tensor, image_hw: tuple[int, int]) -> torch.Tensor:
        """Low-resolution mask logits -> ``(M, 1, H, W)`` logits at the image size."""


def _cut(prompt: torch.Tensor, config: RefinementConfig) -> torch.Tensor:
    """``mask_coefficient * p`` where ``p > coarse_thresh``, else 0."""
    return torch.where(prompt > config.coarse_thresh, config.mask_coefficient * prompt, torch.zeros_like(prompt))


class SamPrompts:
    """A segment-anything ``SamPredictor`` with its image set (the published refinement)."""

    def __init__(self, predictor) -> None:  # noqa: ANN001 - segment_anything.SamPredictor
        self.predictor = predictor

    @property
    def mask_threshold(self) -> float:
        return float(self.predictor.model.mask_threshold)

    def mask_prompt(self, probs: torch.Tensor, image_hw: tuple[int, int], config: RefinementConfig) -> torch.Tensor:
        side = int(self.predictor.model.prompt_encoder.mask_input_size[0])  # 256 for the official SAMs
        prompt_h, prompt_w = self.predictor.transform.get_preprocess_shape(*image_hw, side)
        prompt = F.interpolate(probs[None, None], (prompt_h, prompt_w), mode="bilinear", align_corners=False)[0]
        prompt = F.pad(prompt, (0, side - prompt_w, 0, side - prompt_h), value=0.0)
        return _cut(prompt, config)  # (1, side, side): unbatched, as the public code

    def predict(self, boxes: torch.Tensor, points: torch.Tensor, mask: torch.Tensor,
                frame_hw: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
        p = self.predictor
        device = p.device
        boxes = p.transform.apply_boxes_torch(boxes, frame_hw).to(device)
        points = p.transform.apply_coords_torch(points, frame_hw)[:, None].to(device)
        _, iou, low_res = p.predict_torch(
            point_coords=points, point_labels=torch.ones(len(boxes), 1, device=device), boxes=boxes,
            mask_input=mask.to(device), multimask_output=False,
        )
        return iou, low_res

    def to_image(self, low_res: torch.Tensor, image_hw: tuple[int, int]) -> torch.Tensor:
        p = self.predictor
        logits = p.model.postprocess_masks(low_res, p.input_size, p.original_size)
        if tuple(logits.shape[-2:]) != tuple(image_hw):
            logits = F.interpolate(logits, image_hw, mode="bilinear", align_corners=False)
        return logits


class Sam2Prompts:
    """A sam2 ``SAM2ImagePredictor`` with its image set (:meth:`lmseg.backbones.sam2.Sam2Encoder.predictor`).

    Args:
        predictor: the predictor.
        transforms: its ``SAM2Transforms`` (for ``postprocess_masks``).
    """

    def __init__(self, predictor, transforms) -> None:  # noqa: ANN001 - sam2 classes
        self.predictor = predictor
        self.transforms = transforms

    @property
    def mask_threshold(self) -> float:
        return float(self.predictor.mask_threshold)

    @property
    def _original_hw(self) -> tuple[int, int]:
        return tuple(int(s) for s in self.predictor._orig_hw[0])

    def mask_prompt(self, probs: torch.Tensor, image_hw: tuple[int, int], config: RefinementConfig) -> torch.Tensor:
        side = int(self.predictor.model.sam_prompt_encoder.mask_input_size[0])  # image_size / 4
        prompt = F.interpolate(probs[None, None], (side, side), mode="bilinear", align_corners=False)[0]
        return _cut(prompt, config)  # (1, side, side)

    def predict(self, boxes: torch.Tensor, points: torch.Tensor, mask: torch.Tensor,
                frame_hw: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
        height, width = self._original_hw
        scale = torch.tensor([width / frame_hw[1], height / frame_hw[0]])
        count = len(boxes)
        _, iou, low_res = self.predictor.predict(
            point_coords=(points * scale)[:, None].numpy(), point_labels=np.ones((count, 1)),
            box=(boxes * scale.repeat(2)).numpy(), mask_input=mask[None].expand(count, -1, -1, -1).cpu().numpy(),
            multimask_output=False, return_logits=True,
        )
        iou, low_res = torch.as_tensor(iou), torch.as_tensor(low_res)
        if count == 1:  # the predictor drops the batch axis of a single prompt
            iou, low_res = iou.reshape(1, -1), low_res.reshape(1, *low_res.shape[-3:])
        return iou, low_res

    def to_image(self, low_res: torch.Tensor, image_hw: tuple[int, int]) -> torch.Tensor:
        logits = self.transforms.postprocess_masks(low_res, self._original_hw)
        if tuple(logits.shape[-2:]) != tuple(image_hw):
            logits = F.interpolate(logits, image_hw, mode="bilinear", align_corners=False)
        return logits
