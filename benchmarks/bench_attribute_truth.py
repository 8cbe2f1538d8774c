"""How true are scored attributes? Every formulation tried, on the truth set's dev half; the chosen one on its test half.

    python -m benchmarks.bench_attribute_truth [--every 3] [--no-reverse] [--keep DIR]

One vLLM engine (the default model, SmolLM2-135M-Instruct, offline) scores every formulation.
For each it prints, on the **dev** half of ``lmseg/attributes/truth/attribute_truth.csv``, the
share of classes with an acceptable colour / material among the words kept and as the first
word, and the share of kept words that are acceptable (``lmseg.attributes.accuracy``), and,
on every ``--every``-th class of ade847, the share of the most common colour, shape and
texture set (``lmseg.attributes.quality``: the diversity goal is at most 15%). The default
method (``ScoringMethod()``) was chosen from this table; it is then run once on the **test**
half, through ``run_generation`` and a table like the main job's, and judged the way
``python -m pipelines.attribute_report TABLE --truth --split test`` judges it; so is the
previous default, for a before/after comparison. The test half is used for nothing else.

Scores are cached per input text and word list, so formulations that share a text score it
once. ``reverse`` (colour only: how likely the class name is after "The green", against the
colour's own prior) scores one text per class and colour, about 23 times the cost of a
forward question, so it is judged on the dev half only (``--no-reverse`` skips it).
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from lmseg.attributes.accuracy import TruthReport, check_truth_classes, format_truth_report, load_truth, truth_report
from lmseg.attributes.answer import GROUPS, AnswerLimits, Attributes
from lmseg.attributes.generate import DEFAULT_INSTRUCTION, GenerationJob, run_generation
from lmseg.attributes.lexicon import load_lexicon
from lmseg.attributes.quality import format_report, group_quality, table_report
from lmseg.attributes.reader import attribute_frame
from lmseg.attributes.scoring import DEFAULT_QUESTIONS, Question, ScoringMethod
from lmseg.attributes.store import read_table
from lmseg.llm.backends.base import SamplingSettings
from lmseg.llm.backends.vllm_backend import VLLMBackend
from lmseg.llm.instruction import load_instruction
from lmseg.paths import default_llm_path
from lmseg.vocab import ClassEntry, Vocabulary, get_vocabulary

# The method before issue 20 (kept here to measure it).
PREVIOUS_QUESTIONS = (
    Question("colour", "The colour of the {name} is", "colour", 3),
    Question("shape", "The shape of the {name} is", "shape", 3),
    Question("texture", "The {name} is made of", "material", 2),
    Question("texture", "The {name} feels", "surface", 1),
)
PREVIOUS_MATERIALS = (*load_lexicon("material"), "bread", "meat", "fruit")  # the list before issue 20

USUALLY, TYPICAL = "The {name} is usually", "A typical {name} is"
WHAT_MADE = "What is the {name} made of? It is made of"
COLOUR_EXAMPLES = ("Q: What colour is coal?\nA: Coal is black.\nQ: What colour is blood?\nA: Blood is red.\n"
                   "Q: What colour is an emerald?\nA: An emerald is green.\nQ: What colour is the {name}?\n"
                   "A: The {name} is")
MATERIAL_EXAMPLES = "A tyre is made of rubber. A goose is covered with feathers. A {name} is made of"


class CachedScorer:
    """The backend's ``next_word_logprobs`` with a cache per (input text, word list), and its time."""

    def __init__(self, backend: VLLMBackend) -> None:
        self.backend = backend
        self.cache: dict[tuple[str, tuple[str, ...]], np.ndarray] = {}
        self.seconds = 0.0

    def next_word_logprobs(self, texts: Sequence[str], words: Sequence[str]) -> np.ndarray:
        key = tuple(words)
        todo = [t for t in dict.fromkeys(texts) if (t, key) not in self.cache]
        if todo:
            start = time.perf_counter()
            for text, row in zip(todo, self.backend.next_word_logprobs(todo, words), strict=True):
                self.cache[(text, key)] = row
            self.seconds += time.perf_counter() - start
        return np.array([self.cache[(t, key)] for t in texts])


def with_words(method: ScoringMethod, lexicon: str, words: Sequence[str]) -> ScoringMethod:
    """``method`` with another word list under ``lexicon``'s name (to measure a list that is not bundled)."""
    object.__setattr__(method, "_words", {**method._words, lexicon: tuple(words)})
    return method


