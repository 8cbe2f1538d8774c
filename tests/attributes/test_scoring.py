"""The scored method's arithmetic: calibration, exclusions, provenance (a scripted scorer).

The scorer here returns log-probabilities from a table, so that each rule can be seen on
its own; the real model's scores are exercised in test_vllm_real.py.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from lmseg.attributes import DEFAULT_INSTRUCTION, AnswerLimits, GenerationJob
from lmseg.attributes.generate import run_generation
from lmseg.attributes.lexicon import load_lexicon
from lmseg.attributes.scoring import DEFAULT_QUESTIONS, Question, ScoringMethod
from lmseg.attributes.store import read_table, table_to_rows
from lmseg.errors import LmsegError
from lmseg.llm import SamplingSettings
from lmseg.llm.instruction import load_instruction
from lmseg.vocab import parse_class_list
from tests.attributes.test_generate import GOOD, ScriptedBackend

QUESTIONS = (Question("colour", "The colour of the {name} is", "colour", 2),
             Question("shape", "The shape of the {name} is", "shape", 1),
             Question("texture", "The {name} is made of", "material", 1))


class TableScorer:
    """Scores words by ``boost[(name, word)]`` on top of a flat -5 (-1 for ``common`` words)."""

    model_name = "table-scorer"

    def __init__(self, boost: dict[tuple[str, str], float], common: frozenset[str] = frozenset(),
                 unscorable: frozenset[str] = frozenset()) -> None:
        self.boost, self.common, self.unscorable = boost, common, unscorable
        self.texts: list[str] = []

    def next_word_logprobs(self, texts: Sequence[str], words: Sequence[str]) -> np.ndarray:
        self.texts += texts
        out = np.empty((len(texts), len(words)))
        for i, text in enumerate(texts):
            name = class_name(text)
            for j, word in enumerate(words):
                base = -1.0 if word in self.common else -5.0
                out[i, j] = np.nan if word in self.unscorable else base + self.boost.get((name, word), 0.0)
        return out


def class_name(text: str) -> str:
    """The name that a question's prefix was filled with."""
    for question in (*QUESTIONS, *DEFAULT_QUESTIONS):
        before, after = question.prefix.split("{name}")
        if text.startswith(before) and text.endswith(after):
            return text[len(before) : len(text) - len(after)]
    raise AssertionError(f"not a question's text: {text!r}")


def answer(scorer: TableScorer, classes: str, **kwargs: object) -> list:
    method = ScoringMethod(questions=QUESTIONS, **kwargs)
    return method.answer(scorer, parse_class_list(classes).classes, AnswerLimits())


def test_calibration_lets_a_class_specific_word_beat_a_word_likely_for_everything() -> None:
    scorer = TableScorer({("tire", "black"): 3.0, ("tire", "rubber"): 1.0}, common=frozenset({"red", "wood"}))
    calibrated = answer(scorer, "tire")[0]
    assert calibrated.colour[0] == "black" and calibrated.texture == ("rubber",)
    raw = answer(TableScorer(scorer.boost, common=scorer.common), "tire", calibration=0.0)[0]
    assert raw.colour[0] == "red" and raw.texture == ("wood",)  # uncalibrated, the common words win


def test_a_class_never_gets_its_own_name_and_unscorable_words_are_skipped() -> None:
    scorer = TableScorer({("brick", "brick"): 9.0, ("brick", "stone"): 2.0, ("brick", "clay"): 5.0},
                         unscorable=frozenset({"clay"}))
    assert answer(scorer, "brick")[0].texture == ("stone",)


def test_every_class_gets_every_group_from_its_word_list_and_references_are_scored_once() -> None:
    scorer = TableScorer({})
    method = ScoringMethod(questions=QUESTIONS)
    entries = parse_class_list("cat,dog,sofa").classes
    first = method.answer(scorer, entries[:2], AnswerLimits())
    method.answer(scorer, entries[2:], AnswerLimits())
    for attributes in first:
        assert len(attributes.colour) == 2 and set(attributes.colour) <= set(load_lexicon("colour"))
        assert len(attributes.shape) == 1 and len(attributes.texture) == 1
    reference_texts = [t for t in scorer.texts if class_name(t) == "object"]
    assert len(reference_texts) == len(QUESTIONS)  # the class-free baseline is computed once per question


def test_the_definition_hash_changes_with_anything_that_changes_an_answer() -> None:
    base = ScoringMethod()
    assert base.sha256 == ScoringMethod().sha256
    assert base.sha256 != ScoringMethod(calibration=0.5).sha256
    assert base.sha256 != ScoringMethod(references=("object",)).sha256
    assert base.sha256 != ScoringMethod(questions=QUESTIONS).sha256
    assert base.description()["lexicons"]["colour"] == list(load_lexicon("colour"))
    with pytest.raises(LmsegError, match="must cover exactly"):
        ScoringMethod(questions=QUESTIONS[:2])


