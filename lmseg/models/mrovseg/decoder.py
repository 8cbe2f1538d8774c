"""Multi-grained masked attention decoder (Mask2Former's transformer decoder, open-vocabulary head).

``Q`` learnable queries (content ``query_feat`` and positional ``query_embed``) go through ``L``
layers; layer ``i`` reads pyramid level ``i mod levels`` (coarse to fine) and does::

    masked cross-attention  q = norm(q + MHA(q + pos_q, mem + pos_mem, mem, mask))
    self-attention          q = norm(q + MHA(q + pos_q, q + pos_q, q))
    feed-forward            q = norm(q + W2 relu(W1 q))

(post-norm, dropout 0, as Mask2Former's defaults). ``mask`` lets query ``j`` attend only to
positions where the sigmoid of its previous mask prediction, resized to the level, is at least
``mask_threshold``; a query whose mask is empty there attends everywhere.

Before the first layer and after each one, every query predicts (:class:`QueryHead`):

* a mask: ``MLP(norm(q)) . per-pixel embeddings`` (logits at the finest stride);
* class logits: ``scale * [cos(e, t_1), ..., cos(e, t_N), cos(e, v)]`` with ``e = W norm(q)``
  in CLIP's joint space, ``t_c`` the CLIP text embeddings of the vocabulary, ``v`` a learned
  "no object" embedding and ``scale = exp(logit_scale)`` learned (FC-CLIP's head).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class Prediction:
    """One set of query predictions.

    Attributes:
        class_logits: ``(B, Q, N + 1)``; the last column is "no object".
        mask_logits: ``(B, Q, h, w)`` at the finest pyramid stride.
    """

    class_logits: torch.Tensor
    mask_logits: torch.Tensor


def sine_position_encoding(height: int, width: int, dim: int, *, device: torch.device | None = None,
                           temperature: float = 10000.0) -> torch.Tensor:
    """``(height * width, dim)`` DETR sine encoding (normalised coordinates times 2 pi), row-major.

    The first ``dim/2`` channels encode y, the rest x, each as interleaved sin/cos pairs.
    """
    half = dim // 2
    y = (torch.arange(height, device=device, dtype=torch.float32) + 1) / (height + 1e-6) * 2 * math.pi
    x = (torch.arange(width, device=device, dtype=torch.float32) + 1) / (width + 1e-6) * 2 * math.pi
    freq = temperature ** (2 * (torch.arange(half, device=device) // 2) / half)
    py, px = y[:, None] / freq, x[:, None] / freq  # (h, half), (w, half)
    py = torch.stack([py[:, 0::2].sin(), py[:, 1::2].cos()], dim=2).flatten(1)
    px = torch.stack([px[:, 0::2].sin(), px[:, 1::2].cos()], dim=2).flatten(1)
    pos = torch.cat([py[:, None, :].expand(height, width, half), px[None, :, :].expand(height, width, half)], dim=2)
    return pos.reshape(height * width, 2 * half)


def attention_mask(mask_logits: torch.Tensor, size: tuple[int, int], heads: int, threshold: float) -> torch.Tensor:
    """Where each query may NOT attend, in ``nn.MultiheadAttention``'s boolean format.

    Args:
        mask_logits: ``(B, Q, h, w)`` the previous mask predictions.
        size: the attended level's grid.
        heads: attention heads (the mask is repeated per head).
        threshold: attend where ``sigmoid(resized logits) >= threshold``.

    Returns:
        ``(B * heads, Q, size[0] * size[1])`` bool, True = blocked; a query blocked everywhere
        is unblocked everywhere (the empty-mask rule).
    """
    resized = F.interpolate(mask_logits.float(), size=size, mode="bilinear", align_corners=False)
    blocked = resized.sigmoid().flatten(2) < threshold
    blocked = blocked & ~blocked.all(dim=-1, keepdim=True)
    return blocked.repeat_interleave(heads, dim=0).detach()


class DecoderLayer(nn.Module):
    """Masked cross-attention, self-attention, feed-forward (post-norm)."""

    def __init__(self, dim: int, heads: int, ffn_dim: int) -> None:
        super().__init__()
        self.cross = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.self_attn = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.ffn = nn.Sequential(nn.Linear(dim, ffn_dim), nn.ReLU(), nn.Linear(ffn_dim, dim))
        self.norms = nn.ModuleList(nn.LayerNorm(dim) for _ in range(3))

    def forward(self, q: torch.Tensor, query_pos: torch.Tensor, memory: torch.Tensor, memory_pos: torch.Tensor,
                blocked: torch.Tensor) -> torch.Tensor:
        """``q`` ``(B, Q, d)``, ``memory`` ``(B, M, d)``, positions alike, ``blocked`` ``(B*heads, Q, M)``."""
        attended = self.cross(q + query_pos, memory + memory_pos, memory, attn_mask=blocked, need_weights=False)[0]
        q = self.norms[0](q + attended)
        qp = q + query_pos
        q = self.norms[1](q + self.self_attn(qp, qp, q, need_weights=False)[0])
        return self.norms[2](q + self.ffn(q))


class QueryHead(nn.Module):
    """Mask and open-vocabulary class predictions of the queries (formulas in the module docstring)."""

    def __init__(self, dim: int, mask_dim: int, embed_dim: int, logit_scale_init: float) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.mask_mlp = nn.Sequential(nn.Linear(dim, dim), nn.ReLU(), nn.Linear(dim, dim), nn.ReLU(),
                                      nn.Linear(dim, mask_dim))
        self.class_proj = nn.Linear(dim, embed_dim)
        self.void = nn.Parameter(torch.randn(embed_dim) * embed_dim ** -0.5)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(logit_scale_init)))

    def class_logits(self, embeddings: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        """``(B, Q, D)`` query embeddings, ``(N, P, D)`` text -> ``(B, Q, N + 1)`` logits.

        With P > 1 the cosine is taken with each prompt channel and averaged over channels.
        """
        e = F.normalize(embeddings.float(), dim=-1)
        t = F.normalize(text.float(), dim=-1)
        cos = torch.einsum("bqd,npd->bqnp", e, t).mean(dim=-1)
        void = e @ F.normalize(self.void.float(), dim=0)
        scale = self.logit_scale.float().exp().clamp(max=100.0)
        return scale * torch.cat([cos, void[..., None]], dim=-1)

    def forward(self, q: torch.Tensor, mask_features: torch.Tensor, text: torch.Tensor) -> Prediction:
        x = self.norm(q)
        masks = torch.einsum("bqc,bchw->bqhw", self.mask_mlp(x), mask_features.to(x.dtype))
        return Prediction(self.class_logits(self.class_proj(x), text), masks)


class QueryDecoder(nn.Module):
    """``L`` decoder layers over the pyramid levels (coarse to fine, cycling).

    Args:
        dim: query and level width d.
        mask_dim: per-pixel embedding width.
        embed_dim: CLIP joint-space width D (text embeddings).
        num_queries / num_layers / num_levels / heads / ffn_dim: the decoder's sizes.
        threshold: the attention-mask threshold.
        logit_scale_init: initial class-score temperature.
    """

    def __init__(self, dim: int, mask_dim: int, embed_dim: int, *, num_queries: int, num_layers: int,
                 num_levels: int, heads: int, ffn_dim: int, threshold: float, logit_scale_init: float) -> None:
        super().__init__()
        self.heads = heads
        self.threshold = threshold
        self.query_feat = nn.Embedding(num_queries, dim)
        self.query_embed = nn.Embedding(num_queries, dim)
        self.level_embed = nn.Embedding(num_levels, dim)
        self.layers = nn.ModuleList(DecoderLayer(dim, heads, ffn_dim) for _ in range(num_layers))
        self.head = QueryHead(dim, mask_dim, embed_dim, logit_scale_init)

    def forward(self, levels: list[torch.Tensor], mask_features: torch.Tensor, text: torch.Tensor) -> list[Prediction]:
        """Predictions before the first layer and after each layer (``L + 1``, the last is final).

        Args:
            levels: ``num_levels`` maps ``(B, d, h_i, w_i)``, coarse to fine.
            mask_features: ``(B, mask_dim, h, w)`` per-pixel embeddings.
            text: ``(N, P, D)`` class text embeddings.
        """
        b = mask_features.shape[0]
        memories, positions, sizes = [], [], []
        for i, level in enumerate(levels):
            h, w = level.shape[-2:]
            memories.append(level.flatten(2).transpose(1, 2) + self.level_embed.weight[i])
            positions.append(sine_position_encoding(h, w, level.shape[1], device=level.device).to(level.dtype)[None])
            sizes.append((h, w))
        q = self.query_feat.weight[None].expand(b, -1, -1)
        query_pos = self.query_embed.weight[None].expand(b, -1, -1)
        predictions = [self.head(q, mask_features, text)]
        for i, layer in enumerate(self.layers):
            k = i % len(levels)
            blocked = attention_mask(predictions[-1].mask_logits, sizes[k], self.heads, self.threshold)
            q = layer(q, query_pos, memories[k], positions[k], blocked)
            predictions.append(self.head(q, mask_features, text))
        return predictions
