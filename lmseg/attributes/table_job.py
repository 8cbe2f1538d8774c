"""The attribute table as an LLM table job, for executors other than the local loop.

:class:`AttributeTableJob` wraps a :class:`~lmseg.attributes.generate.GenerationJob` in the
interface that every executor drives (:class:`lmseg.llm.jobs.LLMTableJob`: rows to do ->
render -> generate -> validate -> append), using the very functions of the local run: the
same provenance check of an existing table, the same instruction, the same validation and
retries, the same atomic writer. Keys are class indices.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from lmseg.attributes.generate import GenerationJob, answer_row, existing_rows, generate_chunk, save_rows
from lmseg.attributes.store import AttributeRow
from lmseg.llm.backends.base import Backend
from lmseg.llm.instruction import ChatMessages
from lmseg.llm.jobs import JobSettings


@dataclass
class AttributeTableJob(JobSettings):
    """The attribute stage of one run, for one model.

    Attributes:
        job: what to generate and where (``job.output`` is the table).
        model_name: the model's name as stored in the ``model`` column.
        rows: the table's rows, by class index (filled by :meth:`pending`, extended by :meth:`save`).
    """

    job: GenerationJob
    model_name: str
    rows: dict[int, AttributeRow] = field(default_factory=dict)

    @property
    def description(self) -> str:
        return f"attributes of {self.job.vocabulary.name} in {self.job.output}"

    def pending(self) -> tuple[list[int], int]:
        """(class indices of this run that the table lacks, how many it has); raises if the table
        was made differently."""
        self.rows = {} if self.job.overwrite else existing_rows(self.job, self.model_name)
        selected = range(len(self.job.vocabulary)) if self.job.class_indices is None else self.job.class_indices
        todo = [i for i in selected if i not in self.rows]
        return todo, len(selected) - len(todo)

    def name_of(self, key: int) -> str:
        return self.job.vocabulary.classes[key].name

    def conversation(self, key: int) -> ChatMessages:
        return self.job.conversation(key)

    def accept(self, key: int, answer: str) -> AttributeRow:
        """The validated row for one answer (raises ``InvalidAnswer``)."""
        return answer_row(self.job, key, answer, self.model_name)

    def generate_batch(
        self, backend: Backend, keys: list[int]
    ) -> tuple[list[AttributeRow], dict[int, tuple[str, str]]]:
        """Render, generate, validate and retry a batch of classes (the local run's chunk step)."""
        return generate_chunk(self.job, backend, keys)

    def save(self, new_rows: Sequence[AttributeRow]) -> None:
        """Add rows to the table and rewrite it atomically."""
        self.rows.update({row.class_index: row for row in new_rows})
        save_rows(self.rows, self.job.output)