def scored_job(tmp_path: Path, **kwargs: object) -> GenerationJob:
    return GenerationJob(parse_class_list("cat,dog,sofa", name="test"), load_instruction(None, default=DEFAULT_INSTRUCTION),
                         SamplingSettings(), AnswerLimits(), tmp_path / "t.parquet",
                         scoring=ScoringMethod(questions=QUESTIONS), **kwargs)


def test_scored_rows_record_their_method_and_definition(tmp_path: Path) -> None:
    report = run_generation(scored_job(tmp_path), TableScorer({}))
    assert (report.generated, report.failed) == (3, {})
    rows = table_to_rows(read_table(tmp_path / "t.parquet"))
    method = ScoringMethod(questions=QUESTIONS)
    assert {(r.method, r.instruction_sha256, r.model) for r in rows} == {("scored", method.sha256, "table-scorer")}
    assert json.loads(rows[0].sampling)["method"] == "scored"


def test_methods_never_mix_in_one_table(tmp_path: Path) -> None:
    generated = replace(scored_job(tmp_path), scoring=None)
    run_generation(generated, ScriptedBackend(lambda n, a: GOOD, model_name="table-scorer"))
    with pytest.raises(LmsegError, match="made with the 'generate' method, this run uses 'scored'"):
        run_generation(scored_job(tmp_path), TableScorer({}))


def test_a_backend_that_cannot_score_is_refused(tmp_path: Path) -> None:
    with pytest.raises(LmsegError, match="needs next-word log-probabilities"):
        run_generation(scored_job(tmp_path), ScriptedBackend(lambda n, a: GOOD))
    assert not (tmp_path / "t.parquet").exists()


PARAPHRASED = (Question("colour", "The colour of the {name} is", "colour", 1,
                        paraphrases=("The {name} is usually",), calibration=0.0),
               Question("colour", "The colour of the {name} is", "colour", 1,
                        paraphrases=("The {name} is usually",), calibration=1.0),
               Question("shape", "The shape of the {name} is", "shape", 1),
               Question("texture", "The {name} is made of", "material", 1))


class PrefixScorer(TableScorer):
    """Like TableScorer, plus ``by_prefix[(prefix start, name, word)]`` boosts, and a count of scored texts."""

    def __init__(self, boost: dict[tuple[str, str], float], by_prefix: dict[tuple[str, str, str], float],
                 common: frozenset[str] = frozenset()) -> None:
        super().__init__(boost, common)
        self.by_prefix = by_prefix

    def next_word_logprobs(self, texts: Sequence[str], words: Sequence[str]) -> np.ndarray:
        out = super().next_word_logprobs(texts, words)
        for i, text in enumerate(texts):
            for j, word in enumerate(words):
                out[i, j] += sum(v for (start, name, w), v in self.by_prefix.items()
                                 if text.startswith(start) and name in text and w == word)
        return out


def test_paraphrases_are_averaged_and_each_question_has_its_own_calibration() -> None:
    # "brown" is strong in one paraphrase only, "black" moderately in both: the average prefers black
    scorer = PrefixScorer({("tire", "black"): 2.0}, {("The tire is usually", "tire", "brown"): 3.0},
                          common=frozenset({"red"}))
    method = ScoringMethod(questions=PARAPHRASED)
    colour = method.answer(scorer, parse_class_list("tire").classes, AnswerLimits())[0].colour
    # first question, uncalibrated: the word likely for everything wins (red: -1 + 0 vs black: -5 + 2)
    # second, fully calibrated: red's advantage is removed, black (2.0 on average) beats brown (1.5)
    assert colour == ("red", "black")
    assert method.weight(PARAPHRASED[0]) == 0.0 and method.weight(PARAPHRASED[2]) == method.calibration
    shared = [t for t in scorer.texts if t == "The tire is usually"]
    assert len(shared) == 1  # a prefix shared by two questions is scored once per call


def test_a_margin_keeps_fewer_words_when_the_model_is_unsure() -> None:
    questions = (Question("colour", "The colour of the {name} is", "colour", 3, margin=1.5), *QUESTIONS[1:])
    scorer = TableScorer({("grass", "green"): 4.0, ("grass", "brown"): 3.0, ("tire", "black"): 0.1,
                          ("tire", "grey"): 0.05})
    grass, tire = ScoringMethod(questions=questions).answer(scorer, parse_class_list("grass,tire").classes,
                                                            AnswerLimits())
    assert grass.colour == ("green", "brown")  # the third word is 4 below the best
    assert len(tire.colour) == 3  # every word within 1.5 of the best: the list is filled
    assert ScoringMethod(questions=questions).sha256 != ScoringMethod(questions=QUESTIONS).sha256


def test_the_default_questions_take_the_first_colour_and_materials_with_a_light_calibration() -> None:
    method = ScoringMethod()
    first, rest = [q for q in method.questions if q.group == "colour"]
    assert (first.keep, rest.keep) == (1, 2) and method.weight(first) < method.weight(rest)
    material = next(q for q in method.questions if q.lexicon == "material")
    assert method.weight(material) <= 0.3
    assert not {"bread", "meat", "fruit"} & set(load_lexicon("material"))
