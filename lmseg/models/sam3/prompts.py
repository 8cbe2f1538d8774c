"""The text prompts of a vocabulary: names, synonyms, and attribute phrases as noun phrases.

SAM 3 is prompted with short noun phrases ("yellow school bus"). A class gives:

* its names: all synonyms (``Sam3Config.synonyms``) or the primary name; a published class
  list's names instead when the vocabulary is that list's benchmark (``class_list``);
* with a stage-1 attribute table, up to ``attribute_prompts`` of its attribute phrases, taken
  from the colour, shape and texture lists in turn, each joined to the primary name as a noun
  phrase by its kind (:func:`lmseg.text.sentences.phrase_kind`): a quality in front ("brown
  dog", "round table"), a material in front ("wood table"), a part or covering after "with"
  ("dog with fur", "cat with black stripes").
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass

from lmseg.models.sam3.config import Sam3Config
from lmseg.vocab import Vocabulary


@dataclass(frozen=True)
class Prompts:
    """The prompts of a vocabulary, in order, with the class each belongs to.

    Attributes:
        texts: the prompt strings.
        classes: the class index of each.
        num_classes: ``N``.
    """

    texts: tuple[str, ...]
    classes: tuple[int, ...]
    num_classes: int

    @property
    def sha256(self) -> str:
        """Content hash of the (class, prompt) pairs (for records)."""
        pairs = [[c, t] for t, c in zip(self.texts, self.classes)]
        return hashlib.sha256(json.dumps(pairs, ensure_ascii=False).encode()).hexdigest()


def attribute_phrase(name: str, phrase: str) -> str:
    """An attribute phrase joined to a class name as a noun phrase (see the module docstring)."""
    from lmseg.text.sentences import phrase_kind

    if phrase_kind(phrase) == "part":
        return f"{name} with {phrase}"
    return f"{phrase} {name}"


def _attribute_phrases(row: object, limit: int) -> list[str]:
    groups = [list(getattr(row, group, ()) or ()) for group in ("colour", "shape", "texture")]
    phrases: list[str] = []
    for depth in range(max((len(g) for g in groups), default=0)):
        for group in groups:
            if depth < len(group) and len(phrases) < limit and group[depth] not in phrases:
                phrases.append(group[depth])
    return phrases


def build_prompts(vocabulary: Vocabulary, config: Sam3Config, *, published: Mapping[int, tuple[str, ...]] | None = None,
                  attributes: Mapping[int, object] | None = None) -> Prompts:
    """Every class's prompts (see the module docstring).

    Args:
        vocabulary: the classes.
        config: ``synonyms`` and ``attribute_prompts``.
        published: class index -> the names of a published class list, or None.
        attributes: class index -> stage-1 row (``colour``, ``shape``, ``texture`` lists), or None.
    """
    texts: list[str] = []
    classes: list[int] = []
    for index, entry in enumerate(vocabulary.classes):
        names = list(published[index]) if published is not None else list(entry.names)
        if not config.synonyms:
            names = names[:1]
        chosen = list(dict.fromkeys(n.strip() for n in names if n.strip()))
        row = (attributes or {}).get(index)
        if row is not None and config.attribute_prompts:
            primary = entry.name
            for phrase in _attribute_phrases(row, config.attribute_prompts):
                text = attribute_phrase(primary, phrase)
                if text not in chosen:
                    chosen.append(text)
        texts.extend(chosen)
        classes.extend([index] * len(chosen))
    return Prompts(tuple(texts), tuple(classes), len(vocabulary))
