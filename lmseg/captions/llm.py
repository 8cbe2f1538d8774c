"""The LLM stage for captions: noun phrases by a chat model, validated, cached, resumable.

It reuses stage 1's machinery: the backends (:mod:`lmseg.llm.backends`: vLLM in
process, or any OpenAI-compatible server), its sampling settings and retry rule (a malformed
answer is asked again with the retry temperature and the next seed), the jinja2 prompt
templates (:class:`~lmseg.llm.prompt.PromptTemplate`, default
``prompts/caption_phrases.j2``), atomic Parquet writes and the per-table lock
(:mod:`lmseg.attributes.store`). Results go to the caption-phrase table
(:mod:`lmseg.captions.phrase_table`).

The model answers ``{"phrases": [...]}`` under a JSON schema. An answer is then cleaned
(:func:`lmseg.captions.phrases.clean_phrase`, leading articles removed), and a phrase is
kept only if it has at most ``max_words`` words, every word of it occurs in the caption (no
invented objects), and it is not a duplicate. An answer is invalid (and retried) when it is
not such a JSON object, or when it listed phrases but none survived; an empty list is a valid
answer (a caption that names nothing visible).
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path
from typing import Any

import pyarrow as pa

from lmseg.llm.backends.base import Backend, BackendUnavailable, RequestFailed, SamplingSettings
from lmseg.llm.prompt import ChatMessages, PromptTemplate, load_template
from lmseg.attributes.store import exclusive_lock, write_table
from lmseg.captions.phrase_table import SCHEMA, PhraseTable, caption_sha256, read_phrase_table, shard_of, shard_prefix
from lmseg.captions.phrases import clean_phrase
from lmseg.errors import LmsegError

log = logging.getLogger(__name__)

DEFAULT_TEMPLATE = "caption_phrases.j2"


class InvalidPhrases(ValueError):
    """The model's answer cannot be used; the message says why."""


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

    Raises:
        InvalidPhrases: not a JSON object with a list ``phrases``, or no listed phrase survives.
    """
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidPhrases(f"not valid JSON ({exc.msg}): {text[:80]!r}") from None
    if not isinstance(data, dict) or not isinstance(data.get("phrases"), list):
        raise InvalidPhrases("expected a JSON object with a list 'phrases'")
    own = set(_words(caption))
    kept: list[str] = []
    for item in data["phrases"]:
        phrase = re.sub(r"^(?:(?:a|an|the)\s+)+", "", clean_phrase(item)) if isinstance(item, str) else ""
        words = _words(phrase)
        if (phrase and len(words) <= limits.max_words and len(phrase) <= limits.max_chars
                and all(w in own for w in words) and phrase not in kept):
            kept.append(phrase)
    if data["phrases"] and not kept:
        raise InvalidPhrases(f"none of the phrases {data['phrases'][:4]} is a short phrase copied from the caption")
    return tuple(kept[: limits.max_phrases])


def default_template() -> PromptTemplate:
    """``prompts/caption_phrases.j2``."""
    text = (resources.files("prompts") / DEFAULT_TEMPLATE).read_text(encoding="utf-8")
    return PromptTemplate(f"prompts/{DEFAULT_TEMPLATE}", text)


def template_from(path: str | Path | None) -> PromptTemplate:
    """The given template file, or the default one."""
    return default_template() if path is None else load_template(path)


@dataclass(frozen=True)
class CaptionJob:
    """What to parse and where.

    Attributes:
        template: the prompt template (variables ``caption`` and ``max_phrases``).
        settings: sampling settings (first attempt and retries).
        limits: bounds on answers.
        output: the table folder.
        shard: ``(index, count)``: this run parses only the captions of that shard; None: all.
        chunk_size: captions sent together and saved as one file.
        max_attempts: tries per caption before it is reported as failed.
    """

    template: PromptTemplate
    settings: SamplingSettings
    limits: PhraseLimits
    output: Path
    shard: tuple[int, int] | None = None
    chunk_size: int = 64
    max_attempts: int = 3

    def settings_json(self) -> str:
        """The JSON stored in the ``sampling`` column."""
        return json.dumps({"sampling": asdict(self.settings), "limits": asdict(self.limits)}, sort_keys=True)


@dataclass
class CaptionReport:
    """What a run did: parsed, already present, failed (hash -> (caption, reason)), seconds."""

    parsed: int = 0
    skipped: int = 0
    failed: dict[str, tuple[str, str]] = field(default_factory=dict)
    seconds: float = 0.0


def pending_chunks(captions: Iterable[str], job: CaptionJob, done: PhraseTable, report: CaptionReport
                   ) -> Iterator[list[tuple[str, str]]]:
    """Chunks of unique (hash, caption) this run owns that the table lacks (the others it owns
    are counted in ``report.skipped``)."""
    chunk: list[tuple[str, str]] = []
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
        LmsegError: it holds rows made with another model, template or sampling settings.
    """
    table = read_phrase_table(job.output)
    ours = (model_name, job.template.sha256, job.settings_json())
    other = [p for p in table.provenance if p != ours]
    if other:
        model, template, _ = other[0]
        raise LmsegError(
            f"{job.output} holds phrases made another way (model {model!r}, template {template[:12]}..., or other "
            f"sampling settings); this run uses model {model_name!r}, template {job.template.sha256[:12]}...; "
            "use another --output folder"
        )
    return table


