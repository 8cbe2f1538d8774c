"""Attribute-enriched class prompts (LMSeg stage 2, text side).

For every class of a vocabulary this builds ``P`` prompt channels from the class template(s)
and the LLM attributes of the stage-1 table (:mod:`lmseg.attributes`):

    channel 0  template     "a photo of a {name}."                     (every template)
    channel 1  colour       "a photo of a {name}, which is {colour}."  (every colour phrase)
    channel 2  shape        "a photo of a {name}, which is {shape}."
    channel 3  texture      "a photo of a {name}, which is {texture}."

Each channel is the ensemble of its sentences: every sentence is encoded, L2-normalised, and
the channel is their mean, L2-normalised again (open_clip's zero-shot ensemble). Synonyms enter
the same ensemble: every sentence is made once per name of the class ("sofa", "couch"), so a
channel averages over names too. A class without a table row, or with an empty attribute group,
falls back to the template sentences for that channel, so P is the same for every class.

Pooling (the LMSeg paper does not fix it; both are supported): ``"channels"`` keeps the P channels
(``(N, P, D)``, the default), ``"mean"`` averages the P channel embeddings into one
(``(N, 1, D)``).

This module reads tables through :func:`lmseg.attributes.load_attributes` (pyarrow only) and
never talks to an LLM.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from lmseg.attributes.answer import GROUPS
from lmseg.errors import LmsegError
from lmseg.vocab import Vocabulary

Pooling = Literal["channels", "mean"]



@dataclass(frozen=True)
class PromptSpec:
    """How sentences are written.

    Attributes:
        templates: class templates with one ``{}`` for the name (channel 0).
        attribute_templates: one template per group in :data:`GROUPS` order, with ``{name}``
            and ``{value}``.
        max_per_group: at most this many phrases per group are used (the table caps them too).
        imagenet_templates: use CLIP's 80 ImageNet templates (:mod:`lmseg.text.templates`)
            for channel 0 instead of ``templates``.
    """

    templates: tuple[str, ...] = ("a photo of a {}.",)
    attribute_templates: tuple[str, ...] = (
        "a photo of a {name}, which is {value}.",
        "a photo of a {name}, which is {value}.",
        "a photo of a {name}, which is {value}.",
    )
    max_per_group: int = 8
    imagenet_templates: bool = False

    def __post_init__(self) -> None:
        if not self.templates or any(t.count("{}") != 1 for t in self.templates):
            raise LmsegError("every class template needs exactly one '{}' for the class name")
        if len(self.attribute_templates) != len(GROUPS):
            raise LmsegError(f"attribute_templates needs one template per group {GROUPS}")
        for t in self.attribute_templates:
            if "{name}" not in t or "{value}" not in t:
                raise LmsegError(f"attribute template {t!r} needs '{{name}}' and '{{value}}'")


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
        LmsegError: a row's class name is not the vocabulary's name at that index (a table of
            another vocabulary or order), or a row's index is outside the vocabulary.
    """
    if pooling not in ("channels", "mean"):
        raise LmsegError(f"pooling must be 'channels' or 'mean', got {pooling!r}")
    attributes = attributes or {}
    outside = sorted(i for i in attributes if not 0 <= int(i) < len(vocabulary))
    if outside:
        raise LmsegError(f"the attribute table has class indices {outside[:5]} outside the vocabulary "
                         f"{vocabulary.name!r} of {len(vocabulary)} classes")
    index: dict[str, int] = {}

    def sid(sentence: str) -> int:
        return index.setdefault(sentence, len(index))

    channels = []
    fallback = []
    for c, entry in enumerate(vocabulary.classes):
        row = attributes.get(c)
        if row is not None and str(getattr(row, "class_name")).strip().lower() != entry.name.strip().lower():
            raise LmsegError(
                f"attribute table row {c} is for {getattr(row, 'class_name')!r} but class {c} of {vocabulary.name!r} "
                f"is {entry.name!r}: the table belongs to another vocabulary or class order"
            )
        names = queries.get(c, entry.names) if queries else entry.names
        template = tuple(sid(sentence) for name in names for sentence in _class_sentences(name, spec))
        per_class = [template]
        for group, tmpl in zip(GROUPS, spec.attribute_templates):
            values = tuple(getattr(row, group))[: spec.max_per_group] if row is not None else ()
            values = tuple(v for v in (str(x).strip() for x in values) if v)
            if values:
                per_class.append(tuple(sid(tmpl.format(name=name, value=v)) for name in names for v in values))
            else:
                per_class.append(template)
        channels.append(tuple(per_class))
        fallback.append(row is None)
    return ClassPrompts(tuple(index), tuple(channels), tuple(fallback), pooling)


def _class_sentences(name: str, spec: PromptSpec) -> list[str]:
    if spec.imagenet_templates:
        from lmseg.text.templates import fill_templates

        return fill_templates(name)
    return [t.format(name) for t in spec.templates]


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
