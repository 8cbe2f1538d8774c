"""Generating the attribute table: resumable, chunked, validated, retried.

Two methods fill a row (recorded in its ``method`` column): ``scored`` ranks curated words by
the model's calibrated log-probability (``lmseg.attributes.scoring``; the default, always
valid) and ``generate`` lets the model write a JSON answer (below; for strong models).

The run works through the classes that the table does not have yet, a chunk at a time. Each
chunk is sent to the backend in one batch; answers are validated and cleaned; malformed ones
are sent again (with the retry sampling settings) up to ``max_attempts`` times. After every
chunk the whole table is rewritten atomically, so an interrupted run (Ctrl-C, ``kill -9``,
crash) keeps every class finished so far and the next run generates only what is missing.

An existing table is only extended if it was made the same way (same vocabulary, model,
method, instruction or scoring definition, and settings); otherwise the run stops and says
why, unless ``overwrite`` is set. A class whose message is too long for the model is reported
failed by name; the other classes are written.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

from lmseg.attributes.answer import AnswerLimits, Attributes, parse_answer
from lmseg.attributes.scoring import ScoringMethod
from lmseg.attributes.store import AttributeRow, read_table, rows_to_table, table_to_rows, write_table
from lmseg.errors import LmsegError
from lmseg.io.progress import progress_bar
from lmseg.llm.backends.base import Backend, SamplingSettings
from lmseg.llm.instruction import ChatMessages, Instruction
from lmseg.llm.jobs import TableReport, ask
from lmseg.llm.tables import exclusive_lock
from lmseg.vocab import Vocabulary, natural_entry

log = logging.getLogger(__name__)

DEFAULT_INSTRUCTION = "attributes.j2"  # in instructions/


@dataclass(frozen=True)
class GenerationJob:
    """What to generate and where.

    Attributes:
        vocabulary: the classes.
        instruction: the instruction (jinja2 message to the LLM) of the generate method.
        settings: sampling settings.
        limits: bounds on answers.
        output: the Parquet table to create or extend.
        class_indices: the classes this run is responsible for (a shard), or None for all.
        overwrite: regenerate every class even if the table has it, replacing the table.
        chunk_size: classes sent to the backend at once (and saved together), >= 1.
        max_attempts: tries per class before it is reported as failed, >= 1. Not stored with
            the rows (it does not change an answer, only how many tries a class gets), so a
            re-run with a larger value gives the classes that failed more tries.
        scoring: the scored method's definition, or None for free generation (then
            ``instruction`` and ``settings`` make the answers).
    """

    vocabulary: Vocabulary
    instruction: Instruction
    settings: SamplingSettings
    limits: AnswerLimits
    output: Path
    class_indices: Sequence[int] | None = None
    overwrite: bool = False
    chunk_size: int = 64
    max_attempts: int = 3
    scoring: ScoringMethod | None = None

    @property
    def method(self) -> str:
        """The ``method`` column of the rows: ``scored`` or ``generate``."""
        return "generate" if self.scoring is None else "scored"

    @property
    def recipe_sha256(self) -> str:
        """The ``instruction_sha256`` column: the instruction's or the scoring definition's hash."""
        return self.instruction.sha256 if self.scoring is None else self.scoring.sha256

    def settings_json(self) -> str:
        """The JSON stored in the ``sampling`` column: the method's settings and answer limits."""
        if self.scoring is not None:
            return json.dumps({"method": "scored", **self.scoring.settings(self.limits)}, sort_keys=True)
        return json.dumps({"sampling": asdict(self.settings), "limits": asdict(self.limits)}, sort_keys=True)

    def conversation(self, class_index: int) -> ChatMessages:
        """The chat messages for one class (the instruction's variables ``class_name``, ``synonyms``,
        ``dataset``, ``max_items``), with its natural names (:func:`lmseg.vocab.natural_entry`)."""
        entry = natural_entry(self.vocabulary.classes[class_index])
        return self.instruction.render(class_name=entry.name, synonyms=list(entry.synonyms),
                                       dataset=self.vocabulary.name, max_items=self.limits.max_items)


