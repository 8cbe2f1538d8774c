"""Template-ensemble text embeddings with synonyms (CLIP's zero-shot classifier, per query).

Every name of every class (primary name and synonyms) is a *query*. A query's embedding is
the CLIP text embedding averaged over prompt templates::

    e_t = encode_text(template_t(name)) / ||...||      for each template t
    e   = mean_t(e_t) / ||mean_t(e_t)||

(``open_clip.zero_shot_classifier.build_zero_shot_classifier``, ProxyCLIP, Trident). Images
are scored against queries; a class then takes the maximum over its queries' probabilities
(:func:`max_over_synonyms`).

API (small on purpose; LMSeg's attribute prompts build on it):

* :func:`vocabulary_queries`: the queries of a vocabulary and the query -> class map.
* :func:`ensemble_embeddings`: ``(Q, D)`` embeddings of arbitrary query names.
* :func:`encode_vocabulary`: both at once, as a :class:`QueryEmbeddings`.
* :func:`max_over_synonyms`: ``(Q, ...)`` -> ``(N, ...)`` by max over each class's queries.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import torch

from lmseg.vocab import Vocabulary


class TextEncoder(Protocol):
    """What is needed from a CLIP model: :meth:`lmseg.backbones.clip.DenseCLIP.encode_text`."""

    def encode_text(self, texts: Sequence[str], *, batch_size: int = 256, normalize: bool = True) -> torch.Tensor:
        ...


@dataclass(frozen=True)
class QueryEmbeddings:
    """Text embeddings of a vocabulary's queries.

    Attributes:
        embeddings: ``(Q, D)`` L2-normalised, float32, one row per query.
        query_to_class: ``(Q,)`` int64, the class index of each query (non-decreasing; every
            class in ``0 .. num_classes - 1`` has at least one query).
        queries: the Q query names, in row order.
        num_classes: N, the number of classes.
    """

    embeddings: torch.Tensor
    query_to_class: torch.Tensor
    queries: tuple[str, ...]
    num_classes: int


def vocabulary_queries(
    vocabulary: Vocabulary, *, replace: dict[int, Sequence[str]] | None = None
) -> tuple[list[str], list[int]]:
    """The queries of a vocabulary: every name of every class, in class order.

    Args:
        vocabulary: the classes; ``ClassEntry.names`` (primary name first, then synonyms).
        replace: optional class index -> names used instead of that class's own names (e.g.
            Trident's list of background synonyms "sky; wall; tree; ..." for class 0).

    Returns:
        ``(queries, query_to_class)``: Q names and, for each, its class index.
    """
    replace = replace or {}
    queries: list[str] = []
    owners: list[int] = []
    for index, entry in enumerate(vocabulary.classes):
        names = tuple(replace.get(index, entry.names))
        if not names:
            raise ValueError(f"class {index} ({entry.name!r}) has no names to encode")
        queries.extend(names)
        owners.extend([index] * len(names))
    return queries, owners


@torch.no_grad()
def ensemble_embeddings(
    encoder: TextEncoder,
    queries: Sequence[str],
    templates: Sequence[Callable[[str], str]] | None = None,
    *,
    batch_size: int = 256,
) -> torch.Tensor:
    """``(Q, D)`` template-ensemble embeddings, float32, L2-normalised.

    Args:
        encoder: a CLIP text encoder (``DenseCLIP``).
        queries: Q names (each is put into every template).
        templates: callables ``name -> sentence`` (default: the 80 ImageNet templates).
        batch_size: sentences per text-tower forward pass (the result does not depend on it
            beyond floating-point rounding); the queries are pooled chunk by chunk, so memory
            holds one batch of sentence embeddings, not ``Q x templates`` of them.
    """
    if templates is None:
        from lmseg.text.templates import IMAGENET_TEMPLATES

        templates = IMAGENET_TEMPLATES
    if not queries:
        raise ValueError("no queries to encode")
    if not templates:
        raise ValueError("no templates")
    out = None
    step = max(1, batch_size // len(templates))  # queries per chunk: about one batch of sentences
    for start in range(0, len(queries), step):
        chunk = queries[start:start + step]
        sentences = [template(name) for name in chunk for template in templates]
        per_sentence = encoder.encode_text(sentences, batch_size=batch_size, normalize=True).float()
        per_query = per_sentence.view(len(chunk), len(templates), -1).mean(dim=1)
        if out is None:
            out = per_query.new_empty(len(queries), per_query.shape[-1])
        out[start:start + len(chunk)] = per_query / per_query.norm(dim=-1, keepdim=True)
    return out


def encode_vocabulary(
    encoder: TextEncoder,
    vocabulary: Vocabulary,
    templates: Sequence[Callable[[str], str]] | None = None,
    *,
    replace: dict[int, Sequence[str]] | None = None,
    batch_size: int = 256,
    embed: Callable[[list[str]], torch.Tensor] | None = None,
) -> QueryEmbeddings:
    """Embeddings of all queries of ``vocabulary`` (see :func:`vocabulary_queries`).

    ``embed``: queries -> ``(Q, D)`` embeddings instead of :func:`ensemble_embeddings` (e.g. the
    same through the embedding cache).
    """
    queries, owners = vocabulary_queries(vocabulary, replace=replace)
    if embed is not None:
        embeddings = embed(queries)
    else:
        embeddings = ensemble_embeddings(encoder, queries, templates, batch_size=batch_size)
    return QueryEmbeddings(
        embeddings=embeddings,
        query_to_class=torch.tensor(owners, dtype=torch.int64, device=embeddings.device),
        queries=tuple(queries),
        num_classes=len(vocabulary),
    )


def max_over_synonyms(per_query: torch.Tensor, query_to_class: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Max-pool per-query scores over the queries of each class.

    Args:
        per_query: ``(Q, ...)`` scores (e.g. probabilities after a softmax over all queries).
        query_to_class: ``(Q,)`` int64 class index of each query.
        num_classes: N; every class must own at least one query.

    Returns:
        ``(N, ...)``: row ``c`` is the elementwise max over the rows of the queries of class c.
    """
    if per_query.shape[0] != query_to_class.shape[0]:
        raise ValueError(f"{per_query.shape[0]} query rows but {query_to_class.shape[0]} query -> class entries")
    counts = torch.bincount(query_to_class.cpu(), minlength=num_classes)
    if len(counts) != num_classes or bool((counts == 0).any()):
        raise ValueError("every class needs at least one query, and class indices must be below num_classes")
    if int(counts.max()) == 1:
        return per_query[torch.argsort(query_to_class.to(per_query.device), stable=True)]
    index = query_to_class.to(per_query.device).view(-1, *([1] * (per_query.dim() - 1))).expand_as(per_query)
    out = per_query.new_full((num_classes, *per_query.shape[1:]), float("-inf"))
    return out.scatter_reduce(0, index, per_query, reduce="amax", include_self=True)
