"""Cost aggregation (after CAT-Seg): spatial window attention per class, linear attention across classes.

The embedded cost volume is ``(B, C, N, h, w)``: ``C`` hidden channels, ``N`` classes, an
``(h, w)`` token grid. One :class:`AggregationLayer` is

1. a spatial step: Swin-style attention inside ``window x window`` token windows, run on every
   class slice independently, twice (windows aligned, then shifted by half a window); the
   queries and keys see the appearance guidance (projected image features) concatenated to the
   cost features;
2. a class step: attention across the N classes at every pixel, with the text guidance
   (projected class embeddings) concatenated to queries and keys. It is *linear* attention
   (``elu(x) + 1`` feature maps): it forms ``K^T V`` (``d x d`` per head) and never an
   ``N x N`` matrix, so time and memory grow linearly with N. Its sums over classes
   (:class:`LinearStats`) add up over chunks of classes, so a chunk can attend to the whole
   vocabulary without the whole volume in memory (:meth:`AggregationLayer.statistics`).

Shifted windows are made by padding the grid (``shift`` tokens at the top/left, up to a multiple
of the window at the bottom/right) and masking the padded keys, instead of rolling the map:
the same partition of the real tokens as Swin's cyclic shift, without tokens from opposite
borders sharing a window.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


class Mlp(nn.Module):
    def __init__(self, dim: int, ratio: float = 4.0) -> None:
        super().__init__()
        hidden = int(dim * ratio)
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x)))


class GuidedBlock(nn.Module):
    """A pre-norm attention block whose queries and keys also see a guidance signal.

    ``x + out(attend(q, k, v))`` then ``+ mlp(norm2(x))``, where ``q`` and ``k`` are computed
    from ``[norm(x), guidance]`` and ``v`` from ``norm(x)``. Subclasses define
    :meth:`attend`, i.e. which tokens attend to which.

    Args:
        dim: channels of the features.
        guidance_dim: channels of the guidance (0: none).
        heads: attention heads.
    """

    def __init__(self, dim: int, guidance_dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.norm = nn.LayerNorm(dim)
        self.q = nn.Linear(dim + guidance_dim, dim)
        self.k = nn.Linear(dim + guidance_dim, dim)
        self.v = nn.Linear(dim, dim)
        self.out = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim)

    def forward(self, x: torch.Tensor, guidance: torch.Tensor | None, **mix_options: object) -> torch.Tensor:
        """``x``: ``(M, *tokens, C)``; ``guidance``: ``(M or 1, *tokens, G)`` or None. Returns ``x``'s shape."""
        y = self.norm(x)
        x = x + self.out(self.mix(y, self.qk_input(y, guidance), **mix_options))
        return x + self.mlp(self.norm2(x))

    def qk_input(self, y: torch.Tensor, guidance: torch.Tensor | None) -> torch.Tensor:
        """What queries and keys are computed from: ``[norm(x), guidance]``."""
        return torch.cat([y, guidance.to(y.dtype).expand(*y.shape[:-1], -1)], dim=-1) if guidance is not None else y

    def mix(self, y: torch.Tensor, qk_in: torch.Tensor) -> torch.Tensor:
        """The attention output of the normalised tokens ``y`` (before ``out``)."""
        return self.attend(self.q(qk_in), self.k(qk_in), self.v(y))

    def attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """Multi-head attention of ``q`` over ``k``/``v``, all ``(M, *tokens, C)``; returns ``(M, *tokens, C)``."""
        raise NotImplementedError


