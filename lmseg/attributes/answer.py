"""The LLM's answer: its JSON schema, and the rules that turn a raw answer into clean attributes.

The model is asked for a JSON object with three arrays of short phrases::

    {"colour": ["orange", "black stripes"], "shape": ["four legs", "long tail"],
     "texture": ["fur"]}

The schema given to the model bounds every array and string, because small models otherwise
ramble until ``max_tokens`` and the JSON is cut off. Whatever comes back is validated again
here (servers may ignore the schema), then cleaned:

* lower case, underscores read as spaces, inner whitespace collapsed, punctuation trimmed
  at both ends;
* phrases of more than ``max_words`` words (split at spaces and hyphens) or ``max_chars``
  characters are dropped;
* a phrase that merely repeats the class name or a synonym is dropped: one whose words all
  come from the class's names, give or take "a", "an", "the", "of" ("a bird", "bird-bird");
* duplicates are dropped (first one kept), then each group is capped at ``max_items``.

An answer is valid only if every group keeps at least one phrase. Anything else raises
:class:`~lmseg.llm.jobs.InvalidAnswer`, whose message says why, so that the caller can retry.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from lmseg.llm.jobs import InvalidAnswer

GROUPS: tuple[str, ...] = ("colour", "shape", "texture")


@dataclass(frozen=True)
class AnswerLimits:
    """Bounds on an answer, used both in the JSON schema and when cleaning.

    Attributes:
        max_items: most phrases kept per group.
        max_words: most words in one phrase.
        max_chars: most characters in one phrase.
    """

    max_items: int = 5
    max_words: int = 4
    max_chars: int = 40

    def json_schema(self) -> dict[str, Any]:
        """The JSON schema of an answer (usable by vLLM and OpenAI-compatible servers)."""
        group = {
            "type": "array",
            "items": {"type": "string", "minLength": 1, "maxLength": self.max_chars},
            "minItems": 1,
            "maxItems": self.max_items,
        }
        return {
            "title": "CategoryAttributes",
            "type": "object",
            "properties": {g: group for g in GROUPS},
            "required": list(GROUPS),
            "additionalProperties": False,
        }


@dataclass(frozen=True)
class Attributes:
    """Clean attributes of one class: each tuple non-empty, lower case, unique phrases."""

    colour: tuple[str, ...]
    shape: tuple[str, ...]
    texture: tuple[str, ...]


_EDGE_PUNCT = " \t\n\"'`.,;:!?()[]{}*-_/\\"
_FILLER_WORDS = frozenset({"a", "an", "the", "of"})


def clean_phrase(phrase: str) -> str:
    """Lower-case a phrase, turn underscores into spaces, collapse whitespace, trim punctuation."""
    return re.sub(r"\s+", " ", phrase.lower().replace("_", " ")).strip(_EDGE_PUNCT)


def phrase_words(phrase: str) -> list[str]:
    """The words of a clean phrase (split at spaces and hyphens)."""
    return [w for w in re.split(r"[\s-]+", phrase) if w]


def parse_answer(text: str, class_names: tuple[str, ...], limits: AnswerLimits) -> Attributes:
    """Validate and clean one raw answer.

    Args:
        text: the model's raw output, expected to be one JSON object.
        class_names: the class's primary name and synonyms; phrases equal to one are dropped.
        limits: bounds on phrases and group sizes.

    Raises:
        InvalidAnswer: not JSON, wrong shape, or a group left empty after cleaning.
    """
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        snippet = text if len(text) <= 80 else text[:77] + "..."
        raise InvalidAnswer(f"not valid JSON ({exc.msg}): {snippet!r}") from None
    if not isinstance(data, dict):
        raise InvalidAnswer(f"expected a JSON object, got {type(data).__name__}")
    missing = [g for g in GROUPS if g not in data]
    if missing:
        raise InvalidAnswer(f"missing group(s): {', '.join(missing)}")
    own_words = {w for n in class_names for w in phrase_words(clean_phrase(n))} | _FILLER_WORDS
    groups: dict[str, tuple[str, ...]] = {}
    for group in GROUPS:
        value = data[group]
        if isinstance(value, str):  # a lone phrase instead of a one-element list
            value = [value]
        if not isinstance(value, list):
            raise InvalidAnswer(f"{group!r} must be a list of strings, got {type(value).__name__}")
        kept: list[str] = []
        for item in value:
            if not isinstance(item, str):
                continue
            phrase = clean_phrase(item)
            words = phrase_words(phrase)
            if (
                words
                and not set(words) <= own_words
                and len(phrase) <= limits.max_chars
                and len(words) <= limits.max_words
                and phrase not in kept
            ):
                kept.append(phrase)
        if not kept:
            raise InvalidAnswer(f"no usable {group} phrase in {value!r}")
        groups[group] = tuple(kept[: limits.max_items])
    return Attributes(**groups)
