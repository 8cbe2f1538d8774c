"""Targets from semantic labels and Mask2Former's set criterion.

Per image, the ground truth is one binary mask per class present in the label map (unlabelled
pixels belong to no mask). Each prediction set is matched to it (:mod:`.matcher`) and scored::

    loss_class = CE(class_logits, matched class or "no object"), class weights 1 / no_object_weight
    loss_mask  = sum over matched pairs of mean BCE on importance-sampled points / num_masks
    loss_dice  = sum over matched pairs of dice on the same points / num_masks
    loss       = sum over predictions (all layers with deep supervision) of
                 class_weight * loss_class + mask_weight * loss_mask + dice_weight * loss_dice

``num_masks`` is the number of target masks in the batch (at least 1).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from lmseg.models.mrovseg.config import LossConfig
from lmseg.models.mrovseg.decoder import Prediction
from lmseg.models.mrovseg.matcher import hungarian_match
from lmseg.models.mrovseg.points import importance_points, point_sample

Match = tuple[torch.Tensor, torch.Tensor]


@dataclass
class Target:
    """The ground truth of one image: ``labels`` ``(T,)`` int64, ``masks`` ``(T, H, W)`` float {0, 1}."""

    labels: torch.Tensor
    masks: torch.Tensor


def semantic_targets(labels: torch.Tensor, num_classes: int, ignore_index: int) -> list[Target]:
    """One binary mask per present class of each ``(H, W)`` label map of ``(B, H, W)``.

    Raises:
        ValueError: a label outside ``[0, num_classes)`` other than ``ignore_index``.
    """
    out = []
    for lab in labels:
        present = torch.unique(lab[lab != ignore_index])
        if bool(((present < 0) | (present >= num_classes)).any()):
            raise ValueError(f"labels hold values outside [0, {num_classes}) other than the ignore index "
                             f"{ignore_index}")
        out.append(Target(present.to(torch.int64), (lab[None] == present[:, None, None]).float()))
    return out


def class_loss(class_logits: torch.Tensor, matches: list[Match], targets: list[Target],
               no_object_weight: float) -> torch.Tensor:
    """Weighted cross-entropy; unmatched queries are "no object" (index N)."""
    b, q, n1 = class_logits.shape
    wanted = torch.full((b, q), n1 - 1, dtype=torch.int64, device=class_logits.device)
    for i, ((rows, cols), tgt) in enumerate(zip(matches, targets)):
        wanted[i, rows.to(wanted.device)] = tgt.labels[cols].to(wanted.device)
    weight = torch.ones(n1, device=class_logits.device)
    weight[-1] = no_object_weight
    return F.cross_entropy(class_logits.float().transpose(1, 2), wanted, weight=weight)


def dice_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """``(R, K)`` -> ``(R,)`` dice loss ``1 - (2 p.t + 1) / (|p| + |t| + 1)``, ``p = sigmoid``."""
    p = logits.sigmoid()
    return 1.0 - (2.0 * (p * targets).sum(-1) + 1.0) / (p.sum(-1) + targets.sum(-1) + 1.0)


def mask_losses(mask_logits: torch.Tensor, matches: list[Match], targets: list[Target], num_masks: float,
                cfg: LossConfig, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """``(loss_mask, loss_dice)`` on importance-sampled points of the matched pairs."""
    src = torch.cat([mask_logits[i, rows.to(mask_logits.device)] for i, (rows, _) in enumerate(matches)])
    if src.shape[0] == 0:
        zero = mask_logits.sum() * 0.0
        return zero, zero
    tgt = torch.cat([t.masks[cols.to(t.masks.device)] for (_, cols), t in zip(matches, targets)])
    coords = importance_points(src, cfg.num_points, cfg.oversample, cfg.importance, generator)
    logits = point_sample(src.float(), coords)
    with torch.no_grad():
        labels = point_sample(tgt.float(), coords)
    bce = F.binary_cross_entropy_with_logits(logits, labels, reduction="none").mean(1)
    return bce.sum() / num_masks, dice_loss(logits, labels).sum() / num_masks


class SetCriterion:
    """Matching + losses over all prediction sets (see the module docstring)."""

    def __init__(self, cfg: LossConfig) -> None:
        self.cfg = cfg

    def match(self, pred: Prediction, targets: list[Target], generator: torch.Generator | None = None) -> list[Match]:
        c = self.cfg
        return [hungarian_match(pred.class_logits[i], pred.mask_logits[i], t.labels, t.masks, num_points=c.num_points,
                                weights=(c.class_weight, c.mask_weight, c.dice_weight), generator=generator)
                for i, t in enumerate(targets)]

    def terms(self, pred: Prediction, targets: list[Target], generator: torch.Generator | None = None
              ) -> dict[str, torch.Tensor]:
        """Unweighted ``loss_class``, ``loss_mask``, ``loss_dice`` of one prediction set."""
        matches = self.match(pred, targets, generator)
        num_masks = max(1.0, float(sum(len(t.labels) for t in targets)))
        bce, dice = mask_losses(pred.mask_logits, matches, targets, num_masks, self.cfg, generator)
        ce = class_loss(pred.class_logits, matches, targets, self.cfg.no_object_weight)
        return {"loss_class": ce, "loss_mask": bce, "loss_dice": dice}

    def __call__(self, predictions: list[Prediction], targets: list[Target],
                 generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """``{"loss": weighted sum over the supervised sets, "loss_class"/"loss_mask"/"loss_dice": the
        final set's unweighted terms}``."""
        c = self.cfg
        supervised = predictions if c.deep_supervision else predictions[-1:]
        total = None
        for pred in supervised:
            t = self.terms(pred, targets, generator)
            part = c.class_weight * t["loss_class"] + c.mask_weight * t["loss_mask"] + c.dice_weight * t["loss_dice"]
            total = part if total is None else total + part
        return {"loss": total, **{k: v.detach() for k, v in t.items()}}
