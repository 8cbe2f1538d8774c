"""From aggregated tokens to class probabilities and labels (Trident steps 10-12)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

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
    cosines: torch.Tensor,
    out_hw: tuple[int, int],
    *,
    logit_scale: float,
    query_to_class: torch.Tensor,
    num_classes: int,
) -> torch.Tensor:
    """Upsample, scale, softmax over queries, max over each class's queries.

    Args:
        cosines: ``(Q, h, w)`` from :func:`query_cosines`.
        out_hw: ``(H, W)`` the original image size (bilinear, align_corners False).
        logit_scale: 40 in Trident.
        query_to_class: ``(Q,)`` class of each query.
        num_classes: N.

    Returns:
        ``(N, H, W)`` float32 probabilities in [0, 1] (they sum to 1 over classes only when no
        class has synonyms).
    """
    up = F.interpolate(cosines[None].float(), size=tuple(out_hw), mode="bilinear", align_corners=False)[0]
    probs = (up * logit_scale).softmax(dim=0)
    return max_over_synonyms(probs, query_to_class, num_classes)


def labels_with_background(probs: torch.Tensor, prob_thd: float, background_index: int = 0) -> torch.Tensor:
    """Argmax over classes; pixels whose max probability is below ``prob_thd`` become ``background_index``.

    Args:
        probs: ``(N, H, W)`` class probabilities.

    Returns:
        ``(H, W)`` int64 labels (first index wins ties, as ``torch.argmax``).
    """
    labels = probs.argmax(dim=0)
    if prob_thd > 0:
        best = probs.max(dim=0).values
        labels = torch.where(best < prob_thd, torch.full_like(labels, background_index), labels)
    return labels
