"""LLM table jobs: the contract of a stage that fills a table with one validated answer per key.

A stage (the attribute table, keyed by class index; MGCA's caption phrases, keyed by
``(caption sha256, caption)``) offers :class:`LLMTableJob`: which keys the table lacks, the
rendered instruction of a key (its chat messages), how an answer becomes a row (or
:class:`InvalidAnswer`), and how rows are saved. Every executor runs the same per-batch
step, :func:`ask`: render, generate, validate, retry the invalid answers with the retry
sampling settings; the local loops of the stages call it per chunk, the Ray executor
(:mod:`lmseg.distributed.llm_tables`) per batch in each actor.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from lmseg.llm.backends.base import Backend, BackendUnavailable, RequestFailed, SamplingSettings
from lmseg.llm.instruction import ChatMessages

Key = TypeVar("Key", bound=Hashable)
Row = TypeVar("Row")


class InvalidAnswer(ValueError):
    """A model's answer cannot be used (the message says why); the key is asked again."""


@dataclass
class TableReport:
    """What a run of a table job did.

    Attributes:
        generated: rows written by this run.
        skipped: keys of this run the table already had.
        failed: key -> (readable name, last reason) for keys that got no valid answer.
        seconds: wall time.
    """

    generated: int = 0
    skipped: int = 0
    failed: dict[Any, tuple[str, str]] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def rows_per_second(self) -> float:
        return self.generated / self.seconds if self.seconds > 0 else 0.0


class LLMTableJob(Protocol):
    """One LLM table stage as the executors see it (keys are picklable and hashable)."""

    @property
    def description(self) -> str:
        """What is being written where, for messages."""
        ...

    @property
    def settings(self) -> SamplingSettings: ...

    @property
    def max_attempts(self) -> int: ...

    def json_schema(self) -> dict[str, Any]:
        """The structured-output schema of an answer."""
        ...

    def pending(self) -> tuple[list[Hashable], int]:
        """(keys the table still lacks, number of this run's keys it already has); reads the
        existing table and checks its provenance first."""
        ...

    def name_of(self, key: Hashable) -> str:
        """A readable name of a key (class name, caption) for failure lists."""
        ...

    def conversation(self, key: Hashable) -> ChatMessages:
        """The rendered instruction (chat messages) of one key."""
        ...

    def accept(self, key: Hashable, answer: str) -> Any:
        """Validate and clean one answer into its table row; raises :class:`InvalidAnswer`."""
        ...

    def generate_batch(
        self, backend: Backend, keys: list[Hashable]
    ) -> tuple[list[Any], dict[Hashable, tuple[str, str]]]:
        """The local step (:func:`ask`, or the stage's own): (valid rows, key -> (name, reason))."""
        ...

    def save(self, rows: Sequence[Any]) -> None:
        """Append rows to the table (atomically; the table holds every row saved so far)."""
        ...


class JobSettings:
    """The generation settings a table job reads from its ``job`` (anything with ``settings``,
    ``max_attempts`` and ``limits.json_schema()``): the settings part of :class:`LLMTableJob`."""

    job: Any

    @property
    def settings(self) -> SamplingSettings:
        return self.job.settings

    @property
    def max_attempts(self) -> int:
        return self.job.max_attempts

    def json_schema(self) -> dict[str, Any]:
        return self.job.limits.json_schema()


def ask(
    backend: Backend,
    keys: Sequence[Key],
    *,
    conversation: Callable[[Key], ChatMessages],
    accept: Callable[[Key, str], Row],
    name_of: Callable[[Key], str],
    json_schema: dict[str, Any],
    settings: SamplingSettings,
    max_attempts: int,
) -> tuple[list[Row], dict[Key, tuple[str, str]]]:
    """Answer ``keys``: generate, validate with ``accept``, and ask again (attempt 1, 2, ...:
    the retry sampling settings) the keys whose answer was invalid, up to ``max_attempts`` tries.

    A request that failed is not retried here (the backend retried its transport already);
    a key the backend refused (an input too long for the model) is one failure, named, and
    the others go on.

    Returns:
        (valid rows in answer order, key -> (name, last reason) for keys without one).

    Raises:
        BackendUnavailable: every request of the first attempt failed for a reason other
            than its own input (the server or model is unusable: no point in going on).
    """
    conversations = {key: conversation(key) for key in keys}
    reasons: dict[Key, str] = {}
    rows: list[Row] = []
    pending = list(keys)
    for attempt in range(max_attempts):
        if not pending:
            break
        answers = backend.generate([conversations[k] for k in pending], json_schema, settings, attempt)
        if attempt == 0 and all(isinstance(a, RequestFailed) and not a.input_refused for a in answers):
            raise BackendUnavailable(f"every request to the model failed; last error: {answers[-1].reason}")
        retry: list[Key] = []
        for key, answer in zip(pending, answers, strict=True):
            if isinstance(answer, RequestFailed):
                reasons[key] = answer.reason if answer.input_refused else f"request failed: {answer.reason}"
                continue
            try:
                rows.append(accept(key, answer))
            except InvalidAnswer as exc:
                reasons[key] = f"invalid answer: {exc}"
                retry.append(key)
                continue
            reasons.pop(key, None)
        pending = retry
    return rows, {key: (name_of(key), reason) for key, reason in reasons.items()}
