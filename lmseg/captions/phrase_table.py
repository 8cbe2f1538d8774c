"""The caption-phrase table: LLM noun phrases per caption, keyed by the caption's sha256.

The table is a folder of Parquet files with one schema (pyarrow reads the folder as one
table; a folder begun before the column rename below and resumed since holds files of both
schema versions, which :func:`read_phrase_table` reads alike). Every chunk a run finishes is
written as a new file, atomically (temporary file, fsync, rename:
:func:`lmseg.llm.tables.write_table`), so a run interrupted in any way keeps every finished
chunk and the next run parses only the captions not yet in the folder.
Shard ``k`` of ``n`` (captions whose hash, as a number, is ``k`` modulo ``n``) writes files
named ``shard-KKK-of-NNN.chunk-*.parquet``: several machines can fill one folder, each
holding a lock for its own shard only, and no merge step is needed.

Columns:

    caption_sha256   string         sha256 of the stripped caption (UTF-8), hex
    caption          string         the stripped caption
    phrases          list<string>   clean noun phrases, may be empty (no visible thing)
    model            string         model that wrote the row
    instruction_sha256 string       sha256 of the instruction's text (the jinja2 message to the LLM)
    created_at       timestamp[us, UTC]
    sampling         string         JSON of the sampling settings and limits

Schema version 1 named ``instruction_sha256`` ``template_sha256``; its files are read with the
column under the new name (:func:`lmseg.llm.tables.read_parquet`), so an old folder is read and
resumed as it is.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pyarrow as pa

from lmseg.errors import LmsegError
from lmseg.llm.tables import read_parquet, read_parquet_schema

SCHEMA_VERSION = "2"
_READ_VERSIONS = ("1", SCHEMA_VERSION)  # version 1: template_sha256, read as instruction_sha256
_VERSION_KEY = b"lmseg.caption_phrases_version"

SCHEMA = pa.schema(
    [
        pa.field("caption_sha256", pa.string(), nullable=False),
        pa.field("caption", pa.string(), nullable=False),
        pa.field("phrases", pa.list_(pa.string()), nullable=False),
        pa.field("model", pa.string(), nullable=False),
        pa.field("instruction_sha256", pa.string(), nullable=False),
        pa.field("created_at", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("sampling", pa.string(), nullable=False),
    ],
    metadata={_VERSION_KEY: SCHEMA_VERSION.encode()},
)

PROVENANCE = ("model", "instruction_sha256", "sampling")


def caption_sha256(caption: str) -> str:
    """The key of a caption: hex sha256 of its stripped UTF-8 text."""
    return hashlib.sha256(caption.strip().encode("utf-8")).hexdigest()


def shard_of(sha: str, num_shards: int) -> int:
    """The shard (0-based) that owns a caption hash."""
    return int(sha[:16], 16) % num_shards


def shard_prefix(shard: tuple[int, int] | None) -> str:
    """File-name prefix of a shard's chunk files (``shard-000-of-001`` for a whole run)."""
    index, count = shard or (0, 1)
    return f"shard-{index:03d}-of-{count:03d}"


_PHRASE_SEP, _KEY_HEX = "\x1f", 16  # phrases are joined by a unit separator; keys are 16 hex digits


def _key(sha: str) -> int:
    return int(sha[:_KEY_HEX], 16)


class PhraseTable:
    """A loaded table in compact form: caption hash -> phrases, and how the rows were made.

    The rows are held as a sorted ``uint64`` array of hash prefixes (64 bits of the sha256), an
    ``int64`` offset array and one string of all phrases, about 16 bytes per caption plus the
    phrase text (CC3M's ~3M captions: roughly 150 MB, shared by forked loader workers), instead
    of a Python dict of tuples (several hundred bytes per caption).

    Args:
        rows: (caption sha256, phrases) pairs; a later row replaces an earlier one.
        provenance: the distinct ``(model, instruction_sha256, sampling)`` of the rows.
    """

    def __init__(self, rows: list[tuple[str, tuple[str, ...]]], provenance: frozenset[tuple[str, str, str]]) -> None:
        by_key = {_key(sha): _PHRASE_SEP.join(phrases) for sha, phrases in rows}
        order = sorted(by_key)
        self.keys = np.array(order, dtype=np.uint64)
        texts = [by_key[k] for k in order]
        self.offsets = np.cumsum([0] + [len(t) for t in texts], dtype=np.int64)
        self.blob = "".join(texts)
        self.provenance = provenance

    def __len__(self) -> int:
        return len(self.keys)

    def __contains__(self, sha: str) -> bool:
        return self._index(sha) is not None

    def _index(self, sha: str) -> int | None:
        key = np.uint64(_key(sha))
        i = int(np.searchsorted(self.keys, key))
        return i if i < len(self.keys) and self.keys[i] == key else None

    def get_sha(self, sha: str) -> tuple[str, ...] | None:
        """The phrases of the caption with this sha256, or None when the table lacks it."""
        i = self._index(sha)
        if i is None:
            return None
        text = self.blob[self.offsets[i]:self.offsets[i + 1]]
        return tuple(text.split(_PHRASE_SEP)) if text else ()

    def get(self, caption: str) -> tuple[str, ...] | None:
        """The phrases of ``caption``, or None when the table does not have it."""
        return self.get_sha(caption_sha256(caption))

    def as_dict(self) -> dict[int, tuple[str, ...]]:
        """hash prefix -> phrases (for inspection and tests)."""
        return {int(k): tuple(t.split(_PHRASE_SEP)) if t else ()
                for k, t in zip(self.keys, (self.blob[a:b] for a, b in zip(self.offsets[:-1], self.offsets[1:])))}


def part_files(folder: Path) -> list[Path]:
    """The table's Parquet files, sorted."""
    return sorted(folder.glob("*.parquet")) if folder.is_dir() else []


def read_phrase_table(folder: str | Path, *, columns: tuple[str, ...] = ("caption_sha256", "phrases", *PROVENANCE)
                      ) -> PhraseTable:
    """Read every part file of the table folder (an absent folder is an empty table).

    Raises:
        LmsegError: a file that is not a caption-phrase table of this schema version.
    """
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise LmsegError(f"caption-phrase table {folder} must be a folder of Parquet files")
    rows: list[tuple[str, tuple[str, ...]]] = []
    provenance: set[tuple[str, str, str]] = set()
    for path in part_files(folder):
        try:
            schema = read_parquet_schema(path)
            table = read_parquet(path, columns)
        except (pa.ArrowException, OSError) as exc:
            raise LmsegError(f"{path} is corrupt or not Parquet ({exc!s:.200}); move it away and re-run") from None
        version = (schema.metadata or {}).get(_VERSION_KEY)
        if version is None or version.decode() not in _READ_VERSIONS or not schema.equals(SCHEMA, check_metadata=False):
            raise LmsegError(f"{path} is not a caption-phrase table of schema version {' or '.join(_READ_VERSIONS)}; "
                             "move it away")
        data = table.to_pydict()
        rows.extend((sha, tuple(values)) for sha, values in zip(data["caption_sha256"], data["phrases"]))
        provenance.update(zip(*(data[c] for c in PROVENANCE)))
    return PhraseTable(rows, frozenset(provenance))