def replace_group(questions: Sequence[Question], group: str, new: Sequence[Question], lexicon: str | None = None
                  ) -> tuple[Question, ...]:
    """``questions`` with those of ``group`` (and of ``lexicon``, if given) replaced by ``new``, in place."""
    def matches(q: Question) -> bool:
        return q.group == group and (lexicon is None or q.lexicon == lexicon)

    first = next(i for i, q in enumerate(questions) if matches(q))
    rest = [q for q in questions if not matches(q)]
    return (*rest[:first], *new, *rest[first:])


def chat_prefix(model: Path, user: str, assistant: str) -> str:
    """A prefix in the instruct model's chat template: the user's question, then the start of the answer."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(model))
    text = tokenizer.apply_chat_template([{"role": "user", "content": user}], tokenize=False, add_generation_prompt=True)
    return text + assistant


def colour_question(prefixes: Sequence[str], calibration: float, margin: float | None = None) -> tuple[Question, ...]:
    """Three colours from one question (prefixes averaged)."""
    return (Question("colour", prefixes[0], "colour", 3, paraphrases=tuple(prefixes[1:]), calibration=calibration,
                     margin=margin),)


def split_colour_questions(first: Sequence[str], first_calibration: float, rest_calibration: float
                           ) -> tuple[Question, ...]:
    """The first colour from ``first`` prefixes, the other two from "usually"/"typical" (as the default)."""
    return (Question("colour", first[0], "colour", 1, paraphrases=tuple(first[1:]), calibration=first_calibration),
            Question("colour", USUALLY, "colour", 2, paraphrases=(TYPICAL,), calibration=rest_calibration))


def material_question(prefixes: Sequence[str], calibration: float) -> tuple[Question, ...]:
    """Two materials from one question (prefixes averaged)."""
    return (Question("texture", prefixes[0], "material", 2, paraphrases=tuple(prefixes[1:]), calibration=calibration),)


def formulations(model: Path) -> dict[str, ScoringMethod]:
    """Every formulation compared on the dev half, by name; the last is the default (chosen)."""
    prev, chosen = PREVIOUS_QUESTIONS, DEFAULT_QUESTIONS

    def colour(*questions: Question) -> ScoringMethod:
        return ScoringMethod(replace_group(chosen, "colour", questions))

    def material(*questions: Question) -> ScoringMethod:
        return ScoringMethod(replace_group(chosen, "texture", questions, "material"))

    chat_colour = chat_prefix(model, "What colour is a {name}?", "A {name} is usually")
    chat_material = chat_prefix(model, "What is a {name} made of?", "A {name} is usually made of")
    return {
        "previous default (0.8, old word list)": with_words(ScoringMethod(prev), "material", PREVIOUS_MATERIALS),
        "previous questions, calibration 0.5": ScoringMethod(prev, calibration=0.5),
        "previous questions, calibration 0.3": ScoringMethod(prev, calibration=0.3),
        "previous questions, calibration 0": ScoringMethod(prev, calibration=0.0),
        "colour: 'is usually' 0.3": colour(*colour_question([USUALLY], 0.3)),
        "colour: usually+typical 0.3": colour(*colour_question([USUALLY, TYPICAL], 0.3)),
        "colour: usually+typical 0.5": colour(*colour_question([USUALLY, TYPICAL], 0.5)),
        "colour: usually+typical 0.3, margin 1": colour(*colour_question([USUALLY, TYPICAL], 0.3, margin=1.0)),
        "colour: chat template 0.3": colour(*colour_question([chat_colour], 0.3)),
        "colour: few-shot Q&A, first 0.4": colour(*split_colour_questions([USUALLY, TYPICAL, COLOUR_EXAMPLES], 0.4, 0.6)),
        "material: 'made of' 0.3, new list": material(*material_question(["The {name} is made of"], 0.3)),
        "material: chat template 0.3": material(*material_question([chat_material], 0.3)),
        "material: 'what ... made of' + few-shot 0.3": material(*material_question([WHAT_MADE, MATERIAL_EXAMPLES], 0.3)),
        "chosen, with the old material list": with_words(ScoringMethod(chosen), "material", PREVIOUS_MATERIALS),
        "chosen (default)": ScoringMethod(),
    }


def answer_frame(method: ScoringMethod, scorer: CachedScorer, entries: Sequence[ClassEntry]) -> pd.DataFrame:
    """The method's attributes of ``entries`` as an attribute DataFrame (class_index, class_name, groups)."""
    answers = method.answer(scorer, entries, AnswerLimits())
    return frame_of(entries, answers)


