"""The caption-phrase table as an LLM table job, for executors other than the local loop.

:class:`CaptionTableJob` wraps a :class:`~lmseg.captions.llm.CaptionJob` in the interface that
every executor drives (:class:`lmseg.llm.jobs.LLMTableJob`: rows to do -> render -> generate
-> validate -> append), using the very functions of the local run
(:func:`~lmseg.captions.llm.run_caption_parsing`): the same provenance check of the table,
the same selection of captions (unique, this shard's, not yet in the table), the same
instruction, validation and retries, the same atomic chunk files. A key is ``(caption sha256, caption)``:
the hash is the table's key and the text travels with it, so workers need nothing else.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from lmseg.captions.llm import (
    CaptionJob,
    CaptionKey,
    caption_row,
    check_provenance,
    parse_chunk,
    pending_chunks,
    write_chunk,
)
from lmseg.llm.backends.base import Backend
from lmseg.llm.instruction import ChatMessages
from lmseg.llm.jobs import JobSettings, TableReport


@dataclass
class CaptionTableJob(JobSettings):
    """The caption stage of one run, for one model.

    Attributes:
        job: what to parse and where (``job.output`` is the table folder, ``job.shard`` the shard).
        model_name: the model's name as stored in the ``model`` column.
        captions: the source captions, read once by :meth:`pending` on the driver (a stream is
            not sent to workers: they get the captions in their keys).
    """

    job: CaptionJob
    model_name: str
    captions: Iterable[str] = ()

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "captions": ()}

    @property
    def description(self) -> str:
        return f"caption phrases in {self.job.output}"

    def pending(self) -> tuple[list[CaptionKey], int]:
        """(captions of this run the table lacks, how many it already has); raises if the table
        was made differently."""
        done = check_provenance(self.job, self.model_name)
        counts = TableReport()
        todo = [key for chunk in pending_chunks(self.captions, self.job, done, counts) for key in chunk]
        return todo, counts.skipped

    def name_of(self, key: CaptionKey) -> str:
        return key[1]

    def conversation(self, key: CaptionKey) -> ChatMessages:
        return self.job.conversation(key)

    def accept(self, key: CaptionKey, answer: str) -> dict[str, Any]:
        """The validated row for one answer (raises ``InvalidAnswer``)."""
        return caption_row(self.job, key, answer, self.model_name)

    def generate_batch(
        self, backend: Backend, keys: list[CaptionKey]
    ) -> tuple[list[dict[str, Any]], dict[CaptionKey, tuple[str, str]]]:
        """Render, generate, validate and retry a batch of captions (the local run's chunk step)."""
        return parse_chunk(self.job, backend, keys)

    def save(self, rows: Sequence[dict[str, Any]]) -> None:
        """Write rows as the next chunk file of the table (atomically)."""
        write_chunk(self.job, list(rows))
