"""The MROVSeg network (a pure ``nn.Module``: tensors in, predictions out) and semantic inference.

Data flow for a batch of ``B`` images of ``H x W`` pixels (the working resolution, multiples of
CLIP's patch ``p``, at least one slice on each side) and ``N`` classes::

    global view (B, 3, S, S) + slices (B * n, 3, S, S)   (:mod:`.slices`; S = slice_size)
    one CLIP image tower, batched in chunks              -> tap maps (views, C, S/p, S/p)
    stitch slice maps per image (overlap averaged)       -> (B, C, H/p, W/p) per tap
    Multi-Res Adapter                                    -> pyramid + per-pixel embeddings
    masked-attention query decoder                       -> L + 1 predictions:
        class logits (B, Q, N + 1), mask logits (B, Q, H/4, W/4)

The CLIP image tower is frozen (and run without autograd) unless its attention is fine-tuned.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from lmseg.backbones.clip import DenseCLIP
from lmseg.inference.tiler import batch_ranges, window_grid
from lmseg.models.mrovseg.adapter import MultiResAdapter
from lmseg.models.mrovseg.backbone import ClipTaps
from lmseg.models.mrovseg.config import MROVSegConfig
from lmseg.models.mrovseg.decoder import Prediction, QueryDecoder
from lmseg.models.mrovseg.slices import global_view, slice_stride, stitch, take_slices


@dataclass
class MROVSegOutput:
    """What :meth:`MROVSegModel.forward` returns.

    Attributes:
        predictions: the decoder's L + 1 prediction sets; the last is the final one.
        clip_dense: ``(B, D, H/p, W/p)`` CLIP joint-space features (global and stitched local
            averaged) when asked for, else None.
    """

    predictions: list[Prediction]
    clip_dense: torch.Tensor | None = None


@dataclass
class ImageFeatures:
    """The text-independent part of the model for ``B`` images (:meth:`MROVSegModel.encode`).

    Attributes:
        levels: the pyramid levels the decoder reads, coarse to fine, ``(B, d, h_i, w_i)``.
        mask_features: ``(B, mask_dim, H/4, W/4)`` per-pixel embeddings.
        clip_dense: ``(B, D, H/p, W/p)`` CLIP joint-space features (global and stitched local
            averaged) when asked for, else None.
    """

    levels: list[torch.Tensor]
    mask_features: torch.Tensor
    clip_dense: torch.Tensor | None


@dataclass
class ViewFeatures:
    """Tap maps of the two views: ``globals_`` ``(B, C, S/p, S/p)`` per tap, ``locals_`` stitched
    ``(B, C, H/p, W/p)`` per tap (None with slicing off), and the joint-space maps if asked for."""

    globals_: list[torch.Tensor]
    locals_: list[torch.Tensor] | None
    global_dense: torch.Tensor | None = None
    local_dense: torch.Tensor | None = None


class MROVSegModel(nn.Module):
    """MROVSeg: one stock open_clip CLIP, the Multi-Res Adapter and the query decoder.

    Args:
        config: the architecture.
        clip: the CLIP model (built for ``config.clip_model``).
    """

    def __init__(self, config: MROVSegConfig, clip: DenseCLIP) -> None:
        super().__init__()
        self.config = config
        self.clip = clip
        self.backbone: nn.Module = ClipTaps(clip, config.taps)
        self.adapter = MultiResAdapter(clip.width, config.hidden_dim, config.mask_dim, clip.patch_size[0],
                                       config.level_strides, config.continuity_conv, config.continuity_kernel)
        self.decoder = QueryDecoder(
            config.hidden_dim, config.mask_dim, clip.embed_dim, num_queries=config.num_queries,
            num_layers=config.decoder_layers, num_levels=config.decoder_levels, heads=config.num_heads,
            ffn_dim=config.ffn_dim, threshold=config.mask_threshold, logit_scale_init=config.logit_scale_init)
        for p in self.clip.parameters():
            p.requires_grad_(False)
        if config.finetune_clip_attention:
            for p in self.clip_attention_parameters():
                p.requires_grad_(True)

    def clip_attention_parameters(self) -> list[nn.Parameter]:
        """The image tower's attention projections (in_proj and out_proj of every block)."""
        return [p for blk in self.clip.visual.transformer.resblocks for p in blk.attn.parameters()]

    def head_parameters(self) -> list[nn.Parameter]:
        """Everything trained from scratch: the adapter and the decoder."""
        return [*self.adapter.parameters(), *self.decoder.parameters()]

    @property
    def patch(self) -> int:
        return int(self.backbone.patch)

    @property
    def slice_stride(self) -> int:
        """Slice stride in pixels (see :func:`lmseg.models.mrovseg.slices.slice_stride`)."""
        return slice_stride(self.config.slice_size, self.config.slice_overlap, self.patch)

    def check_size(self, height: int, width: int) -> None:
        """Raise ValueError unless ``height x width`` is a valid working resolution."""
        s, p = self.config.slice_size, self.patch
        if height % p or width % p or height < s or width < s:
            raise ValueError(f"input size {height}x{width} must be multiples of the patch size {p} and at least "
                             f"the slice size {s} on each side; resize first")

    def _run(self, make: Callable[[int, int], torch.Tensor], total: int, dense: bool
             ) -> tuple[list[torch.Tensor], torch.Tensor | None]:
        """Run the backbone over ``total`` views made chunk by chunk; concatenated tap maps."""
        maps: list[list[torch.Tensor]] = []
        denses = []
        for chunk in batch_ranges(total, self.config.slice_batch):
            out, joint = self.backbone(make(chunk.start, chunk.stop), dense=dense)
            maps.append(out)
            denses.append(joint)
        cat = [torch.cat(per_tap) for per_tap in zip(*maps)]
        return cat, torch.cat(denses) if dense else None

    def encode_views(self, images: torch.Tensor, *, dense: bool = False) -> ViewFeatures:
        """Tap maps of the global view and of the stitched slices of ``(B, 3, H, W)`` images in [0, 1]."""
        b, _, h, w = images.shape
        self.check_size(h, w)
        cfg, p = self.config, self.patch
        x = self.clip.normalize(images.float())
        trainable = any(q.requires_grad for q in self.backbone.parameters())
        with torch.set_grad_enabled(torch.is_grad_enabled() and trainable):
            glob = global_view(x, cfg.slice_size)
            g_maps, g_dense = self._run(lambda i, j: glob[i:j], b, dense)
            if not cfg.use_slices:
                return ViewFeatures(g_maps, None, g_dense)
            boxes = window_grid(h, w, cfg.slice_size, self.slice_stride)
            l_maps, l_dense = self._run(lambda i, j: take_slices(x, boxes, i, j), b * len(boxes), dense)
        n, grid = len(boxes), (h // p, w // p)

        def stitched(t: torch.Tensor) -> torch.Tensor:
            return torch.cat([stitch(t[i * n:(i + 1) * n], boxes, p, grid) for i in range(b)])

        return ViewFeatures(g_maps, [stitched(t) for t in l_maps], g_dense,
                            stitched(l_dense) if l_dense is not None else None)

    def encode(self, images: torch.Tensor, *, dense: bool = False) -> ImageFeatures:
        """The text-independent part: views, adapter and (if asked for) CLIP's dense features.

        Args:
            images: ``(B, 3, H, W)`` float RGB in [0, 1] (not normalised), the working
                resolution: multiples of the patch size, at least ``slice_size`` per side.
            dense: also compute CLIP's joint-space dense features (zero-shot ensemble, class
                early rejection).
        """
        if images.dim() != 4 or images.shape[1] != 3:
            raise ValueError(f"images must be (B, 3, H, W), got {tuple(images.shape)}")
        feats = self.encode_views(images, dense=dense)
        levels, mask_features = self.adapter(feats.globals_, feats.locals_, tuple(images.shape[-2:]))
        clip_dense = None
        if dense:
            grid = (images.shape[-2] // self.patch, images.shape[-1] // self.patch)
            clip_dense = F.interpolate(feats.global_dense.float(), size=grid, mode="bilinear", align_corners=False)
            if feats.local_dense is not None:
                clip_dense = (clip_dense + feats.local_dense.float()) / 2.0
        return ImageFeatures(levels[::-1][: self.config.decoder_levels], mask_features, clip_dense)

    def decode(self, features: ImageFeatures, text: torch.Tensor) -> list[Prediction]:
        """The query decoder's L + 1 prediction sets for ``(N, P, D)`` class text embeddings."""
        if text.dim() != 3 or text.shape[-1] != self.clip.embed_dim:
            raise ValueError(f"text must be (N, P, {self.clip.embed_dim}), got {tuple(text.shape)}")
        return self.decoder(features.levels, features.mask_features, text)

    def forward(self, images: torch.Tensor, text: torch.Tensor, *, dense: bool = False) -> MROVSegOutput:
        """Query predictions: :meth:`decode` of :meth:`encode` (arguments there).

        Args:
            images: ``(B, 3, H, W)`` float RGB in [0, 1], the working resolution.
            text: ``(N, P, D)`` class text embeddings from the frozen CLIP text tower.
            dense: also return CLIP's joint-space dense features (for the zero-shot ensemble).
        """
        features = self.encode(images, dense=dense)
        return MROVSegOutput(self.decode(features, text), features.clip_dense)


def semantic_inference(class_logits: torch.Tensor, mask_logits: torch.Tensor,
                       classes: slice = slice(None)) -> torch.Tensor:
    """Mask2Former's semantic scores ``S[c] = sum_q softmax(class_logits_q)[c] * sigmoid(mask_q)``.

    The softmax runs over the N classes and "no object"; the "no object" column is then dropped.

    Args:
        class_logits: ``(B, Q, N + 1)``.
        mask_logits: ``(B, Q, h, w)``.
        classes: only these classes (a chunk of the N; the softmax still runs over all).

    Returns:
        ``(B, n, h, w)`` float32 scores in ``[0, Q]`` (n classes).
    """
    probs = class_logits.float().softmax(-1)[..., :-1][..., classes]
    return torch.einsum("bqc,bqhw->bchw", probs, mask_logits.float().sigmoid())


def mask_weighted_scores(class_logits: torch.Tensor, mask_logits: torch.Tensor,
                         sizes: tuple[tuple[int, int], ...] = (), *, classes: slice = slice(None),
                         chunk: int = 16) -> torch.Tensor:
    """:func:`semantic_inference` divided by ``sum_q sigmoid(mask_q)``: per pixel, the
    mask-weighted average of the queries' class probabilities, in [0, 1] (same argmax).

    Args:
        class_logits: ``(B, Q, N + 1)``.
        mask_logits: ``(B, Q, h, w)``.
        sizes: resize the mask logits (bilinear, ``align_corners=False``) through each of these
            sizes in turn before the sigmoid, as Mask2Former does (to the network's input size
            in its forward pass, then to the output size in ``sem_seg_postprocess``); ``()``
            computes the scores at the masks' own resolution.
        classes: only these classes (a chunk of the N; the softmax still runs over all).
        chunk: queries resized at a time (bilinear resizing is per channel, so this bounds
            memory and changes nothing else).

    Returns:
        ``(B, n, H, W)`` float32 (n classes), ``(H, W)`` the last of ``sizes`` (or ``(h, w)``).
    """
    scores = weights = None
    for start in range(0, mask_logits.shape[1], chunk):
        masks = mask_logits[:, start:start + chunk].float()
        for size in sizes:
            if tuple(masks.shape[-2:]) != tuple(size):
                masks = F.interpolate(masks, size=tuple(size), mode="bilinear", align_corners=False)
        part = semantic_inference(class_logits[:, start:start + chunk], masks, classes)
        total = masks.sigmoid().sum(1)
        scores = part if scores is None else scores + part
        weights = total if weights is None else weights + total
    return scores / weights.clamp_min(1e-6)[:, None]
