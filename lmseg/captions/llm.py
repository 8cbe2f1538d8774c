"""The LLM stage for captions: noun phrases by a chat model, validated, cached, resumable.

Built on the LLM layer (:mod:`lmseg.llm`): its backends (vLLM in process, or any
OpenAI-compatible server), sampling settings and retry rule (a malformed answer is asked again
with the retry temperature and the next seed: :func:`lmseg.llm.jobs.ask`), its
instructions (default ``instructions/caption_phrases.j2``), atomic Parquet writes and the
per-table lock (:mod:`lmseg.llm.tables`). Results go to the caption-phrase table
(:mod:`lmseg.captions.phrase_table`).

The model answers ``{"phrases": [...]}`` under a JSON schema. An answer is then cleaned
(:func:`lmseg.captions.phrases.clean_phrase`, leading articles removed), and a phrase is
kept only if it has at most ``max_words`` words, every word of it occurs in the caption (no
invented objects), and it is not a duplicate. An answer is invalid (and asked again) when it
is not such a JSON object or when no phrase survives, an empty list included: a caption names
something, and a table row without phrases would train nothing (MGCA's object, region and
pixel losses need phrases). A caption that still has no phrase after the last attempt is
reported failed and is not written, so training parses it with the rule parser
(:class:`lmseg.models.mgca.data.PhraseLookup` falls back to the rules for every caption the
table lacks).
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pyarrow as pa

from lmseg.captions.phrase_table import SCHEMA, PhraseTable, caption_sha256, read_phrase_table, shard_of, shard_prefix
from lmseg.captions.phrases import clean_phrase
from lmseg.errors import LmsegError
from lmseg.llm.backends.base import Backend, SamplingSettings
from lmseg.llm.instruction import ChatMessages, Instruction
from lmseg.llm.jobs import InvalidAnswer, TableReport, ask
from lmseg.llm.tables import exclusive_lock, write_table

log = logging.getLogger(__name__)

DEFAULT_INSTRUCTION = "caption_phrases.j2"  # in instructions/

CaptionKey = tuple[str, str]  # (caption sha256, stripped caption): the table's key, with its text


@dataclass(frozen=True)
class PhraseLimits:
    """Bounds on an answer (in the JSON schema and when cleaning).

    Attributes:
        max_phrases: most phrases kept per caption.
        max_words: most words per phrase.
        max_chars: most characters per phrase.
    """

    max_phrases: int = 8
    max_words: int = 4
    max_chars: int = 40

    def json_schema(self) -> dict[str, Any]:
        """The JSON schema of an answer."""
        item = {"type": "string", "minLength": 1, "maxLength": self.max_chars}
        return {
            "title": "CaptionPhrases",
            "type": "object",
            "properties": {"phrases": {"type": "array", "items": item, "maxItems": self.max_phrases}},
            "required": ["phrases"],
            "additionalProperties": False,
        }


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+(?:'[a-z]+)?", text.lower())


def parse_phrases(text: str, caption: str, limits: PhraseLimits) -> tuple[str, ...]:
    """Validate and clean one raw answer (see the module docstring).

    Returns:
        The clean phrases, at least one.

    Raises:
        InvalidAnswer: not a JSON object with a list ``phrases``, or no phrase of it survives
            (an empty list included).
    """
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidAnswer(f"not valid JSON ({exc.msg}): {text[:80]!r}") from None
    if not isinstance(data, dict) or not isinstance(data.get("phrases"), list):
        raise InvalidAnswer("expected a JSON object with a list 'phrases'")
    own = set(_words(caption))
    kept: list[str] = []
    for item in data["phrases"]:
        phrase = re.sub(r"^(?:(?:a|an|the)\s+)+", "", clean_phrase(item)) if isinstance(item, str) else ""
        words = _words(phrase)
        if (phrase and len(words) <= limits.max_words and len(phrase) <= limits.max_chars
                and all(w in own for w in words) and phrase not in kept):
            kept.append(phrase)
    if not data["phrases"]:
        raise InvalidAnswer("no phrase: the model answered an empty list")
    if not kept:
        raise InvalidAnswer(f"none of the phrases {data['phrases'][:4]} is a short phrase copied from the caption")
    return tuple(kept[: limits.max_phrases])


@dataclass(frozen=True)
class CaptionJob:
    """What to parse and where.

    Attributes:
        instruction: the instruction, the jinja2 message to the LLM (variables ``caption`` and
            ``max_phrases``).
        settings: sampling settings (first attempt and retries).
        limits: bounds on answers.
        output: the table folder.
        shard: ``(index, count)``: this run parses only the captions of that shard; None: all.
        chunk_size: captions sent together and saved as one file.
        max_attempts: tries per caption before it is reported as failed.
    """

    instruction: Instruction
    settings: SamplingSettings
    limits: PhraseLimits
    output: Path
    shard: tuple[int, int] | None = None
    chunk_size: int = 64
    max_attempts: int = 3

    def settings_json(self) -> str:
        """The JSON stored in the ``sampling`` column."""
        return json.dumps({"sampling": asdict(self.settings), "limits": asdict(self.limits)}, sort_keys=True)

    def conversation(self, key: CaptionKey) -> ChatMessages:
        """The rendered instruction of one caption."""
        return self.instruction.render(caption=key[1], max_phrases=self.limits.max_phrases)


def pending_chunks(captions: Iterable[str], job: CaptionJob, done: PhraseTable, report: TableReport
                   ) -> Iterator[list[CaptionKey]]:
    """Chunks of unique (hash, caption) this run owns that the table lacks (the others it owns
    are counted in ``report.skipped``)."""
    chunk: list[CaptionKey] = []
    seen: set[str] = set()
    for caption in captions:
        text = caption.strip()
        sha = caption_sha256(text)
        if not text or sha in seen or (job.shard and shard_of(sha, job.shard[1]) != job.shard[0]):
            continue
        seen.add(sha)
        if sha in done:
            report.skipped += 1
            continue
        chunk.append((sha, text))
        if len(chunk) == job.chunk_size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def check_provenance(job: CaptionJob, model_name: str) -> PhraseTable:
    """The table of ``job.output`` (empty if absent).

    Raises:
        LmsegError: it holds rows made with another model, instruction or sampling settings.
    """
    table = read_phrase_table(job.output)
    ours = (model_name, job.instruction.sha256, job.settings_json())
    other = [p for p in table.provenance if p != ours]
    if other:
        model, instruction, _ = other[0]
        raise LmsegError(
            f"{job.output} holds phrases made another way (model {model!r}, instruction {instruction[:12]}..., or "
            f"other sampling settings); this run uses model {model_name!r}, instruction "
            f"{job.instruction.sha256[:12]}...; "
            "use another --output folder"
        )
    return table


def run_caption_parsing(captions: Iterable[str], job: CaptionJob, backend: Backend) -> TableReport:
    """Parse the captions that the table lacks, a chunk at a time (streamed: the captions may
    come from a generator over tar files).

    Returns:
        What was parsed (``generated``), already present, and failed ((hash, caption) -> (caption, reason)).

    Raises:
        LmsegError: the table was made another way, another run holds this shard's lock, or the
            backend is unavailable (finished chunks are kept).
    """
    report = TableReport()
    start = time.perf_counter()
    with exclusive_lock(lock_path(job)):
        done = check_provenance(job, backend.model_name)
        for chunk in pending_chunks(captions, job, done, report):
            rows, failures = parse_chunk(job, backend, chunk)
            report.failed.update(failures)
            if rows:
                write_chunk(job, rows)
            report.generated += len(rows)
            log.info("saved %d captions (%d failed so far) to %s", report.generated, len(report.failed), job.output)
    report.seconds = time.perf_counter() - start
    return report


def lock_path(job: CaptionJob) -> Path:
    """The lock file of this run's shard of the table (held for the whole run)."""
    return job.output / f"{shard_prefix(job.shard)}.parquet"


