"""MGCA's contrastive losses at four granularities, and the hard-negative sampler.

Notation (one batch): ``B`` images, ``M`` noun phrases in all, phrase ``m`` belongs to the
caption of image ``owner[m]``; ``D`` the joint-space width. Every embedding given to these
functions is L2-normalised. Phrases with equal text get the same ``text_id``.

* image level: caption-image InfoNCE in both directions (:func:`image_caption_loss`);
* object level: each phrase pools the patch embeddings of its own image with itself as the
  attention query (:func:`phrase_grounded_embeddings`); that visual embedding must pick its
  phrase among the phrase's hard negatives (:func:`object_loss`);
* region level: each region (group) of an image is matched to its most similar phrase of the
  image's own caption (a pseudo correspondence) and must pick it among that phrase's hard
  negatives (:func:`region_loss`);
* pixel level: a patch whose best own phrase is confident enough (:func:`pseudo_pixel_labels`)
  must pick that phrase among its hard negatives (:func:`pixel_loss`).

Negatives come from :func:`negative_mask`: the phrases of *other* captions (never one with the
same text), restricted to the K most similar to the positive phrase when K > 0. Every loss is
:func:`masked_infonce` over the positive and the allowed negatives.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def image_caption_loss(images: torch.Tensor, captions: torch.Tensor, temperature: float) -> torch.Tensor:
    """Symmetric InfoNCE of ``(B, D)`` image and caption embeddings (pair ``i`` matches ``i``)."""
    logits = images @ captions.t() / temperature
    target = torch.arange(images.shape[0], device=images.device)
    return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.t(), target))


def negative_mask(phrases: torch.Tensor, owner: torch.Tensor, text_id: torch.Tensor, k: int) -> torch.Tensor:
    """Which phrases may serve as negatives of each phrase (the hard-negative sampler).

    Args:
        phrases: ``(M, D)`` phrase embeddings.
        owner: ``(M,)`` int64 image index of each phrase.
        text_id: ``(M,)`` int64, equal for phrases with equal text.
        k: keep only the ``k`` most similar candidates per row (cosine of the phrase
            embeddings; ties broken by index); 0 keeps every candidate.

    Returns:
        ``(M, M)`` bool: ``[m, n]`` is True when phrase ``n`` is a negative of phrase ``m``:
        it belongs to another caption, has another text, and (for ``k > 0``) is among the
        ``k`` candidates most similar to ``m``. A row may have fewer than ``k`` (or no) True.
    """
    valid = (owner[:, None] != owner[None, :]) & (text_id[:, None] != text_id[None, :])
    if k <= 0 or k >= phrases.shape[0]:
        return valid
    sim = (phrases @ phrases.t()).detach().float().masked_fill(~valid, float("-inf"))
    top = sim.topk(k, dim=1).indices
    keep = torch.zeros_like(valid)
    keep.scatter_(1, top, True)
    return keep & valid


def masked_infonce(
    queries: torch.Tensor, keys: torch.Tensor, positive: torch.Tensor, allowed: torch.Tensor, temperature: float
) -> torch.Tensor:
    """Mean InfoNCE of queries against their positive key and their allowed negative keys.

    Args:
        queries: ``(Q, D)``.
        keys: ``(M, D)``.
        positive: ``(Q,)`` int64 index of each query's positive key.
        allowed: ``(Q, M)`` bool, the negative keys of each query (the positive is added).
        temperature: softmax temperature.

    Returns:
        ``-mean_q log softmax(q . k / t)[positive]`` over the positive and allowed keys; 0 (with
        a gradient path) when there is no query.
    """
    if queries.shape[0] == 0:
        return queries.sum() * 0.0
    logits = queries @ keys.t()
    logits = logits.to(torch.promote_types(logits.dtype, torch.float32)) / temperature  # fp32 at least under AMP
    rows = torch.arange(queries.shape[0], device=queries.device)
    mask = allowed.clone()
    mask[rows, positive] = True
    logits = logits.masked_fill(~mask, float("-inf"))
    return F.cross_entropy(logits, positive)


def phrase_grounded_embeddings(
    patches: torch.Tensor, phrases: torch.Tensor, owner: torch.Tensor, temperature: float
) -> torch.Tensor:
    """Object-level visual embeddings: each phrase attention-pools its own image's patches.

    Args:
        patches: ``(B, N, D)`` patch embeddings (L2-normalised).
        phrases: ``(M, D)`` phrase embeddings.
        owner: ``(M,)`` image of each phrase.
        temperature: softmax temperature of the attention over the N patches.

    Returns:
        ``(M, D)`` L2-normalised ``sum_n softmax_n(p_n . t_m / T) p_n`` over image ``owner[m]``.
    """
    own = patches[owner]  # (M, N, D)
    weights = torch.softmax(torch.einsum("mnd,md->mn", own, phrases) / temperature, dim=1)
    return F.normalize(torch.einsum("mn,mnd->md", weights, own), dim=-1)


def object_loss(
    patches: torch.Tensor, phrases: torch.Tensor, owner: torch.Tensor, negatives: torch.Tensor,
    *, attention_temperature: float, temperature: float,
) -> torch.Tensor:
    """Object level: the phrase-grounded embedding of phrase ``m`` must pick phrase ``m``."""
    grounded = phrase_grounded_embeddings(patches, phrases, owner, attention_temperature)
    positive = torch.arange(phrases.shape[0], device=phrases.device)
    return masked_infonce(grounded, phrases, positive, negatives, temperature)


def best_own_phrase(queries: torch.Tensor, query_owner: torch.Tensor, phrases: torch.Tensor,
                    owner: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """For each query, the most similar phrase of its own image's caption.

    Args:
        queries: ``(Q, D)``; query_owner: ``(Q,)`` image of each query.
        phrases: ``(M, D)``; owner: ``(M,)``.

    Returns:
        ``(index, similarity, has_phrase)``: ``(Q,)`` int64 phrase index (0 where none),
        ``(Q,)`` its cosine (``-inf`` where none), ``(Q,)`` bool whether the image has phrases.
        Computed without gradient (a pseudo label).
    """
    with torch.no_grad():
        sim = queries @ phrases.t()
        sim = sim.masked_fill(query_owner[:, None] != owner[None, :], float("-inf"))
        best, index = sim.max(dim=1)
        return index, best, torch.isfinite(best)


def region_loss(
    regions: torch.Tensor, phrases: torch.Tensor, owner: torch.Tensor, negatives: torch.Tensor, *, temperature: float
) -> torch.Tensor:
    """Region level: each region must pick its best own phrase among that phrase's negatives.

    Args:
        regions: ``(B, G, D)`` region embeddings.
        phrases, owner: as above; negatives: ``(M, M)`` from :func:`negative_mask`.
    """
    batch, groups, dim = regions.shape
    flat = regions.reshape(batch * groups, dim)
    region_owner = torch.arange(batch, device=regions.device).repeat_interleave(groups)
    index, _, has = best_own_phrase(flat, region_owner, phrases, owner)
    return masked_infonce(flat[has], phrases, index[has], negatives[index[has]], temperature)


def pseudo_pixel_labels(
    patches: torch.Tensor, phrases: torch.Tensor, owner: torch.Tensor, *, selection: str, threshold: float,
    top_fraction: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Pseudo phrase labels of patches: the most similar phrase of the image's own caption.

    Args:
        patches: ``(B, N, D)``; phrases ``(M, D)``; owner ``(M,)``.
        selection: ``"threshold"`` keeps patches whose best cosine is >= ``threshold``;
            ``"top_fraction"`` keeps the ``ceil(top_fraction * N)`` most confident patches of
            each image (ties broken by patch index).

    Returns:
        ``(labels, keep)``: ``(B, N)`` int64 phrase index and ``(B, N)`` bool; images whose
        caption has no phrase keep nothing. No gradient.
    """
    batch, n, dim = patches.shape
    patch_owner = torch.arange(batch, device=patches.device).repeat_interleave(n)
    index, best, has = best_own_phrase(patches.reshape(batch * n, dim), patch_owner, phrases, owner)
    labels, best, has = index.view(batch, n), best.view(batch, n), has.view(batch, n)
    if selection == "threshold":
        keep = best >= threshold
    else:
        count = min(n, max(1, math.ceil(top_fraction * n)))
        order = best.masked_fill(~has, float("-inf")).topk(count, dim=1).indices
        keep = torch.zeros_like(has).scatter_(1, order, True)
    return labels, keep & has


def pixel_loss(
    patches: torch.Tensor, phrases: torch.Tensor, labels: torch.Tensor, keep: torch.Tensor, negatives: torch.Tensor,
    *, temperature: float,
) -> torch.Tensor:
    """Pixel level: each kept patch must pick its pseudo phrase among that phrase's negatives."""
    chosen = patches[keep]  # (K, D)
    target = labels[keep]
    return masked_infonce(chosen, phrases, target, negatives[target], temperature)