def run_caption_parsing(captions: Iterable[str], job: CaptionJob, backend: Backend) -> CaptionReport:
    """Parse the captions that the table lacks, a chunk at a time (streamed: the captions may
    come from a generator over shards).

    Raises:
        LmsegError: the table was made another way, another run holds this shard's lock, or the
            backend is unavailable (finished chunks are kept).
    """
    report = CaptionReport()
    start = time.perf_counter()
    with exclusive_lock(lock_path(job)):
        done = check_provenance(job, backend.model_name)
        for chunk in pending_chunks(captions, job, done, report):
            rows, failures = parse_chunk(job, backend, chunk)
            report.failed.update(failures)
            if rows:
                write_chunk(job, rows)
            report.parsed += len(rows)
            log.info("saved %d captions (%d failed so far) to %s", report.parsed, len(report.failed), job.output)
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


def caption_row(job: CaptionJob, sha: str, caption: str, answer: str, model_name: str) -> dict[str, Any]:
    """The table row of one answer, validated and cleaned (raises ``InvalidPhrases``)."""
    phrases = parse_phrases(answer, caption, job.limits)
    return {"caption_sha256": sha, "caption": caption, "phrases": list(phrases), "model": model_name,
            "template_sha256": job.template.sha256, "created_at": datetime.now(timezone.utc),
            "sampling": job.settings_json()}


def conversation(job: CaptionJob, caption: str) -> ChatMessages:
    """The rendered prompt of one (stripped) caption."""
    return job.template.render_variables(caption=caption, max_phrases=job.limits.max_phrases)


def parse_chunk(job: CaptionJob, backend: Backend, chunk: list[tuple[str, str]]
                ) -> tuple[list[dict[str, Any]], dict[str, tuple[str, str]]]:
    """Ask, validate and retry one chunk of (hash, caption); its valid rows and its failures
    (hash -> (caption, last reason))."""
    captions = dict(chunk)
    conversations = {sha: conversation(job, text) for sha, text in chunk}
    reasons: dict[str, str] = {}
    rows: list[dict[str, Any]] = []
    pending = [sha for sha, _ in chunk]
    for attempt in range(job.max_attempts):
        if not pending:
            break
        answers = backend.generate([conversations[s] for s in pending], job.limits.json_schema(), job.settings, attempt)
        if attempt == 0 and all(isinstance(a, RequestFailed) for a in answers):
            raise BackendUnavailable(f"every request to the model failed; last error: {answers[-1].reason}")
        retry = []
        for sha, answer in zip(pending, answers, strict=True):
            if isinstance(answer, RequestFailed):
                reasons[sha] = f"request failed: {answer.reason}"
                continue
            try:
                rows.append(caption_row(job, sha, captions[sha], answer, backend.model_name))
            except InvalidPhrases as exc:
                reasons[sha] = f"invalid answer: {exc}"
                retry.append(sha)
                continue
            reasons.pop(sha, None)
        pending = retry
    return rows, {sha: (captions[sha], why) for sha, why in reasons.items()}