def frame_of(entries: Sequence[ClassEntry], answers: Sequence[Attributes]) -> pd.DataFrame:
    """Entries and their attributes as an attribute DataFrame."""
    return pd.DataFrame({"class_index": range(len(entries)), "class_name": [e.name for e in entries],
                         **{g: [getattr(a, g) for a in answers] for g in GROUPS}})


def reverse_scores(backend: VLLMBackend, entries: Sequence[ClassEntry]) -> tuple[np.ndarray, np.ndarray]:
    """The reverse direction for colour: log p(class name | "The <colour>") for every class and colour
    (``[entries, colours]``), and each colour's prior log p(colour | "The") (``[colours]``)."""
    from vllm import SamplingParams

    llm = backend._engine()  # the benchmark needs vLLM's prompt_logprobs (of the input), which the backend does not expose
    tokenizer = llm.get_tokenizer()
    colours = load_lexicon("colour")
    prior = backend.next_word_logprobs(["The"], colours)[0]
    scores = np.full((len(entries), len(colours)), np.nan)
    params = SamplingParams(max_tokens=1, temperature=0.0, prompt_logprobs=0)
    for j, colour in enumerate(colours):
        if np.isnan(prior[j]):
            continue
        prefix = f"The {colour}"
        skip = len(tokenizer.encode(prefix, add_special_tokens=False))
        outputs = llm.generate([f"{prefix} {e.name}" for e in entries], params, use_tqdm=False)
        for i, out in enumerate(outputs):
            ids, logprobs = out.prompt_token_ids, out.prompt_logprobs
            scores[i, j] = sum(logprobs[k][ids[k]].logprob for k in range(skip, len(ids)))
    return scores, prior


def reverse_answers(scores: np.ndarray, prior: np.ndarray, entries: Sequence[ClassEntry], calibration: float
                    ) -> list[Attributes]:
    """Three colours per class ranked by ``scores + (1 - calibration) * prior`` (1: pure pointwise
    mutual information; 0: the joint probability of "The <colour> <name>"); other groups empty."""
    colours = load_lexicon("colour")
    ranked = scores + (1 - calibration) * prior
    answers = []
    for row, entry in zip(ranked, entries, strict=True):
        own = {w for n in entry.names for w in n.lower().split()}
        order = [k for k in np.argsort(-np.nan_to_num(row, nan=-np.inf), kind="stable") if not np.isnan(row[k])]
        answers.append(Attributes(colour=tuple([colours[k] for k in order if colours[k] not in own][:3]),
                                  shape=(), texture=()))
    return answers


@dataclass
class Row:
    """One line of the results table."""

    name: str
    dev: TruthReport
    diversity: dict[str, float] | None
    seconds: float


def print_table(rows: Sequence[Row], dev_classes: int, sample: str) -> None:
    print(f"\ndev half ({dev_classes} classes): colour / material = share of judged classes with an acceptable word "
          f"among those kept, as the first word, and share of kept words acceptable; diversity = most common set's "
          f"share on {sample}")
    head = (f"{'formulation':<38} {'colour kept':>11} {'first':>6} {'prec':>5} {'words':>5} "
            f"{'material kept':>13} {'first':>6} {'prec':>5} {'shape kept':>10} "
            f"{'top colour':>10} {'top shape':>9} {'top texture':>11} {'score s':>7}")
    print(head)
    for row in rows:
        c, m, s = row.dev.figure("colour"), row.dev.figure("material"), row.dev.figure("shape")
        div = row.diversity or {}
        fmt = lambda g: f"{div[g]:.1%}" if g in div else "n/a"  # noqa: E731
        material = (f"{m.kept:>13.1%} {m.first:>6.1%} {m.precision:>5.0%} {s.kept:>10.1%}" if row.diversity is not None
                    else f"{'n/a':>13} {'':>6} {'':>5} {'':>10}")  # the reverse direction scores colours only
        print(f"{row.name:<38} {c.kept:>11.1%} {c.first:>6.1%} {c.precision:>5.0%} {c.words:>5.2f} {material} "
              f"{fmt('colour'):>10} {fmt('shape'):>9} {fmt('texture'):>11} {row.seconds:>7.1f}")