class WindowAttention(GuidedBlock):
    """Multi-head self-attention within square windows of a token map, guidance in queries/keys.

    Args:
        dim, guidance_dim, heads: as :class:`GuidedBlock`.
        window: window side in tokens.
        shift: offset of the window grid (0 or ``window // 2``).

    Tokens are ``(h, w)`` maps: ``x`` is ``(M, h, w, C)`` (M = B * N class slices) and the
    guidance ``(M, h, w, G)``.
    """

    def __init__(self, dim: int, guidance_dim: int, heads: int, window: int, shift: int) -> None:
        super().__init__(dim, guidance_dim, heads)
        self.window, self.shift = window, shift

    def attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        m, h, w, c = q.shape
        win, s = self.window, self.shift
        pad_b = (-(h + s)) % win
        pad_r = (-(w + s)) % win
        valid = torch.ones(1, h, w, 1, dtype=torch.bool, device=q.device)
        if s or pad_b or pad_r:
            q, k, v = (F.pad(t, (0, 0, s, pad_r, s, pad_b)) for t in (q, k, v))
            valid = F.pad(valid, (0, 0, s, pad_r, s, pad_b), value=False)
        hp, wp = h + s + pad_b, w + s + pad_r
        nh, nw = hp // win, wp // win

        def windows(t: torch.Tensor) -> torch.Tensor:  # (M', hp, wp, C') -> (M' * nh * nw, heads, win*win, C'/heads)
            mm, _, _, cc = t.shape
            t = t.view(mm, nh, win, nw, win, cc).permute(0, 1, 3, 2, 4, 5).reshape(mm * nh * nw, win * win, cc)
            return t.view(t.shape[0], win * win, self.heads, cc // self.heads).transpose(1, 2)

        qw, kw, vw = windows(q), windows(k), windows(v)
        mask = None
        if s or pad_b or pad_r:
            key_valid = valid.view(1, nh, win, nw, win).permute(0, 1, 3, 2, 4).reshape(nh * nw, 1, 1, win * win)
            mask = key_valid.repeat(m, 1, 1, 1)  # True = attend
        o = F.scaled_dot_product_attention(qw, kw, vw, attn_mask=mask)  # (M*nh*nw, heads, win*win, C/heads)
        o = o.transpose(1, 2).reshape(m, nh, nw, win, win, c).permute(0, 1, 3, 2, 4, 5).reshape(m, hp, wp, c)
        return o[:, s:s + h, s:s + w]


@dataclass(frozen=True)
class LinearStats:
    """The sums over tokens that non-causal linear attention needs: additive over chunks of tokens.

    Attributes:
        kv: ``(M, heads, d, e)`` float32, ``sum_j phi(k_j)^T v_j``.
        k_sum: ``(M, heads, d)`` float32, ``sum_j phi(k_j)``.
        dtype: the dtype of the values (the output's).
    """

    kv: torch.Tensor
    k_sum: torch.Tensor
    dtype: torch.dtype

    def __add__(self, other: LinearStats) -> LinearStats:
        return LinearStats(self.kv + other.kv, self.k_sum + other.k_sum, self.dtype)


def _feature_map(x: torch.Tensor) -> torch.Tensor:
    return F.elu(x.float()) + 1.0


def linear_stats(k: torch.Tensor, v: torch.Tensor) -> LinearStats:
    """The :class:`LinearStats` of keys ``(M, heads, L, d)`` and values ``(M, heads, L, e)``
    (float32 under autocast too: autocast would run the einsum in its low dtype)."""
    with torch.autocast(k.device.type, enabled=False):
        kf = _feature_map(k)
        return LinearStats(torch.einsum("mhld,mhle->mhde", kf, v.float()), kf.sum(dim=2), v.dtype)


def linear_attend(q: torch.Tensor, stats: LinearStats, eps: float = 1e-6) -> torch.Tensor:
    """``out_i = phi(q_i) KV / (phi(q_i) . sum_j phi(k_j))`` for queries ``(M, heads, L, d)``;
    returns ``(M, heads, L, e)`` in the values' dtype (computed in float32, under autocast too)."""
    with torch.autocast(q.device.type, enabled=False):
        qf = _feature_map(q)
        norm = torch.einsum("mhld,mhd->mhl", qf, stats.k_sum).clamp_min(eps)
        return (torch.einsum("mhld,mhde->mhle", qf, stats.kv) / norm.unsqueeze(-1)).to(stats.dtype)


def linear_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Non-causal linear attention with the ``elu + 1`` feature map (Katharopoulos et al., 2020).

    ``out_i = phi(q_i) (sum_j phi(k_j)^T v_j) / (phi(q_i) . sum_j phi(k_j))``: no ``L x L``
    matrix is formed; cost ``O(L d^2)``. The sums are :class:`LinearStats`, so the keys and
    values may also come in chunks (:func:`linear_stats` per chunk, added, then :func:`linear_attend`).

    Args:
        q, k: ``(M, heads, L, d)``; v: ``(M, heads, L, e)``.

    Returns:
        ``(M, heads, L, e)``.
    """
    return linear_attend(q, linear_stats(k, v), eps)


class ClassAttention(GuidedBlock):
    """Linear attention across the N classes at every pixel, text guidance in queries/keys.

    Tokens are the classes: ``x`` is ``(M, N, C)`` (M = B * h * w pixels) and the guidance
    ``(M or 1, N, G)``. With ``stats`` (the :class:`LinearStats` of every class of the
    vocabulary, :meth:`statistics` summed over chunks of classes) a chunk of classes attends to
    the whole vocabulary.
    """

    def _heads(self, t: torch.Tensor) -> torch.Tensor:
        m, n, c = t.shape
        return t.view(m, n, self.heads, c // self.heads).transpose(1, 2)

    def statistics(self, x: torch.Tensor, guidance: torch.Tensor | None) -> LinearStats:
        """The key/value sums of the classes in ``x`` ``(M, n, C)``."""
        y = self.norm(x)
        return linear_stats(self._heads(self.k(self.qk_input(y, guidance))), self._heads(self.v(y)))

    def mix(self, y: torch.Tensor, qk_in: torch.Tensor, stats: LinearStats | None = None) -> torch.Tensor:
        m, n, c = y.shape
        if stats is None:
            stats = linear_stats(self._heads(self.k(qk_in)), self._heads(self.v(y)))
        return linear_attend(self._heads(self.q(qk_in)), stats).transpose(1, 2).reshape(m, n, c)


class AggregationLayer(nn.Module):
    """One spatial step (aligned + shifted windows) and one class step.

    Args:
        dim: hidden width C.
        appearance_dim: appearance guidance width (0: none).
        text_dim: text guidance width (0: none).
        heads: spatial heads; class_heads: class heads; window: window side.
    """

    def __init__(self, dim: int, appearance_dim: int, text_dim: int, heads: int, class_heads: int, window: int) -> None:
        super().__init__()
        self.spatial = nn.ModuleList([
            WindowAttention(dim, appearance_dim, heads, window, 0),
            WindowAttention(dim, appearance_dim, heads, window, window // 2),
        ])
        self.classes = ClassAttention(dim, text_dim, class_heads)

    def forward(self, x: torch.Tensor, appearance: torch.Tensor | None, text: torch.Tensor | None,
                stats: LinearStats | None = None) -> torch.Tensor:
        """Refine the embedded cost volume.

        Args:
            x: ``(B, C, N, h, w)``.
            appearance: ``(B, G_a, h, w)`` or None.
            text: ``(N, G_t)`` or ``(B, N, G_t)`` or None.
            stats: the class step's key/value sums over the whole vocabulary when ``x`` holds
                only a chunk of it (:meth:`statistics`); None: the N classes of ``x`` are all.

        Returns:
            ``(B, C, N, h, w)``.
        """
        b, c, n, h, w = x.shape
        y, t = self._spatial(x, appearance, text)
        y = self.classes(y, t, stats=stats)
        return y.view(b, h, w, n, c).permute(0, 4, 3, 1, 2)

    def statistics(self, x: torch.Tensor, appearance: torch.Tensor | None, text: torch.Tensor | None) -> LinearStats:
        """The class step's key/value sums of the classes of ``x`` (arguments as :meth:`forward`)."""
        return self.classes.statistics(*self._spatial(x, appearance, text))

    def _spatial(self, x: torch.Tensor, appearance: torch.Tensor | None, text: torch.Tensor | None
                 ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The spatial step: ``(B * h * w, N, C)`` tokens of the class step and their text guidance."""
        b, c, n, h, w = x.shape
        y = x.permute(0, 2, 3, 4, 1).reshape(b * n, h, w, c)
        g = None
        if appearance is not None:
            g = appearance.permute(0, 2, 3, 1).unsqueeze(1).expand(b, n, h, w, -1).reshape(b * n, h, w, -1)
        for block in self.spatial:
            y = block(y, g)
        y = y.view(b, n, h, w, c).permute(0, 2, 3, 1, 4).reshape(b * h * w, n, c)
        t = None
        if text is not None:
            t = text.unsqueeze(0) if text.dim() == 2 else text
            t = t.unsqueeze(1).expand(-1, h * w, -1, -1).reshape(-1, n, t.shape[-1]) if t.shape[0] == b else t
        return y, t
