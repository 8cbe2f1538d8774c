"""Class prompts: template and attribute sentences, grouped into channels.

For every class of a vocabulary this builds ``P`` prompt channels from the class template(s)
and the LLM attributes of the stage-1 table (:mod:`lmseg.attributes`), written as
:mod:`lmseg.text.sentences` says (articles that fit the word, a form per kind of phrase)::

    channel 0  template     "a photo of an aeroplane."          (every template)
    channel 1  colour       "a photo of a brown dog."           (every colour phrase)
    channel 2  shape        "a photo of a round table.", "a photo of a dog with four legs."
    channel 3  texture      "a photo of a mug made of ceramic.", "a photo of a dog with fur."

Each channel is the ensemble of its sentences: every sentence is encoded, L2-normalised, and
the channel is their mean, L2-normalised again (open_clip's zero-shot ensemble). Synonyms enter
the same ensemble: every sentence is made once per name of the class ("sofa", "couch"), so a
channel averages over names too. A class without a table row, or with an empty attribute group,
falls back to the template sentences for that channel, so P is the same for every class.

Pooling (the LMSeg paper does not fix it; both are supported): ``"channels"`` keeps the P channels
(``(N, P, D)``, the default), ``"mean"`` averages the P channel embeddings into one
(``(N, 1, D)``). :class:`lmseg.text.embedder.TextEmbedder` adds a third way for methods with
one embedding per query (``"blend"``).

This module never reads a file or talks to an LLM; tables come in as rows
(:mod:`lmseg.text.table`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from lmseg.attributes.answer import GROUPS
from lmseg.errors import LmsegError
from lmseg.text.sentences import fill, phrase_kind
from lmseg.text.table import check_rows
from lmseg.vocab import Vocabulary

Pooling = Literal["channels", "mean"]


@dataclass(frozen=True)
class PromptSpec:
    """How sentences are written (``{a}``: the article of the next word, :func:`~lmseg.text.sentences.fill`).

    Attributes:
        templates: class templates with one ``{}`` for the name (channel 0).
        quality_form: sentence of a quality phrase (colour, shape, surface: "a brown dog"),
            with ``{name}`` and ``{value}``.
        material_form: sentence of a material ("a mug made of ceramic").
        part_form: sentence of a covering or another noun phrase ("a dog with fur", "a dog
            with four legs"). Which form a phrase takes: :func:`lmseg.text.sentences.phrase_kind`.
        max_per_group: at most this many phrases per group are used (the table caps them too).
        imagenet_templates: use CLIP's 80 ImageNet templates (:mod:`lmseg.text.templates`, as
            published: "a photo of a {}." for every name) for channel 0 instead of ``templates``.
    """

    templates: tuple[str, ...] = ("a photo of {a} {}.",)
    quality_form: str = "a photo of {a} {value} {name}."
    material_form: str = "a photo of {a} {name} made of {value}."
    part_form: str = "a photo of {a} {name} with {value}."
    max_per_group: int = 8
    imagenet_templates: bool = False

    def __post_init__(self) -> None:
        if not self.templates or any(t.count("{}") != 1 for t in self.templates):
            raise LmsegError("every class template needs exactly one '{}' for the class name")
        for form in (self.quality_form, self.material_form, self.part_form):
            if "{name}" not in form or "{value}" not in form:
                raise LmsegError(f"attribute sentence form {form!r} needs '{{name}}' and '{{value}}'")

    def attribute_sentence(self, name: str, phrase: str) -> str:
        """The sentence of one attribute phrase of a class called ``name``."""
        form = {"quality": self.quality_form, "material": self.material_form, "part": self.part_form}
        return fill(form[phrase_kind(phrase)], name=name, value=phrase)

@dataclass(frozen=True)
class ClassPrompts:
    """The sentences of a vocabulary and which sentences make which (class, channel).

    Attributes:
        sentences: unique sentences, in first-use order (each encoded once).
        channels: ``channels[c][p]`` = indices into ``sentences`` averaged for class ``c``,
            channel ``p``.
        fallback: ``fallback[c]`` is True when class ``c`` had no attribute row.
        pooling: ``"channels"`` or ``"mean"``.
    """

    sentences: tuple[str, ...]
    channels: tuple[tuple[tuple[int, ...], ...], ...]
    fallback: tuple[bool, ...]
    pooling: Pooling

    @property
    def num_classes(self) -> int:
        return len(self.channels)

    def content_sha256(self) -> str:
        """A hash of everything that determines the embeddings apart from the text encoder."""
        payload = json.dumps({"s": self.sentences, "c": self.channels, "p": self.pooling}, ensure_ascii=False)
        return hashlib.sha256(payload.encode()).hexdigest()


def build_prompts(
    vocabulary: Vocabulary,
    attributes: Mapping[int, object] | None = None,
    *,
    spec: PromptSpec = PromptSpec(),
    pooling: Pooling = "channels",
    queries: Mapping[int, tuple[str, ...]] | None = None,
) -> ClassPrompts:
    """Write the sentences of every class and channel.

    Args:
        vocabulary: the classes (with synonyms).
        attributes: class index -> row with ``class_name``, ``colour``, ``shape``, ``texture``
            (e.g. :func:`lmseg.attributes.load_attributes`), or None for templates only.
        spec: sentence templates.
        pooling: ``"channels"`` or ``"mean"``.
        queries: class index -> the names its sentences are written with, replacing the
            vocabulary's (a published class list's names,
            :func:`lmseg.models.presets.published_queries`); table rows are still matched
            against the vocabulary's names.

    Raises:
        LmsegError: the rows do not belong to ``vocabulary`` (:func:`lmseg.text.table.check_rows`).
    """
    if pooling not in ("channels", "mean"):
        raise LmsegError(f"pooling must be 'channels' or 'mean', got {pooling!r}")
    attributes = attributes or {}
    check_rows(vocabulary, attributes)
    index: dict[str, int] = {}

    def sid(sentence: str) -> int:
        return index.setdefault(sentence, len(index))

    channels = []
    fallback = []
    for c, entry in enumerate(vocabulary.classes):
        row = attributes.get(c)
        names = queries.get(c, entry.names) if queries else entry.names
        template = tuple(sid(sentence) for name in names for sentence in _class_sentences(name, spec))
        groups = group_sentences(names, row, spec)
        channels.append((template, *(tuple(sid(s) for s in group) if group else template for group in groups)))
        fallback.append(row is None)
    return ClassPrompts(tuple(index), tuple(channels), tuple(fallback), pooling)


def group_sentences(names: Sequence[str], row: object | None, spec: PromptSpec) -> tuple[tuple[str, ...], ...]:
    """The attribute sentences of one class, per group in :data:`GROUPS` order.

    Args:
        names: the names the class is written with (its synonyms, or published names).
        row: its table row (``colour``, ``shape``, ``texture`` phrase lists), or None.
        spec: sentence forms; at most ``spec.max_per_group`` phrases of a group are used.

    Returns:
        One tuple per group: every phrase written with every name (name-major); empty for a
        group without phrases (and for every group when ``row`` is None).
    """
    out = []
    for group in GROUPS:
        phrases = tuple(getattr(row, group))[: spec.max_per_group] if row is not None else ()
        values = tuple(v for v in (str(x).strip() for x in phrases) if v)
        out.append(tuple(spec.attribute_sentence(name, v) for name in names for v in values))
    return tuple(out)


def sentence_ensembles(rows: Sequence[Sequence[str]]) -> ClassPrompts:
    """Prompts with one channel per row, the ensemble of that row's sentences (pooled by
    :func:`pool_embeddings` into ``(R, 1, D)``): e.g. each class's attribute sentences."""
    index: dict[str, int] = {}
    channels = tuple((tuple(index.setdefault(s, len(index)) for s in row),) for row in rows)
    return ClassPrompts(tuple(index), channels, (False,) * len(rows), "channels")