def run_test_half(backend: VLLMBackend, folder: Path, methods: dict[str, ScoringMethod]) -> None:
    """Methods on the test half, each through a table written by ``run_generation`` and judged like
    attribute_report. Only the chosen (default) method and, for before/after, the previous default
    are run here; nothing is chosen from these figures."""
    truth = load_truth()
    entries = truth.select("test")
    vocabulary = Vocabulary("attribute-truth-test", tuple(ClassEntry((e.name,)) for e in entries))
    check_truth_classes(entries, vocabulary.names, "the test vocabulary")
    for label, method in methods.items():
        output = folder / f"attribute-truth-test-{label.split()[0]}.parquet"
        job = GenerationJob(vocabulary, load_instruction(None, default=DEFAULT_INSTRUCTION), SamplingSettings(), AnswerLimits(),
                            output, overwrite=True, scoring=method)
        report = run_generation(job, backend, progress=False)
        frame = attribute_frame(read_table(output))
        print(f"\n== {label} on the TEST half: {report.generated} classes in {report.seconds:.1f} s; table {output}")
        print(format_report(table_report(frame)))
        print(format_truth_report(truth_report(frame, truth, "test"), truth.source))
        print(f"(reproduce: python -m pipelines.attribute_report {output} --truth --split test)")


def dev_rows(backend: VLLMBackend, model: Path, dev: Sequence[ClassEntry], ade: Sequence[ClassEntry],
             only: set[str] | None, reverse: bool) -> list[Row]:
    """Every formulation (or those in ``only``) judged on the dev half, with diversity on ``ade``."""
    truth = load_truth()
    scorer = CachedScorer(backend)
    rows = []
    for name, method in formulations(model).items():
        if only is not None and name not in only:
            continue
        before = scorer.seconds
        dev_report = truth_report(answer_frame(method, scorer, dev), truth, "dev")
        ade_frame = answer_frame(method, scorer, ade)
        diversity = {g: group_quality(ade_frame, g).top_share for g in GROUPS}
        rows.append(Row(name, dev_report, diversity, scorer.seconds - before))
        print(f"{name}: done ({scorer.seconds - before:.0f} s of new scoring)", flush=True)
    if reverse:
        start = time.perf_counter()
        scores, prior = reverse_scores(backend, dev)
        seconds = time.perf_counter() - start
        for calibration in (0.0, 0.5):
            answers = reverse_answers(scores, prior, dev, calibration)
            rows.append(Row(f"colour: reverse direction {calibration:g}",
                            truth_report(frame_of(dev, answers), truth, "dev"), None, seconds))
        print(f"reverse direction: done ({seconds:.0f} s)", flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, default=default_llm_path())
    parser.add_argument("--every", type=int, default=3, help="diversity on every N-th ade847 class (1: all 847)")
    parser.add_argument("--no-reverse", action="store_true", help="skip the (slow) reverse-direction formulation")
    parser.add_argument("--only", help="comma list of formulation names to run (default: all; 'reverse' for it)")
    parser.add_argument("--keep", type=Path, help="folder to keep the test-half tables in")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    truth = load_truth()  # a bad truth file fails here, before the engine starts
    dev = tuple(ClassEntry((e.name,)) for e in truth.select("dev"))
    ade = get_vocabulary("ade847").classes[:: args.every]
    only = set(args.only.split(",")) if args.only else None
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.keep or Path(tmp)
        backend = VLLMBackend(args.model, library_log=folder / "vllm.log")
        try:
            start = time.perf_counter()
            backend.next_word_logprobs(["The colour of the object is"], ["red"])
            print(f"engine started in {time.perf_counter() - start:.0f} s", flush=True)
            rows = dev_rows(backend, args.model, dev, ade, only,
                            reverse=not args.no_reverse and (only is None or "reverse" in only))
            print_table(rows, len(dev), f"{len(ade)} ade847 classes (one in {args.every})")
            previous = with_words(ScoringMethod(PREVIOUS_QUESTIONS), "material", PREVIOUS_MATERIALS)
            run_test_half(backend, folder, {"chosen (default) method": ScoringMethod(),
                                            "previous default (before issue 20, for comparison)": previous})
        finally:
            backend.close()  # the engine's processes end with the benchmark


if __name__ == "__main__":
    main()