def write_chunk(job: CaptionJob, rows: list[dict[str, Any]]) -> Path:
    """Write rows (of :func:`caption_row`) as the next chunk file of this run's shard, atomically."""
    prefix = shard_prefix(job.shard)
    numbers = [int(p.name[len(prefix) + 7:-8]) for p in job.output.glob(f"{prefix}.chunk-*.parquet")]
    chunk_file = job.output / f"{prefix}.chunk-{max(numbers, default=-1) + 1:06d}.parquet"
    write_table(pa.Table.from_pylist(rows, schema=SCHEMA), chunk_file)
    return chunk_file


def caption_row(job: CaptionJob, key: CaptionKey, answer: str, model_name: str) -> dict[str, Any]:
    """The table row of one answer, validated and cleaned (raises ``InvalidAnswer``)."""
    sha, caption = key
    phrases = parse_phrases(answer, caption, job.limits)
    return {"caption_sha256": sha, "caption": caption, "phrases": list(phrases), "model": model_name,
            "instruction_sha256": job.instruction.sha256, "created_at": datetime.now(timezone.utc),
            "sampling": job.settings_json()}


def parse_chunk(job: CaptionJob, backend: Backend, chunk: list[CaptionKey]
                ) -> tuple[list[dict[str, Any]], dict[CaptionKey, tuple[str, str]]]:
    """Ask, validate and retry one chunk of (hash, caption) (:func:`lmseg.llm.jobs.ask`); its
    valid rows and its failures ((hash, caption) -> (caption, last reason))."""
    return ask(backend, chunk, conversation=job.conversation, name_of=lambda key: key[1],
               accept=lambda key, answer: caption_row(job, key, answer, backend.model_name),
               json_schema=job.limits.json_schema(), settings=job.settings, max_attempts=job.max_attempts)
