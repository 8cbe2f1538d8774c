"""One text side for every method: a vocabulary (and an attribute table) -> :class:`ClassEmbeddings`.

:class:`TextEmbedder` is what LMSeg, MROVSeg, MGCA and Trident put around the CLIP text tower:

* **prompts**: class templates (``PromptSpec.templates`` or CLIP's 80 ImageNet templates),
  synonyms, the names a published class list sends (``queries=``, from
  :func:`lmseg.models.presets.published_queries`, or Trident's background names), and the
  attribute sentences of a stage-1 table (:mod:`lmseg.text.prompts`, :mod:`lmseg.text.table`);
* **rows**: ``synonyms="average"`` gives one row per class, its names averaged inside each
  sentence ensemble (LMSeg, MROVSeg, MGCA); ``"separate"`` one row per name (a *query*),
  which the method max-pools per class (Trident, :func:`lmseg.text.ensemble.max_over_synonyms`);
* **combination** of attribute sentences with the template ensemble (:data:`Combination`);
* the **on-disk cache** (:class:`~lmseg.text.cache.EmbeddingCache`), keyed by the CLIP model,
  the fingerprint of its text weights, the table rows and the sentences;
* an **in-memory memo** per (vocabulary content, query names, table, device).

The text-weights fingerprint (a sha256 over the text tower) is computed once per embedder,
on the first cache access. That is safe because no method changes the text weights behind an
embedder: LMSeg and MROVSeg never train the text tower and their training tasks make a new
embedder for a new model; MGCA can train it (``tune_text``) but trains on caption
embeddings, not on an embedder; predictors wrap a loaded model that stays fixed.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from functools import partial
from typing import Literal, Protocol

import torch
import torch.nn.functional as F

from lmseg.text.cache import EmbeddingCache, cache_key, clip_text_fingerprint
from lmseg.text.ensemble import TextEncoder, encode_vocabulary, ensemble_embeddings
from lmseg.text.prompts import (
    ClassPrompts,
    PromptSpec,
    build_prompts,
    encode_prompts,
    group_sentences,
    sentence_ensembles,
)
from lmseg.text.sentences import fill
from lmseg.text.table import AttributeTable, TableInput, open_attribute_table, table_sha256
from lmseg.vocab import Vocabulary

__all__ = ["AttributeTableOption", "ClassEmbeddings", "Combination", "Synonyms", "TextEmbedder"]

#: How a row's attribute sentences join its template ensemble:
#:
#: * ``"channels"``: P = 4 channels (template, colour, shape, texture ensembles), kept apart
#:   for a model that learns how to weigh them (LMSeg's cost volume, MROVSeg's queries); a
#:   group without phrases repeats the template channel;
#: * ``"mean"``: the normalised mean of those 4 channels (P = 1);
#: * ``"blend"``: ``normalize((1 - w) * template + w * attributes)`` with ``attributes`` the
#:   ensemble of all the row's attribute sentences and ``w`` = ``attribute_weight`` (P = 1);
#:   a row without phrases keeps its template embedding unchanged (methods that score one
#:   embedding per query against the image: Trident, MGCA).
Combination = Literal["channels", "mean", "blend"]
#: One row per class with its names averaged (``"average"``), or one row per name (``"separate"``).
Synonyms = Literal["average", "separate"]
Queries = Mapping[int, Sequence[str]] | None


class ClipText(TextEncoder, Protocol):
    """A CLIP model as the embedder needs it (:class:`lmseg.backbones.clip.DenseCLIP`)."""

    model_name: str
    model: torch.nn.Module


@dataclass(frozen=True)
class ClassEmbeddings:
    """The text side of a vocabulary, the one result every method consumes.

    Attributes:
        embeddings: ``(R, P, D)`` float32 on the requested device; every ``(r, p)`` vector
            L2-normalised. R rows: one per class (``synonyms="average"``) or one per query
            (``"separate"``); P prompt channels: 4 with ``combination="channels"``, else 1.
        query_to_class: ``(R,)`` int64 on the same device: the class of each row,
            non-decreasing, every class ``0 .. N-1`` present (``arange(N)`` for class rows).
        queries: the R names the rows are written with (a class row's names joined by "; ").
        num_classes: N.
        prompts_sha256: hash of everything that decides the embeddings apart from the encoder
            (sentences, their grouping, the combination and its weight).
        table_sha256: :func:`lmseg.text.table.table_sha256` of the attribute rows used.
    """

    embeddings: torch.Tensor
    query_to_class: torch.Tensor
    queries: tuple[str, ...]
    num_classes: int
    prompts_sha256: str
    table_sha256: str

    def to(self, device: torch.device) -> ClassEmbeddings:
        """The same on ``device``."""
        return ClassEmbeddings(self.embeddings.to(device), self.query_to_class.to(device), self.queries,
                               self.num_classes, self.prompts_sha256, self.table_sha256)


class TextEmbedder:
    """Class embeddings of vocabularies for one CLIP text tower (see the module docstring).

    Args:
        encoder: the CLIP model (frozen text tower).
        spec: how sentences are written (templates, attribute sentence forms).
        combination: how attribute sentences join the template ensemble (:data:`Combination`).
        attribute_weight: ``w`` of ``"blend"``, in [0, 1] (0: the table changes nothing).
        synonyms: one row per class (``"average"``) or per query (``"separate"``, only with
            ``"blend"``: a query has no attribute channels of its own).
        attribute_table: a stage-1 table (:func:`lmseg.text.table.open_attribute_table`), or None.
        cache: the on-disk cache; None computes every time (the memo still applies).

    Raises:
        ValueError: an unknown combination or synonym mode, a weight outside [0, 1].
        LmsegError: the table cannot be read.
    """

    def __init__(
        self,
        encoder: ClipText,
        *,
        spec: PromptSpec = PromptSpec(),
        combination: Combination = "channels",
        attribute_weight: float = 0.0,
        synonyms: Synonyms = "average",
        attribute_table: TableInput = None,
        cache: EmbeddingCache | None = EmbeddingCache(),
    ) -> None:
        if combination not in ("channels", "mean", "blend"):
            raise ValueError(f"combination must be 'channels', 'mean' or 'blend', got {combination!r}")
        if synonyms not in ("average", "separate"):
            raise ValueError(f"synonyms must be 'average' or 'separate', got {synonyms!r}")
        if synonyms == "separate" and combination != "blend":
            raise ValueError("one row per query (synonyms='separate') needs combination='blend'")
        if not 0.0 <= attribute_weight <= 1.0:
            raise ValueError(f"attribute_weight must lie in [0, 1], got {attribute_weight}")
        self.encoder = encoder
        self.spec = spec
        self.combination = combination
        self.attribute_weight = attribute_weight
        self.synonyms = synonyms
        self.cache = cache
        self.attribute_table = attribute_table
        self._memo: dict[tuple[str, str, str | None, str], ClassEmbeddings] = {}
        self._weights_id: str | None = None

    @property
    def attribute_table(self) -> AttributeTable | None:
        """The table in use (None: templates only). Setting it reads a new one; results of
        every table stay memoised."""
        return self._table

    @attribute_table.setter
    def attribute_table(self, table: TableInput) -> None:
        self._table = open_attribute_table(table)

    def __call__(self, vocabulary: Vocabulary, *, queries: Queries = None,
                 device: torch.device | str | None = None) -> ClassEmbeddings:
        """The embeddings of ``vocabulary`` (memoised, cached on disk).

        Args:
            vocabulary: the classes.
            queries: class index -> the names its sentences are written with, replacing the
                vocabulary's (published names, background synonyms); table rows are still
                matched against the vocabulary's own names.
            device: where the result goes (default: the encoder's).

        Raises:
            LmsegError: the attribute table belongs to another vocabulary.
        """
        device = torch.device(device) if device is not None else next(self.encoder.model.parameters()).device
        table = self._table
        names = json.dumps(sorted((int(c), list(n)) for c, n in (queries or {}).items()))
        key = (vocabulary.content_sha256(), names, None if table is None else table.sha256, str(device))
        if key not in self._memo:
            rows = table.rows_for(vocabulary) if table is not None else None
            self._memo[key] = self._embed(vocabulary, queries, rows).to(device)
        return self._memo[key]

    # ---- computation ------------------------------------------------------------------

    def _embed(self, vocabulary: Vocabulary, queries: Queries, rows: Mapping[int, object] | None) -> ClassEmbeddings:
        table_id = table_sha256(rows)
        if self.synonyms == "separate":
            text = encode_vocabulary(self.encoder, vocabulary, self._templates(), replace=queries,
                                     embed=None if self.cache is None else self._cached_queries)
            row_names = [(q,) for q in text.queries]
            owners, template = text.query_to_class.tolist(), text.embeddings
            template_id = self._queries_id(text.queries)
        else:
            names = [tuple(queries.get(c, e.names)) if queries else e.names for c, e in enumerate(vocabulary.classes)]
            owners, row_names = list(range(len(vocabulary))), names
            if self.combination != "blend":
                prompts = build_prompts(vocabulary, rows, spec=self.spec, pooling=self.combination, queries=queries)
                return self._result(self._encoded(prompts, table_id), owners, row_names, len(vocabulary),
                                    prompts.content_sha256(), table_id)
            prompts = build_prompts(vocabulary, None, spec=self.spec, pooling="mean", queries=queries)
            template, template_id = self._encoded(prompts, table_sha256(None))[:, 0], prompts.content_sha256()
        embeddings, attributes_id = self._blend(template, row_names, owners, rows, table_id)
        content = json.dumps([template_id, attributes_id, self.attribute_weight])
        return self._result(embeddings[:, None], owners, row_names, len(vocabulary),
                            hashlib.sha256(content.encode()).hexdigest(), table_id)

    @staticmethod
    def _result(embeddings: torch.Tensor, owners: list[int], row_names: Sequence[Sequence[str]], num_classes: int,
                prompts_id: str, table_id: str) -> ClassEmbeddings:
        owner = torch.tensor(owners, dtype=torch.int64, device=embeddings.device)
        return ClassEmbeddings(embeddings, owner, tuple("; ".join(n) for n in row_names), num_classes, prompts_id,
                               table_id)

    def _blend(self, template: torch.Tensor, row_names: Sequence[Sequence[str]], owners: Sequence[int],
               rows: Mapping[int, object] | None, table_id: str) -> tuple[torch.Tensor, str | None]:
        """``(R, D)``: rows with attribute phrases blended (``"blend"``), the others as they were;
        and the hash of the attribute sentences (None when nothing was blended)."""
        if not rows or self.attribute_weight == 0.0:
            return template, None
        sentences = [sum(group_sentences(names, rows.get(c), self.spec), ()) for names, c in zip(row_names, owners)]
        blended = [r for r, s in enumerate(sentences) if s]
        if not blended:
            return template, None
        prompts = sentence_ensembles([sentences[r] for r in blended])
        attributes = self._encoded(prompts, table_id)[:, 0].to(template.device)
        index = torch.tensor(blended, device=template.device)
        w = self.attribute_weight
        out = template.clone()
        out[index] = F.normalize((1.0 - w) * template[index] + w * attributes, dim=-1)
        return out, prompts.content_sha256()

    def _encoded(self, prompts: ClassPrompts, table_id: str) -> torch.Tensor:
        """``(R, P, D)`` pooled sentence ensembles, through the cache unless it is off."""
        if self.cache is None:
            return encode_prompts(prompts, self.encoder.encode_text)
        return self.cache.get_or_compute(prompts, self.encoder.encode_text, model_name=self.encoder.model_name,
                                         weights_id=self._weights(), table_id=table_id)

    def _templates(self):
        """The class templates of query rows (callables name -> sentence)."""
        if self.spec.imagenet_templates:
            from lmseg.text.templates import IMAGENET_TEMPLATES

            return IMAGENET_TEMPLATES
        return tuple(partial(fill, t) for t in self.spec.templates)

    def _queries_id(self, queries: Sequence[str]) -> str:
        tag = "imagenet80" if self.spec.imagenet_templates else list(self.spec.templates)
        return hashlib.sha256(json.dumps([tag, list(queries)]).encode()).hexdigest()

    def _cached_queries(self, queries: list[str]) -> torch.Tensor:
        """``(Q, D)`` template ensembles of query names, through the cache."""
        name = self.encoder.model_name
        key = cache_key(model_name=name, weights_id=self._weights(), queries=self._queries_id(queries))
        return self.cache.tensor(name, key, len(queries),
                                 lambda: ensemble_embeddings(self.encoder, queries, self._templates()))

    def _weights(self) -> str:
        if self._weights_id is None:
            self._weights_id = clip_text_fingerprint(self.encoder.model)
        return self._weights_id


class AttributeTableOption:
    """For predictors that hold their :class:`TextEmbedder` as ``self.text``: the
    ``attribute_table`` of every method (read it; set it to use another table, as the web page
    does for one request), and the prompt part of their settings."""

    text: TextEmbedder

    @property
    def attribute_table(self) -> AttributeTable | None:
        """The attribute table of the prompts (None: the method's own prompts alone)."""
        return self.text.attribute_table

    @attribute_table.setter
    def attribute_table(self, table: TableInput) -> None:
        self.text.attribute_table = table

    def prompt_settings(self) -> dict[str, object]:
        """For a predictor's settings: ``prompts`` (the :class:`PromptSpec`'s fields) and
        ``attribute_table`` (the table's source, or None)."""
        table = self.attribute_table
        return {"prompts": asdict(self.text.spec), "attribute_table": None if table is None else table.source}