def run_generation(job: GenerationJob, backend: Backend, *, progress: bool | None = None) -> TableReport:
    """Generate the attributes that ``job.output`` is missing.

    Args:
        job: the job.
        backend: the LLM.
        progress: show a progress bar (None: only when stderr is a terminal).

    Returns:
        What was generated, skipped (already present) and failed (class index -> (name, reason)).

    Raises:
        LmsegError: the existing table cannot be extended, another run holds it, or the
            backend is unavailable (rows finished before that are kept).
    """
    if job.scoring is not None and not hasattr(backend, "next_word_logprobs"):
        raise LmsegError(f"the scored method needs next-word log-probabilities, which the {type(backend).__name__} "
                         "does not provide; use the vLLM backend, or the generate method")
    selected = list(range(len(job.vocabulary))) if job.class_indices is None else list(job.class_indices)
    report = TableReport()
    start = time.perf_counter()
    with exclusive_lock(job.output):
        rows = {} if job.overwrite else existing_rows(job, backend.model_name)
        pending = [i for i in selected if i not in rows]
        report.skipped = len(selected) - len(pending)
        log.info("%s: %d classes to generate, %d already in %s", job.vocabulary.name, len(pending),
                 report.skipped, job.output)
        with progress_bar(len(pending), job.vocabulary.name, unit="class", enabled=progress) as bar:
            for start_at in range(0, len(pending), job.chunk_size):
                chunk = pending[start_at : start_at + job.chunk_size]
                new_rows, failures = generate_chunk(job, backend, chunk)
                rows.update({r.class_index: r for r in new_rows})
                report.failed.update(failures)
                report.generated += len(new_rows)
                if new_rows:  # with --overwrite, the old table stays until new rows replace it
                    save_rows(rows, job.output)
                bar.update(len(chunk))
                log.info("saved %d rows to %s (%d failed so far)", len(rows), job.output, len(report.failed))
    report.seconds = time.perf_counter() - start
    return report


def save_rows(rows: dict[int, AttributeRow], output: Path) -> None:
    """Rewrite the table atomically; a failed write keeps the previous table intact."""
    try:
        write_table(rows_to_table(list(rows.values())), output)
    except OSError as exc:
        raise LmsegError(
            f"cannot save {output}: {exc.strerror or exc}; the table as last saved is intact, and re-running the "
            "same command once the problem is fixed continues from there"
        ) from None


def existing_rows(job: GenerationJob, model_name: str) -> dict[int, AttributeRow]:
    """Rows of an existing table that this job may extend; raises if it was made differently."""
    if not job.output.exists():
        return {}
    advice = "pass --overwrite to regenerate it, or --output to write a separate table"
    try:
        rows = table_to_rows(read_table(job.output))
    except LmsegError as exc:  # corrupt, or of another schema: never overwritten without --overwrite
        raise LmsegError(f"{exc}; {advice}") from None
    names = job.vocabulary.names
    for row in rows:
        if row.dataset != job.vocabulary.name:
            raise LmsegError(f"{job.output} holds vocabulary {row.dataset!r}, not {job.vocabulary.name!r}; {advice}")
        if row.class_index >= len(names) or row.class_name != names[row.class_index]:
            raise LmsegError(
                f"{job.output} has class {row.class_index} = {row.class_name!r}, but the vocabulary "
                f"{job.vocabulary.name!r} has {len(names)} classes"
                + (f" and class {row.class_index} is {names[row.class_index]!r}" if row.class_index < len(names) else "")
                + f" (the vocabulary changed); {advice}"
            )
        if row.method != job.method:
            raise LmsegError(f"{job.output} was made with the {row.method!r} method, this run uses {job.method!r}; "
                             f"different methods never mix in one table; {advice}")
        if row.model != model_name:
            raise LmsegError(f"{job.output} was written by model {row.model!r}, this run uses {model_name!r}; {advice}")
        if row.instruction_sha256 != job.recipe_sha256:
            what = "instruction" if job.scoring is None else "scoring definition (questions, word lists)"
            raise LmsegError(
                f"{job.output} was made with another {what} (sha256 {row.instruction_sha256[:12]}..., "
                f"now {job.recipe_sha256[:12]}...); mixing them would give inconsistent answers; {advice}"
            )
        if row.sampling != job.settings_json():
            raise LmsegError(
                f"{job.output} was made with other sampling settings ({row.sampling}, now "
                f"{job.settings_json()}); {advice}"
            )
    return {r.class_index: r for r in rows}


