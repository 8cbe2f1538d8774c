"""Checks that a generated attribute table is complete, well-typed and clean; tables as older lmseg wrote them."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from lmseg.attributes.answer import AnswerLimits, clean_phrase, phrase_words
from lmseg.attributes.generate import DEFAULT_INSTRUCTION
from lmseg.attributes.scoring import ScoringMethod
from lmseg.attributes.store import SCHEMA, read_table, table_to_rows
from lmseg.llm.instruction import load_instruction
from lmseg.vocab import Vocabulary


def check_table(path: Path, vocabulary: Vocabulary, model: str, *, indices: list[int] | None = None,
                method: str = "generate") -> None:
    """Assert that ``path`` holds clean attributes for ``indices`` (default: every class), made by ``method``."""
    table = read_table(path)
    assert table.schema.equals(SCHEMA)
    assert table.schema.metadata[b"lmseg.schema_version"] == SCHEMA.metadata[b"lmseg.schema_version"]
    rows = table_to_rows(table)
    expected = list(range(len(vocabulary))) if indices is None else indices
    assert [r.class_index for r in rows] == expected
    limits = AnswerLimits()
    now = datetime.now(timezone.utc)
    for row in rows:
        entry = vocabulary.classes[row.class_index]
        assert row.dataset == vocabulary.name and row.class_name == entry.name
        default = load_instruction(None, default=DEFAULT_INSTRUCTION)
        recipe = default.sha256 if method == "generate" else ScoringMethod().sha256
        assert row.model == model and row.method == method and row.instruction_sha256 == recipe
        assert now - timedelta(hours=1) < row.created_at <= now
        own_words = {w for n in entry.names for w in phrase_words(clean_phrase(n))}
        for group in (row.colour, row.shape, row.texture):
            assert 1 <= len(group) <= limits.max_items
            assert len(set(group)) == len(group)
            for phrase in group:
                assert phrase == clean_phrase(phrase) and phrase  # lower case, trimmed, non-empty
                assert len(phrase) <= limits.max_chars and len(phrase_words(phrase)) <= limits.max_words
                assert not set(phrase_words(phrase)) <= own_words | {"a", "an", "the", "of"}


def write_before_the_rename(table: pa.Table, path: Path, version: str) -> None:
    """Write an attribute table (of :func:`~lmseg.attributes.store.rows_to_table`) as lmseg wrote
    schema ``version`` "1" or "2": with the column ``template_sha256`` (renamed
    ``instruction_sha256`` in version 3), and version 1 without the ``method`` column."""
    if version == "1":
        table = table.drop_columns(["method"])
    names = ["template_sha256" if name == "instruction_sha256" else name for name in table.column_names]
    pq.write_table(table.rename_columns(names).replace_schema_metadata({b"lmseg.schema_version": version.encode()}),
                   path)
    assert "template_sha256" in pq.read_schema(path).names
