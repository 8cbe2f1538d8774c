"""The scored method: rank curated candidate words by the model's calibrated log-probability.

Free generation with a small model (SmolLM2-135M) gives nearly the same answer for every
class ("red, blue, green"; colour words under texture). The model does know more than it
writes: asked to continue "The material of the car tire is", it puts more probability on
" rubber" than a generic object would get. So for each class and each *question* (a sentence
prefix and a word list, ``lexicons/``):

1. score every candidate word ``w`` by ``log p(w | prefix with the class name)`` (the
   model's next-token log-probability of the word's single token after a space);
2. subtract ``calibration * mean_r log p(w | prefix with reference name r)``: the same
   prefix with generic names ("object", "thing", ...), so that words that are likely after
   *any* name ("red", "round") do not win for every class;
3. drop candidates that merely repeat the class's names, and keep the ``keep`` best.

A question's words that are not one token for the model are skipped (the first token of a
longer word says little about the word). The answer is always valid: the lists are long and
only words the class repeats are dropped, so no class fails. Everything that shapes an
answer (questions, word lists, references, calibration) is hashed into the row's
``template_sha256`` and written to its ``sampling`` column, so tables never mix methods or
lexicon versions silently.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Protocol

import numpy as np

from lmseg.attributes.answer import GROUPS, AnswerLimits, Attributes, clean_phrase, phrase_words
from lmseg.attributes.lexicon import load_lexicon
from lmseg.errors import LmsegError
from lmseg.vocab import ClassEntry


class WordScorer(Protocol):
    """A backend that can score next words (the vLLM backend)."""

    def next_word_logprobs(self, prompts: Sequence[str], words: Sequence[str]) -> np.ndarray:
        """Log-probability of each word's token right after each prompt (raw text, no chat template).

        Returns:
            float64 array of shape ``[len(prompts), len(words)]``, values <= 0; NaN for a
            word that is not a single token (after a leading space) for the model.
        """
        ...


@dataclass(frozen=True)
class Question:
    """One sentence prefix whose next word is chosen from a word list.

    Attributes:
        group: the table group the chosen words go to (``colour``, ``shape``, ``texture``).
        prefix: text with ``{name}`` where the class name goes; the word follows after a space.
        lexicon: name of the word list in ``lexicons/``.
        keep: words kept from this question per class.
    """

    group: str
    prefix: str
    lexicon: str
    keep: int


DEFAULT_QUESTIONS: tuple[Question, ...] = (
    Question("colour", "The colour of the {name} is", "colour", 3),
    Question("shape", "The shape of the {name} is", "shape", 3),
    Question("texture", "The {name} is made of", "material", 2),
    Question("texture", "The {name} feels", "surface", 1),
)

# Class-free names for calibration: the prefix with each of these stands for "any class".
DEFAULT_REFERENCES: tuple[str, ...] = (
    "object", "thing", "item", "stuff", "place", "animal", "plant", "tool", "building", "vehicle",
    "furniture", "machine", "container", "device", "structure", "material",
)


@dataclass(frozen=True)
class ScoringMethod:
    """The scored method's full definition (everything that can change an answer).

    Attributes:
        questions: the questions asked of every class.
        references: generic names whose mean score is subtracted (class-free calibration).
        calibration: weight of that subtraction (0: raw log-probabilities, 1: full). 0.8 was
            chosen on 71 ade847 classes (every 12th): at 1.0 rare words ("turquoise") win
            for too many classes, below 0.75 the common ones ("red, white, blue") do.
    """

    questions: tuple[Question, ...] = DEFAULT_QUESTIONS
    references: tuple[str, ...] = DEFAULT_REFERENCES
    calibration: float = 0.8
    _words: dict[str, tuple[str, ...]] = field(init=False, repr=False, compare=False)
    _baselines: dict[tuple[object, Question], np.ndarray] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        unknown = sorted({q.group for q in self.questions} - set(GROUPS))
        missing = sorted(set(GROUPS) - {q.group for q in self.questions})
        if unknown or missing or any(q.keep < 1 or "{name}" not in q.prefix for q in self.questions):
            raise LmsegError(f"scoring questions must cover exactly {GROUPS}, keep >= 1 word and contain "
                             "'{name}'")
        if not self.references:
            raise LmsegError("scoring needs at least one reference name for calibration")
        object.__setattr__(self, "_words", {q.lexicon: load_lexicon(q.lexicon) for q in self.questions})
        object.__setattr__(self, "_baselines", {})

    def description(self) -> dict:
        """Questions, word lists, references and calibration as plain data (hashed and stored)."""
        return {
            "questions": [asdict(q) for q in self.questions],
            "lexicons": {name: list(words) for name, words in sorted(self._words.items())},
            "references": list(self.references),
            "calibration": self.calibration,
        }

    @property
    def sha256(self) -> str:
        """Hex sha256 of :meth:`description` (stored in the ``template_sha256`` column)."""
        text = json.dumps(self.description(), sort_keys=True)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    def settings(self, limits: AnswerLimits) -> dict:
        """What the ``sampling`` column records for this method: keeps, calibration and limits."""
        return {"keep": {f"{q.group}/{q.lexicon}": q.keep for q in self.questions},
                "calibration": self.calibration, "references": len(self.references), "limits": asdict(limits)}

    def answer(self, scorer: WordScorer, entries: Sequence[ClassEntry], limits: AnswerLimits) -> list[Attributes]:
        """The attributes of each class, in order (one batched scoring call per question)."""
        chosen: list[dict[str, list[str]]] = [{g: [] for g in GROUPS} for _ in entries]
        for question in self.questions:
            words = self._words[question.lexicon]
            scores = scorer.next_word_logprobs([question.prefix.format(name=e.name) for e in entries], words)
            calibrated = scores - self.calibration * self._baseline(scorer, question)
            for row, entry, picked in zip(calibrated, entries, chosen, strict=True):
                picked[question.group] += _best_words(row, words, entry, question.keep, picked[question.group])
        return [Attributes(**{g: tuple(p[g][: limits.max_items]) for g in GROUPS}) for p in chosen]

    def _baseline(self, scorer: WordScorer, question: Question) -> np.ndarray:
        """Mean log-probability of each word after the question with the reference names
        (shape ``[words]``); computed once per scorer and question."""
        key = (scorer, question)
        if key not in self._baselines:
            prompts = [question.prefix.format(name=n) for n in self.references]
            self._baselines[key] = scorer.next_word_logprobs(prompts, self._words[question.lexicon]).mean(axis=0)
        return self._baselines[key]


def _best_words(scores: np.ndarray, words: Sequence[str], entry: ClassEntry, keep: int,
                taken: Sequence[str]) -> list[str]:
    """The ``keep`` best-scored words, skipping unscorable ones, the class's own words and ``taken``."""
    own = {w for n in entry.names for w in phrase_words(clean_phrase(n))}
    best: list[str] = []
    for k in np.argsort(-np.nan_to_num(scores, nan=-np.inf), kind="stable"):
        word = words[k]
        if np.isnan(scores[k]) or word in own or word in taken:
            continue
        best.append(word)
        if len(best) == keep:
            break
    if not best:
        raise LmsegError(f"no word of the list could be scored for {entry.name!r}; is the model's tokenizer unusual?")
    return best