def generate_chunk(
    job: GenerationJob, backend: Backend, indices: list[int]
) -> tuple[list[AttributeRow], dict[int, tuple[str, str]]]:
    """Answer one chunk of class indices with the job's method; returns its valid rows and its failures.

    This is the per-chunk step of every executor: :func:`run_generation` calls it in a loop, the
    Ray executor (:mod:`lmseg.distributed.llm_tables`) in each worker of an actor pool.
    """
    step = _generate_chunk if job.scoring is None else _score_chunk
    return step(job, backend, indices)


def _generate_chunk(
    job: GenerationJob, backend: Backend, indices: list[int]
) -> tuple[list[AttributeRow], dict[int, tuple[str, str]]]:
    """Generate, validate and retry one chunk (:func:`lmseg.llm.jobs.ask`); its valid rows and failures."""
    return ask(backend, indices, conversation=job.conversation, name_of=lambda i: job.vocabulary.classes[i].name,
               accept=lambda i, answer: answer_row(job, i, answer, backend.model_name),
               json_schema=job.limits.json_schema(), settings=job.settings, max_attempts=job.max_attempts)


def _score_chunk(
    job: GenerationJob, backend: Backend, indices: list[int]
) -> tuple[list[AttributeRow], dict[int, tuple[str, str]]]:
    """Score one chunk with the scored method: every class gets a row, except a class whose
    questions are too long for the model (a name of thousands of tokens), which fails by name."""
    assert job.scoring is not None
    refused = _too_long_to_score(job, backend, indices)
    kept = [i for i in indices if i not in refused]
    entries = [natural_entry(job.vocabulary.classes[i]) for i in kept]  # the names the model reads
    answers = job.scoring.answer(backend, entries, job.limits) if kept else []  # type: ignore[arg-type]
    rows = [_row(job, backend.model_name, i, a) for i, a in zip(kept, answers, strict=True)]
    return rows, {i: (job.vocabulary.classes[i].name, reason) for i, reason in refused.items()}


def _too_long_to_score(job: GenerationJob, backend: Backend, indices: list[int]) -> dict[int, str]:
    """Classes whose scoring questions the model cannot take, with why (a backend without
    ``too_long`` takes any length)."""
    assert job.scoring is not None
    too_long = getattr(backend, "too_long", None)
    if too_long is None:
        return {}
    questions = job.scoring.questions
    names = [natural_entry(job.vocabulary.classes[i]).name for i in indices]
    reasons = too_long([q.prefix.format(name=name) for name in names for q in questions], 1)
    per_class = (reasons[k * len(questions):(k + 1) * len(questions)] for k in range(len(indices)))
    return {i: next(r for r in found if r) for i, found in zip(indices, per_class, strict=True) if any(found)}


def answer_row(job: GenerationJob, index: int, answer: str, model_name: str) -> AttributeRow:
    """Validate and clean one raw answer of the generate method for class ``index`` into its row.

    Raises:
        InvalidAnswer: the answer is malformed (the caller retries the class).
    """
    attributes = parse_answer(answer, natural_entry(job.vocabulary.classes[index]).names, job.limits)
    return _row(job, model_name, index, attributes)


def _row(job: GenerationJob, model_name: str, index: int, attributes: Attributes) -> AttributeRow:
    """The table row of one class's clean attributes."""
    return AttributeRow(
        dataset=job.vocabulary.name,
        class_index=index,
        class_name=job.vocabulary.classes[index].name,
        colour=attributes.colour,
        shape=attributes.shape,
        texture=attributes.texture,
        model=model_name,
        instruction_sha256=job.recipe_sha256,
        created_at=datetime.now(timezone.utc),
        sampling=job.settings_json(),
        method=job.method,
    )
