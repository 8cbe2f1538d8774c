"""The scored method: rank curated candidate words by the model's calibrated log-probability.

Free generation with a small model (SmolLM2-135M) gives nearly the same answer for every
class ("red, blue, green"; colour words under texture). The model does know more than it
writes: asked to continue "What is the car tire made of? It is made of", it puts more
probability on " rubber" than a generic object would get. So for each class and each
*question* (one or more sentence prefixes and a word list, ``lexicons/``):

1. score every candidate word ``w`` by ``log p(w | prefix with the class name)`` (the
   model's next-token log-probability of the word's single token after a space);
2. subtract ``weight * mean_r log p(w | prefix with reference name r)``: the same prefix
   with generic names ("object", "thing", ...), so that words that are likely after *any*
   name ("red", "round") do not win for every class;
3. average 1-2 over the question's prefixes (paraphrases of one question);
4. drop candidates that merely repeat the class's names or that an earlier question of the
   same group already chose, and keep the ``keep`` best.

The weight trades truth for variety. Measured on a hand-written truth set
(``truth/``, ``lmseg.attributes.accuracy``), a light weight (0.3-0.4) gives the truest words
but the same few colours ("black, red, white") for many classes; a strong one (0.8 and
above) gives every class different words, many of them false ("turquoise", "pink"). The
default questions therefore take the first colour and the materials with a light weight and
the second and third colours with a stronger one; ``benchmarks/bench_attribute_truth.py``
compares them with the other formulations that were tried.

A question's words that are not one token for the model are skipped (the first token of a
longer word says little about the word). The answer is always valid: the lists are long and
only words the class repeats are dropped, so no class fails. Everything that shapes an
answer (questions, word lists, references, calibration) is hashed into the row's
``instruction_sha256`` and written to its ``sampling`` column, so tables never mix methods or
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

    def next_word_logprobs(self, texts: Sequence[str], words: Sequence[str]) -> np.ndarray:
        """Log-probability of each word's token right after each text (raw, no chat template).

        Returns:
            float64 array of shape ``[len(texts), len(words)]``, values <= 0; NaN for a
            word that is not a single token (after a leading space) for the model.
        """
        ...


@dataclass(frozen=True)
class Question:
    """Sentence prefixes whose next word is chosen from a word list.

    Attributes:
        group: the table group the chosen words go to (``colour``, ``shape``, ``texture``).
        prefix: text with ``{name}`` where the class name goes; the word follows after a space.
        lexicon: name of the word list in ``lexicons/``.
        keep: words kept from this question per class (after the words that earlier
            questions of the same group chose).
        paraphrases: further prefixes asked the same way; a word's calibrated scores are
            averaged over ``prefix`` and these.
        calibration: this question's calibration weight; None for the method's.
        margin: if set, keep fewer words when the model is unsure: after the best word, only
            words whose calibrated score is at most ``margin`` below the best one's (so a
            class may get 1 to ``keep`` words). None always keeps ``keep`` words.
    """

    group: str
    prefix: str
    lexicon: str
    keep: int
    paraphrases: tuple[str, ...] = ()
    calibration: float | None = None
    margin: float | None = None

    @property
    def prefixes(self) -> tuple[str, ...]:
        """``prefix`` and its paraphrases."""
        return (self.prefix, *self.paraphrases)


# Chosen on the dev half of the truth set (lmseg/attributes/truth/; benchmarks/bench_attribute_truth.py
# compares them with the other formulations tried). The first colour is the truest word (light
# calibration); the second and third are chosen with a stronger calibration, which makes classes differ.
_USUALLY = "The {name} is usually"
_TYPICAL = "A typical {name} is"

DEFAULT_QUESTIONS: tuple[Question, ...] = (
    Question("colour", _USUALLY, "colour", 1, paraphrases=(_TYPICAL,), calibration=0.3),
    Question("colour", _USUALLY, "colour", 2, paraphrases=(_TYPICAL,), calibration=0.6),
    Question("shape", "What shape is the {name}? It is", "shape", 3, calibration=0.3),
    Question("texture", "What is the {name} made of? It is made of", "material", 2, calibration=0.2),
    Question("texture", "The {name} feels", "surface", 1, calibration=0.8),
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
        calibration: weight of that subtraction (0: raw log-probabilities, 1: full) for the
            questions that do not set their own. The default questions all set theirs (chosen
            on the truth set's dev half: weights near 0.3-0.4 give the truest words, near 0.6
            and above the most varied ones; see ``DEFAULT_QUESTIONS``), so with them this
            field changes nothing: to change their weights, pass questions with
            ``dataclasses.replace(q, calibration=...)``.
    """

    questions: tuple[Question, ...] = DEFAULT_QUESTIONS
    references: tuple[str, ...] = DEFAULT_REFERENCES
    calibration: float = 0.8
    _words: dict[str, tuple[str, ...]] = field(init=False, repr=False, compare=False)
    _baselines: dict[tuple[object, str, str], np.ndarray] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        unknown = sorted({q.group for q in self.questions} - set(GROUPS))
        missing = sorted(set(GROUPS) - {q.group for q in self.questions})
        if unknown or missing or any(q.keep < 1 or any("{name}" not in p for p in q.prefixes)
                                     for q in self.questions):
            raise LmsegError(f"scoring questions must cover exactly {GROUPS}, keep >= 1 word and contain "
                             "'{name}' in every prefix")
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
        """Hex sha256 of :meth:`description` (stored in the ``instruction_sha256`` column)."""
        text = json.dumps(self.description(), sort_keys=True)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    def settings(self, limits: AnswerLimits) -> dict:
        """What the ``sampling`` column records for this method: keeps, calibrations and limits."""
        return {"keep": [f"{q.group}/{q.lexicon}: {q.keep}" for q in self.questions],
                "calibration": [self.weight(q) for q in self.questions], "references": len(self.references),
                "limits": asdict(limits)}

    def weight(self, question: Question) -> float:
        """The calibration weight of a question: its own, or the method's."""
        return self.calibration if question.calibration is None else question.calibration

    def answer(self, scorer: WordScorer, entries: Sequence[ClassEntry], limits: AnswerLimits) -> list[Attributes]:
        """The attributes of each class, in order (one batched scoring call per distinct prefix and word list)."""
        chosen: list[dict[str, list[str]]] = [{g: [] for g in GROUPS} for _ in entries]
        raw: dict[tuple[str, str], np.ndarray] = {}  # (prefix, lexicon) -> scores of these entries
        for question in self.questions:
            words = self._words[question.lexicon]
            calibrated = self._calibrated(scorer, question, entries, raw)
            for row, entry, picked in zip(calibrated, entries, chosen, strict=True):
                picked[question.group] += _best_words(row, words, entry, question.keep, picked[question.group],
                                                      question.margin)
        return [Attributes(**{g: tuple(p[g][: limits.max_items]) for g in GROUPS}) for p in chosen]

    def _calibrated(self, scorer: WordScorer, question: Question, entries: Sequence[ClassEntry],
                    raw: dict[tuple[str, str], np.ndarray]) -> np.ndarray:
        """Calibrated scores ``[entries, words]`` of a question, averaged over its prefixes.

        ``raw`` memoises the model's scores per (prefix, word list) within one call, so two
        questions that share a prefix (the default colour questions) score it once.
        """
        words = self._words[question.lexicon]
        per_prefix = []
        for prefix in question.prefixes:
            key = (prefix, question.lexicon)
            if key not in raw:
                raw[key] = scorer.next_word_logprobs([prefix.format(name=e.name) for e in entries], words)
            per_prefix.append(raw[key] - self.weight(question) * self._baseline(scorer, prefix, question.lexicon))
        return np.mean(per_prefix, axis=0)

    def _baseline(self, scorer: WordScorer, prefix: str, lexicon: str) -> np.ndarray:
        """Mean log-probability of each word after ``prefix`` with the reference names
        (shape ``[words]``); computed once per scorer, prefix and word list."""
        key = (scorer, prefix, lexicon)
        if key not in self._baselines:
            texts = [prefix.format(name=n) for n in self.references]
            self._baselines[key] = scorer.next_word_logprobs(texts, self._words[lexicon]).mean(axis=0)
        return self._baselines[key]


def _best_words(scores: np.ndarray, words: Sequence[str], entry: ClassEntry, keep: int,
                taken: Sequence[str], margin: float | None = None) -> list[str]:
    """The ``keep`` best-scored words, skipping unscorable ones, the class's own words and ``taken``;
    with a ``margin``, only those scored at most ``margin`` below the best of them."""
    own = {w for n in entry.names for w in phrase_words(clean_phrase(n))}
    best: list[str] = []
    top = -np.inf
    for k in np.argsort(-np.nan_to_num(scores, nan=-np.inf), kind="stable"):
        word = words[k]
        if np.isnan(scores[k]) or word in own or word in taken:
            continue
        top = max(top, scores[k])
        if margin is not None and scores[k] < top - margin:
            break
        best.append(word)
        if len(best) == keep:
            break
    if not best:
        raise LmsegError(f"no word of the list could be scored for {entry.name!r}; is the model's tokenizer unusual?")
    return best
