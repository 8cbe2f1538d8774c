"""The label-map rule of the sam3 method, on tensors (:mod:`.config` states it in words).

Shapes: ``P`` prompts, ``Q`` queries (instances) per prompt, ``(h, w)`` SAM 3's mask grid,
``N`` classes, ``(H, W)`` the image.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from lmseg.models.sam3.config import Sam3Config


def prompt_evidence(outputs: dict[str, torch.Tensor], config: Sam3Config) -> torch.Tensor:
    """Per-pixel evidence of each prompt of one ``forward_grounding`` batch.

    Args:
        outputs: the package's outputs for ``P`` prompts: ``pred_logits (P, Q, 1)``,
            ``presence_logit_dec (P, 1)``, ``pred_masks (P, Q, h, w)``, ``semantic_seg
            (P, 1, h, w)`` (logits).
        config: the rule's settings.

    Returns:
        ``(P, h, w)`` float32 in [0, 1].
    """
    presence = outputs["presence_logit_dec"].float().sigmoid().view(-1, 1, 1)  # (P, 1, 1)
    if not config.use_presence:
        presence = torch.ones_like(presence)
    parts = []
    if config.evidence in ("instances", "both"):
        scores = outputs["pred_logits"].float().sigmoid()  # (P, Q, 1)
        scores = scores * presence
        scores = torch.where(scores > config.instance_threshold, scores, torch.zeros_like(scores))
        masks = outputs["pred_masks"].float().sigmoid()  # (P, Q, h, w)
        parts.append((scores[..., None] * masks).amax(dim=1))  # (P, h, w); 0 where no query is kept
    if config.evidence in ("semantic", "both"):
        parts.append(outputs["semantic_seg"].float().sigmoid()[:, 0] * presence)
    if len(parts) == 1:
        return parts[0]
    stacked = torch.stack(parts)
    return stacked.amax(dim=0) if config.evidence_combine == "max" else stacked.mean(dim=0)


class ClassPool:
    """Class scores from prompt evidence arriving in batches: the max or mean over each class's prompts.

    Args:
        num_classes: ``N``.
        grid: ``(h, w)``.
        pooling: ``"max"`` or ``"mean"``.
        device: where the maps live.
    """

    def __init__(self, num_classes: int, grid: tuple[int, int], pooling: str, device: torch.device) -> None:
        self.pooling = pooling
        self.maps = torch.zeros(num_classes, *grid, device=device)
        self.counts = torch.zeros(num_classes, device=device)

    def add(self, evidence: torch.Tensor, classes: torch.Tensor) -> None:
        """Pool ``evidence (P, h, w)`` of prompts belonging to ``classes (P,)``."""
        classes = classes.to(self.maps.device)
        index = classes.view(-1, 1, 1).expand_as(evidence)
        if self.pooling == "max":
            self.maps.scatter_reduce_(0, index, evidence.to(self.maps.dtype), reduce="amax", include_self=True)
        else:
            self.maps.index_add_(0, classes, evidence.to(self.maps.dtype))
        self.counts.index_add_(0, classes, torch.ones_like(classes, dtype=self.counts.dtype))

    def result(self) -> torch.Tensor:
        """``(N, h, w)`` class scores in [0, 1] (a class without prompts scores 0)."""
        if self.pooling == "max":
            return self.maps
        return self.maps / self.counts.clamp_min(1).view(-1, 1, 1)


def to_image(class_maps: torch.Tensor, image_hw: tuple[int, int]) -> torch.Tensor:
    """``(N, h, w)`` -> ``(N, H, W)``: bilinear (align_corners False) over the whole image
    (SAM 3's square input is the whole image, squeezed)."""
    return F.interpolate(class_maps[None], size=image_hw, mode="bilinear", align_corners=False)[0].clamp_(0, 1)


def compete(scores: torch.Tensor, config: Sam3Config) -> torch.Tensor:
    """Class scores -> the scores the label map is the argmax of (``"softmax"``: over dim 0)."""
    if config.competition == "softmax":
        return (scores / config.temperature).softmax(dim=0)
    return scores


def label_map(scores: torch.Tensor, config: Sam3Config) -> torch.Tensor:
    """``(N, H, W)`` competed scores -> ``(H, W)`` int64 labels, with the background rule."""
    best, labels = scores.max(dim=0)
    if config.background_threshold > 0:
        labels = torch.where(best < config.background_threshold, torch.full_like(labels, config.background_index),
                             labels)
    return labels


def labels_in_chunks(class_maps: torch.Tensor, image_hw: tuple[int, int], config: Sam3Config) -> torch.Tensor:
    """:func:`label_map` of :func:`compete` of :func:`to_image`, ``config.class_chunk`` classes at a time.

    Equal to the one-shot computation (ties aside) without holding ``N x H x W`` scores: a
    running best score and label, and for ``"softmax"`` a running log-sum-exp of
    ``score / temperature`` (the softmax's denominator).
    """
    height, width = image_hw
    best = torch.full((height, width), -float("inf"), device=class_maps.device)
    labels = torch.zeros((height, width), dtype=torch.long, device=class_maps.device)
    lse = torch.full((height, width), -float("inf"), device=class_maps.device)
    for start in range(0, class_maps.shape[0], config.class_chunk):
        chunk = to_image(class_maps[start:start + config.class_chunk], image_hw)
        value, index = chunk.max(dim=0)
        better = value > best
        best = torch.where(better, value, best)
        labels = torch.where(better, index + start, labels)
        if config.competition == "softmax":
            lse = torch.logaddexp(lse, (chunk / config.temperature).logsumexp(dim=0))
    if config.background_threshold > 0:
        top = (best / config.temperature - lse).exp() if config.competition == "softmax" else best
        labels = torch.where(top < config.background_threshold, torch.full_like(labels, config.background_index),
                             labels)
    return labels
