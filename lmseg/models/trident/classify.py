"""From aggregated tokens to class probabilities and labels (Trident steps 10-12)."""

from __future__ import annotations

from collections.abc import Iterator

import torch
import torch.nn.functional as F

from lmseg.inference.classes import aligned_chunks, chunked_softmax
from lmseg.text.ensemble import max_over_synonyms


def query_cosines(tokens: torch.Tensor, text: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
    """Cosine similarity of every token with every query.

    Args:
        tokens: ``(L, D)`` joint-space tokens (after ``ln_post`` and ``proj``), ``L = h * w``.
        text: ``(Q, D)`` L2-normalised query embeddings.
        grid: ``(h, w)``.

    Returns:
        ``(Q, h, w)`` float32 in [-1, 1].
    """
    t = F.normalize(tokens.float(), dim=-1)
    return (t @ text.float().T).T.reshape(text.shape[0], *grid)


def class_probabilities(
    tokens: torch.Tensor,
    grid: tuple[int, int],
    text: torch.Tensor,
    out_hw: tuple[int, int],
    *,
    logit_scale: float,
    query_to_class: torch.Tensor,
    budget: int,
) -> Iterator[tuple[slice, torch.Tensor]]:
    """Cosines, upsampled, scaled, softmax over all queries, max over each class's queries:
    chunk of classes by chunk of classes.

    Args:
        tokens: ``(L, D)`` joint-space tokens on the ``grid`` (``L = h * w``).
        grid: ``(h, w)``.
        text: ``(Q, D)`` L2-normalised query embeddings.
        out_hw: ``(H, W)`` the original image size (bilinear, align_corners False).
        logit_scale: 40 in Trident.
        query_to_class: ``(Q,)`` non-decreasing class of each query (classes ``0 .. N-1``).
        budget: at most this many elements in a chunk of upsampled query maps (a chunk never
            splits a class's queries, :func:`lmseg.inference.classes.aligned_chunks`).

    Yields:
        ``(classes, probabilities)``: a slice of the N classes and their ``(n, H, W)`` float32
        probabilities in [0, 1] (they sum to 1 over classes only when no class has synonyms).
    """
    chunks = aligned_chunks(query_to_class, out_hw[0] * out_hw[1], budget)

    def logits(chunk: slice) -> torch.Tensor:
        cos = query_cosines(tokens, text[chunk], grid)
        return F.interpolate(cos[None].float(), size=tuple(out_hw), mode="bilinear", align_corners=False)[0] * logit_scale

    for chunk, probs in chunked_softmax(logits, chunks):
        owners = query_to_class[chunk]
        first, last = int(owners[0]), int(owners[-1])
        yield slice(first, last + 1), max_over_synonyms(probs, owners - first, last - first + 1)


def with_background(labels: torch.Tensor, best: torch.Tensor, prob_thd: float, background_index: int) -> torch.Tensor:
    """``labels`` ``(H, W)`` where the max class probability ``best`` ``(H, W)`` is at least
    ``prob_thd``, ``background_index`` elsewhere (0 disables); ``labels`` is the argmax over
    classes, first index winning ties (as ``torch.argmax``)."""
    if prob_thd <= 0:
        return labels
    return torch.where(best < prob_thd, torch.full_like(labels, background_index), labels)
