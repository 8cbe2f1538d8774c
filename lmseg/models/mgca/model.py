"""The MGCA network: CLIP towers, dense patch embeddings, groups, and the multi-grained loss.

:class:`MGCAModel` wraps a :class:`~lmseg.backbones.clip.DenseCLIP` (open_clip, both towers):

* :meth:`MGCAModel.dense` gives L2-normalised patch embeddings in the joint space
  (CLIP's ``ln_post`` + ``proj`` on every patch token, plus an optional zero-initialised
  residual linear map) and the pooled image embedding;
* :meth:`MGCAModel.assignment` groups the patches (learned tokens or k-means);
* :meth:`MGCAModel.loss` computes the four contrastive levels of :mod:`.losses` for a batch of
  images with their captions and noun phrases.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from lmseg.backbones.clip import DenseCLIP
from lmseg.models.mgca import losses
from lmseg.models.mgca.config import MGCAConfig
from lmseg.models.mgca.grouping import GroupTokens, kmeans_assignment, region_embeddings


@dataclass(frozen=True)
class PhraseBatch:
    """The noun phrases of a batch, flattened.

    Attributes:
        texts: M phrase texts.
        owner: ``(M,)`` int64 image index of each phrase.
        text_id: ``(M,)`` int64, equal for equal texts.
    """

    texts: tuple[str, ...]
    owner: torch.Tensor
    text_id: torch.Tensor

    @classmethod
    def from_lists(cls, per_image: Sequence[Sequence[str]]) -> "PhraseBatch":
        """Flatten ``per_image[b]`` = the phrases of image ``b``'s caption."""
        texts = [p for phrases in per_image for p in phrases]
        owner = [b for b, phrases in enumerate(per_image) for _ in phrases]
        ids: dict[str, int] = {}
        text_id = [ids.setdefault(t, len(ids)) for t in texts]
        return cls(tuple(texts), torch.tensor(owner, dtype=torch.int64), torch.tensor(text_id, dtype=torch.int64))


class MGCAModel(nn.Module):
    """MGCA on a CLIP backbone.

    Args:
        config: architecture and losses.
        clip: the CLIP model (both towers); its weights are the starting point.
    """

    def __init__(self, config: MGCAConfig, clip: DenseCLIP) -> None:
        super().__init__()
        self.config = config
        self.clip = clip
        dim = clip.embed_dim
        self.dense_head = nn.Linear(dim, dim) if config.dense_head else None
        if self.dense_head is not None:
            nn.init.zeros_(self.dense_head.weight)
            nn.init.zeros_(self.dense_head.bias)
        self.groups = (GroupTokens(config.num_groups, dim, config.group_temperature)
                       if config.grouping == "tokens" else None)

    # ---- image side -------------------------------------------------------------------

    def dense(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, tuple[int, int]]:
        """Dense and pooled embeddings of ``(B, 3, H, W)`` images with values in [0, 1].

        Returns:
            ``(patches, pooled, grid)``: ``(B, h*w, D)`` L2-normalised patch embeddings
            (row-major), ``(B, D)`` L2-normalised image embeddings, and ``(h, w)``.
        """
        out = self.clip(self.clip.normalize(images))
        grid = tuple(out.dense.shape[-2:])
        patches = out.dense.flatten(2).transpose(1, 2)
        if self.dense_head is not None:
            patches = patches + self.dense_head(patches)
        return F.normalize(patches, dim=-1), F.normalize(out.pooled, dim=-1), grid  # type: ignore[return-value]

    def assignment(self, patches: torch.Tensor) -> torch.Tensor:
        """Soft assignment ``(B, N, G)`` of patches ``(B, N, D)`` to the model's groups."""
        if self.groups is not None:
            return self.groups(patches)
        cfg = self.config
        return kmeans_assignment(patches, cfg.num_groups, cfg.kmeans_iterations, cfg.group_temperature)

    # ---- text side --------------------------------------------------------------------

    def encode_text(self, texts: Sequence[str]) -> torch.Tensor:
        """``(N, D)`` L2-normalised text embeddings (no gradient when the text tower is frozen)."""
        if self.config.tune_text:
            return self.clip.encode_text(texts).float()
        with torch.no_grad():
            return self.clip.encode_text(texts).float()

    # ---- training objective -----------------------------------------------------------

    def forward(self, images: torch.Tensor, captions: Sequence[str], phrases: PhraseBatch) -> dict[str, torch.Tensor]:
        """The training loss (:meth:`loss`); ``forward`` so that DDP sees the call."""
        return self.loss(images, captions, phrases)

    def loss(self, images: torch.Tensor, captions: Sequence[str], phrases: PhraseBatch) -> dict[str, torch.Tensor]:
        """The multi-grained loss of one batch.

        Args:
            images: ``(B, 3, S, S)`` in [0, 1].
            captions: B captions.
            phrases: the noun phrases of the captions (an image may have none).

        Returns:
            ``{"loss": weighted sum, "loss_image", "loss_object", "loss_region", "loss_pixel",
            "pseudo_pixel_share"}`` (scalars). Levels that need phrases are 0 when the batch
            has none.
        """
        cfg = self.config.loss
        patches, pooled, _ = self.dense(images)
        patches, pooled = patches.float(), pooled.float()
        caption_emb = self.encode_text(captions)
        terms = {"loss_image": losses.image_caption_loss(pooled, caption_emb, cfg.image_temperature)}
        zero = patches.sum() * 0.0
        if phrases.texts:
            text = self.encode_text(phrases.texts)
            owner, text_id = phrases.owner.to(text.device), phrases.text_id.to(text.device)
            negatives = losses.negative_mask(text, owner, text_id, cfg.hard_negatives)
            terms["loss_object"] = losses.object_loss(
                patches, text, owner, negatives, attention_temperature=cfg.attention_temperature,
                temperature=cfg.object_temperature)
            regions = region_embeddings(patches, self.assignment(patches).float())
            terms["loss_region"] = losses.region_loss(regions, text, owner, negatives,
                                                      temperature=cfg.region_temperature)
            labels, keep = losses.pseudo_pixel_labels(
                patches, text, owner, selection=cfg.pixel_selection, threshold=cfg.pixel_threshold,
                top_fraction=cfg.pixel_top_fraction)
            terms["loss_pixel"] = losses.pixel_loss(patches, text, labels, keep, negatives,
                                                    temperature=cfg.pixel_temperature)
            share = keep.float().mean()
        else:  # the group tokens still take part (zero gradient), as DDP needs every parameter used
            zero = zero + self.assignment(patches).sum() * 0.0
            terms.update(loss_object=zero, loss_region=zero, loss_pixel=zero)
            share = zero.detach()
        total = (cfg.image_weight * terms["loss_image"] + cfg.object_weight * terms["loss_object"]
                 + cfg.region_weight * terms["loss_region"] + cfg.pixel_weight * terms["loss_pixel"])
        return {"loss": total, **terms, "pseudo_pixel_share": share.detach()}
