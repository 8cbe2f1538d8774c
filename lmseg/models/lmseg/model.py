"""The LMSeg network: CLIP + SAM fusion, cost volume, aggregation, decoder; and its loss.

:class:`LMSegModel` is a pure ``nn.Module`` (tensors in, logits out). Images, resizing,
windows and vocabularies are the predictor's business (:mod:`lmseg.models.lmseg.predictor`).

Data flow for a batch of ``B`` images of ``S x S`` pixels (``S = config.input_size``), ``N``
classes with ``P`` prompt embeddings each::

    CLIP image tower (open_clip, attention fine-tuned) -> F_clip (B, D, h, w), block outputs
    SAM image encoder (frozen, no grad)                 -> F_sam  (B, 256, gh, gw) valid region
    F = w F_clip + (1 - w) proj(F_sam)                  (B, D, h, w)
    cost = cos(F, text)                                 (B, P, N, h, w)
    embed (conv P -> C per class)                       (B, C, N, h, w)
    L x [window attention per class + linear attention across classes]
    decoder (x2 per stage, CLIP block guidance)         (B, N, h * 2^S', w * 2^S') logits
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from lmseg.backbones.clip import DenseCLIP
from lmseg.backbones.sam import SamEncoder
from lmseg.errors import LmsegError
from lmseg.models.lmseg.aggregation import AggregationLayer, LinearStats
from lmseg.models.lmseg.config import LMSegConfig
from lmseg.models.lmseg.decoder import UpsamplingDecoder
from lmseg.models.lmseg.fusion import SamCLIPFusion, cost_volume


@dataclass
class BackboneFeatures:
    """What the backbones give for ``B`` model inputs.

    Attributes:
        clip_dense: ``(B, D, h, w)`` dense CLIP features in the joint space.
        sam: ``(B, 256, gh, gw)`` SAM features of the valid region.
        guidance: CLIP block outputs ``(B, width, h, w)``, one per decoder stage.
    """

    clip_dense: torch.Tensor
    sam: torch.Tensor
    guidance: list[torch.Tensor]


@dataclass
class HeadInputs:
    """The text-independent part of the head for ``B`` model inputs (:meth:`LMSegHead.prepare`).

    Attributes:
        fused: ``(B, D, h, w)`` fused image features.
        appearance: ``(B, G_a, h, w)`` appearance guidance of the aggregation.
        guides: the decoder's projected guidance, one map per stage.
    """

    fused: torch.Tensor
    appearance: torch.Tensor
    guides: list[torch.Tensor]

    def view(self, index: int) -> HeadInputs:
        """The inputs of model input ``index`` alone (batch of one)."""
        return HeadInputs(self.fused[index:index + 1], self.appearance[index:index + 1],
                          [g[index:index + 1] for g in self.guides])


class LMSegHead(nn.Module):
    """Everything of LMSeg that is trained from scratch: fusion, cost embedding, aggregation, decoder.

    Args:
        config: the architecture.
        clip_dim: CLIP joint-space width D.
        clip_width: CLIP transformer width (channels of block outputs).
        sam_dim: SAM feature channels (256).
    """

    def __init__(self, config: LMSegConfig, *, clip_dim: int, clip_width: int, sam_dim: int) -> None:
        super().__init__()
        self.config = config
        c = config.hidden_dim
        self.fusion = SamCLIPFusion(sam_dim, clip_dim, init=config.fusion_init)
        k = config.cost_embed_kernel
        self.cost_embed = nn.Conv2d(config.prompt_channels, c, kernel_size=k, padding=k // 2)
        self.appearance = nn.Conv2d(clip_dim, config.appearance_guidance_dim, kernel_size=3, padding=1)
        self.text_guidance = nn.Linear(clip_dim, config.text_guidance_dim)
        self.layers = nn.ModuleList(
            AggregationLayer(c, config.appearance_guidance_dim, config.text_guidance_dim, config.num_heads,
                             config.class_heads, config.window_size)
            for _ in range(config.num_layers)
        )
        self.decoder = UpsamplingDecoder(c, clip_width, config.decoder_dims, config.decoder_guidance_dims)

    def pool_prompts(self, text: torch.Tensor) -> torch.Tensor:
        """Check and (in ``mean`` mode) average the prompt channels: ``(.., N, P, D) -> (.., N, P', D)``."""
        p = text.shape[-2]
        if self.config.prompt_pooling == "mean":
            return F.normalize(F.normalize(text, dim=-1).mean(dim=-2, keepdim=True), dim=-1)
        if p != self.config.num_prompts:
            raise LmsegError(
                f"the model expects {self.config.num_prompts} prompt channels per class, got {p}; build the text "
                "embeddings with the same prompt settings the model was trained with"
            )
        return text

    def prepare(self, clip_dense: torch.Tensor, sam_features: torch.Tensor, guidance: list[torch.Tensor]
                ) -> HeadInputs:
        """The text-independent part of the head, computed once per model input.

        Args:
            clip_dense: ``(B, D, h, w)`` dense CLIP features.
            sam_features: ``(B, 256, gh, gw)`` SAM features (valid region).
            guidance: CLIP block outputs ``(B, width, h, w)``, one per decoder stage.
        """
        fused = self.fusion(clip_dense, sam_features)
        return HeadInputs(fused, self.appearance(fused), self.decoder.project(guidance))

    def elements_per_class(self, grid: tuple[int, int]) -> int:
        """Elements of the widest per-class tensor for one input with token grid ``grid`` (an
        aggregation block's MLP, or a decoder stage's input): the unit of the class chunks."""
        return max(grid[0] * grid[1] * self.config.hidden_dim * 4,
                   self.decoder.elements_per_class(grid, self.config.hidden_dim))

    def _embed(self, inputs: HeadInputs, text: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Embedded cost volume ``(B, C, n, h, w)`` and text guidance ``(n, G)`` of pooled prompts ``(n, P', D)``."""
        cost = cost_volume(inputs.fused, text)  # (B, P, n, h, w)
        b, p, n, h, w = cost.shape
        x = self.cost_embed(cost.transpose(1, 2).reshape(b * n, p, h, w))
        x = x.view(b, n, -1, h, w).transpose(1, 2)
        t = self.text_guidance(F.normalize(text.mean(dim=-2), dim=-1).to(self.text_guidance.weight.dtype))
        return x, t

    def class_statistics(self, inputs: HeadInputs, text: torch.Tensor, chunks: list[slice]) -> list[LinearStats]:
        """The class-attention sums of every layer over the whole vocabulary, chunk by chunk.

        Layer ``l``'s sums need layer ``l - 1``'s output of every class, so each chunk's layers
        below ``l`` are recomputed (about 1.8x the work of one pass for 2 layers) instead of
        keeping the whole ``(B, C, N, h, w)`` volume: memory stays bounded by the chunk.

        Args:
            inputs: from :meth:`prepare`.
            text: ``(N, P, D)`` prompt embeddings of the whole vocabulary.
            chunks: consecutive slices of the N classes.
        """
        text = self.pool_prompts(text)
        stats: list[LinearStats] = []
        for depth, layer in enumerate(self.layers):
            total = None
            for chunk in chunks:
                x, t = self._embed(inputs, text[chunk])
                for below, known in zip(self.layers[:depth], stats):
                    x = below(x, inputs.appearance, t, known)
                part = layer.statistics(x, inputs.appearance, t)
                total = part if total is None else total + part
            stats.append(total)
        return stats

    def decode(self, inputs: HeadInputs, text: torch.Tensor, stats: list[LinearStats] | None = None) -> torch.Tensor:
        """Logits of some classes.

        Args:
            inputs: from :meth:`prepare`.
            text: ``(n, P, D)`` or ``(B, n, P, D)`` prompt embeddings of the classes to decode.
            stats: :meth:`class_statistics` of the whole vocabulary when ``text`` is a chunk of
                it; None: ``text`` is the whole vocabulary.

        Returns:
            ``(B, n, h * 2^S', w * 2^S')`` logits (S' decoder stages).
        """
        x, t = self._embed(inputs, self.pool_prompts(text))
        for depth, layer in enumerate(self.layers):
            x = layer(x, inputs.appearance, t, None if stats is None else stats[depth])
        return self.decoder(x, inputs.guides)

    def forward(self, clip_dense: torch.Tensor, sam_features: torch.Tensor, guidance: list[torch.Tensor],
                text: torch.Tensor) -> torch.Tensor:
        """Logits from backbone features: :meth:`decode` of :meth:`prepare` (arguments there);
        ``text`` is ``(N, P, D)`` or ``(B, N, P, D)``. Returns ``(B, N, h * 2^S', w * 2^S')``."""
        return self.decode(self.prepare(clip_dense, sam_features, guidance), text)


class LMSegModel(nn.Module):
    """LMSeg: stock CLIP (open_clip) and SAM (segment-anything) backbones plus :class:`LMSegHead`.

    Only the head and (if ``config.finetune_clip_attention``) the attention projections of the
    CLIP image tower require gradients; SAM and the rest of CLIP are frozen, and SAM always
    runs in eval mode without autograd.

    Args:
        config: the architecture.
        clip: the CLIP backbone (built for ``config.clip_model``).
        sam: the SAM-side image encoder: a :class:`~lmseg.backbones.sam.SamEncoder`, a
            :class:`~lmseg.backbones.sam2.Sam2Encoder` or a
            :class:`~lmseg.backbones.sam3.Sam3ImageEncoder` (called on ``(B, 3, H, W)`` RGB in
            [0, 255]; ``out_channels`` channels of features, a valid region).
    """

    def __init__(self, config: LMSegConfig, clip: DenseCLIP, sam: SamEncoder | nn.Module) -> None:
        super().__init__()
        self.config = config
        self.clip = clip
        self.sam = sam
        self.head = LMSegHead(config, clip_dim=clip.embed_dim, clip_width=clip.width, sam_dim=int(sam.out_channels))
        for p in self.clip.parameters():
            p.requires_grad_(False)
        for p in self.sam.parameters():
            p.requires_grad_(False)
        if config.finetune_clip_attention:
            for p in self.clip_attention_parameters():
                p.requires_grad_(True)
        self.sam.eval()

    def clip_attention_parameters(self) -> list[nn.Parameter]:
        """The image tower's attention projections (in_proj and out_proj of every block)."""
        return [p for blk in self.clip.visual.transformer.resblocks for p in blk.attn.parameters()]

    def train(self, mode: bool = True) -> LMSegModel:
        super().train(mode)
        self.sam.eval()  # frozen: no train-mode behaviour, ever
        return self

    @property
    def fusion_weight(self) -> float:
        """The current w of F = w F_clip + (1 - w) proj(F_sam)."""
        return float(self.head.fusion.w.detach())

    def output_size(self, height: int, width: int) -> tuple[int, int]:
        """Size of the logits for an input of ``height x width`` pixels."""
        h, w = self.clip.grid_for(height, width)
        scale = 2 ** len(self.config.decoder_dims)
        return h * scale, w * scale

    def encode(self, images: torch.Tensor) -> BackboneFeatures:
        """The backbones' features of ``(B, 3, H, W)`` images in [0, 1] (see :meth:`forward`)."""
        if images.dim() != 4 or images.shape[1] != 3:
            raise ValueError(f"images must be (B, 3, H, W), got {tuple(images.shape)}")
        layers = list(self.config.decoder_layers)
        out = self.clip(self.clip.normalize(images), layers=layers)
        with torch.no_grad():
            sam = self.sam(images.float() * 255.0)
            sam_features = sam.valid_features("ceil")
        return BackboneFeatures(out.dense, sam_features, [out.intermediates[i] for i in layers])

    def forward(self, images: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        """Per-class logits.

        Args:
            images: ``(B, 3, H, W)`` float RGB in [0, 1] (not normalised; CLIP and SAM each
                normalise their own way), ``H`` and ``W`` multiples of CLIP's patch size
                (``config.input_size`` in training and inference).
            text: ``(N, P, D)`` (or ``(B, N, P, D)``) prompt embeddings from the frozen CLIP
                text tower (:mod:`lmseg.text.prompts`), any scale.

        Returns:
            ``(B, N, H', W')`` logits (apply a sigmoid for per-class probabilities), ``H' =
            H / patch * 2^stages`` (96 for a 384 input with ViT-B/16).
        """
        if text.dim() not in (3, 4) or text.shape[-1] != self.clip.embed_dim:
            raise ValueError(f"text must be (N, P, {self.clip.embed_dim}) or (B, N, P, D), got {tuple(text.shape)}")
        feats = self.encode(images)
        return self.head(feats.clip_dense, feats.sam, feats.guidance, text)


def segmentation_loss(logits: torch.Tensor, labels: torch.Tensor, *, ignore_index: int = 255) -> torch.Tensor:
    """Per-pixel binary cross-entropy over classes (CAT-Seg's loss).

    Args:
        logits: ``(B, N, h, w)``; upsampled bilinearly to the labels' size.
        labels: ``(B, H, W)`` int64 class indices in ``[0, N)`` or ``ignore_index``.

    Returns:
        The mean BCE over valid pixels and all classes (a 0-d float32 tensor). With no valid
        pixel at all it is 0 (and still connected to the graph).
    """
    if logits.shape[-2:] != labels.shape[-2:]:
        logits = F.interpolate(logits, size=labels.shape[-2:], mode="bilinear", align_corners=False)
    logits = logits.float()
    n = logits.shape[1]
    valid = labels != ignore_index
    if bool(((labels < 0) | (labels >= n))[valid].any()):
        raise ValueError(f"labels hold values outside [0, {n}) other than the ignore index {ignore_index}")
    target = F.one_hot(labels.clamp(0, n - 1) * valid, n).permute(0, 3, 1, 2).float()
    per = F.binary_cross_entropy_with_logits(logits, target, reduction="none")  # (B, N, H, W)
    mask = valid.unsqueeze(1).float()
    count = mask.sum() * n
    return (per * mask).sum() / count.clamp_min(1.0)