def _class_sentences(name: str, spec: PromptSpec) -> list[str]:
    if spec.imagenet_templates:
        from lmseg.text.templates import fill_templates

        return fill_templates(name)
    return [fill(t, name) for t in spec.templates]


def pool_embeddings(prompts: ClassPrompts, sentence_embeddings):
    """Average sentence embeddings into ``(N, P, D)`` (``channels``) or ``(N, 1, D)`` (``mean``).

    Args:
        prompts: from :func:`build_prompts`.
        sentence_embeddings: ``(S, D)`` float tensor, one row per ``prompts.sentences`` entry.

    Returns:
        A float tensor of L2-normalised embeddings on the input's device.
    """
    import torch
    import torch.nn.functional as F

    e = F.normalize(sentence_embeddings.float(), dim=-1)
    rows = []
    for per_class in prompts.channels:
        chans = [F.normalize(e[list(ids)].mean(dim=0), dim=-1) for ids in per_class]
        rows.append(torch.stack(chans))
    out = torch.stack(rows)  # (N, P, D)
    if prompts.pooling == "mean":
        out = F.normalize(out.mean(dim=1, keepdim=True), dim=-1)
    return out


def encode_prompts(prompts: ClassPrompts, encode: Callable[[Sequence[str]], object]):
    """Encode all sentences with ``encode`` (e.g. ``DenseCLIP.encode_text``) and pool them.

    Returns:
        ``(N, P, D)`` or ``(N, 1, D)`` float32 L2-normalised embeddings.
    """
    import torch

    with torch.no_grad():
        return pool_embeddings(prompts, encode(list(prompts.sentences))).float()
