"""Class text embeddings for MROVSeg: the project's prompts (templates + attribute sentences from
an optional stage-1 table, :mod:`lmseg.text.prompts`) through the frozen CLIP text tower,
cached on disk (:class:`lmseg.text.cache.EmbeddingCache`) and memoised per vocabulary."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import torch

from lmseg.backbones.clip import DenseCLIP
from lmseg.text.cache import EmbeddingCache, cached_prompt_embeddings, clip_text_fingerprint, table_sha256
from lmseg.text.prompts import Pooling, PromptSpec, build_prompts, encode_prompts
from lmseg.vocab import Vocabulary

Table = str | os.PathLike[str] | Mapping[int, object] | None


class TextEmbedder:
    """``(N, P, D)`` prompt embeddings of vocabularies for one CLIP text tower.

    Args:
        clip: the CLIP model whose (frozen) text tower encodes the prompts.
        pooling: ``"mean"`` (one embedding per class) or ``"channels"`` (P prompt channels).
        attribute_table: a stage-1 Parquet table whose ``dataset`` is the vocabulary's name, a
            mapping class index -> row, or None (template prompts only).
        prompt_spec: sentence templates.
        cache: the on-disk cache; None disables it.
    """

    def __init__(self, clip: DenseCLIP, *, pooling: Pooling, attribute_table: Table = None,
                 prompt_spec: PromptSpec = PromptSpec(), cache: EmbeddingCache | None = EmbeddingCache()) -> None:
        self.clip = clip
        self.pooling = pooling
        self.attribute_table = attribute_table
        self.prompt_spec = prompt_spec
        self.cache = cache
        self._memo: dict[tuple[str, str], torch.Tensor] = {}
        self._weights_id: str | None = None

    def attributes(self, vocabulary: Vocabulary) -> Mapping[int, object] | None:
        table = self.attribute_table
        if table is None or isinstance(table, Mapping):
            return table
        from lmseg.attributes.reader import load_attributes

        return load_attributes(vocabulary.name, "", path=Path(table))

    def __call__(self, vocabulary: Vocabulary, queries: Mapping[int, tuple[str, ...]] | None = None) -> torch.Tensor:
        """``(N, P, D)`` float32 L2-normalised embeddings on the CLIP model's device; ``queries``
        replaces the names of some classes in the sentences (see :func:`build_prompts`)."""
        attrs = self.attributes(vocabulary)
        prompts = build_prompts(vocabulary, attrs, spec=self.prompt_spec, pooling=self.pooling, queries=queries)
        memo = (prompts.content_sha256(), table_sha256(attrs))
        if memo not in self._memo:
            if self.cache is None:
                emb = encode_prompts(prompts, self.clip.encode_text)
            else:
                if self._weights_id is None:
                    self._weights_id = clip_text_fingerprint(self.clip.model)
                emb = cached_prompt_embeddings(prompts, attrs, self.clip, self.cache, weights_id=self._weights_id)
            self._memo[memo] = emb.to(self.clip.visual.conv1.weight.device)
        return self._memo[memo]
