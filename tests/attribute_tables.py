"""Stage-1 attribute tables for tests, written by the real store (hand-made rows, no LLM)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path


def write_attribute_table(path: Path, names: Mapping[int, str], *, colour: Sequence[str] = ("orange", "black"),
                          shape: Sequence[str] = ("round",), texture: Sequence[str] = ("fur",)) -> Path:
    """A Parquet table at ``path`` with one row per ``class index -> class name`` (every row
    the same phrases); an empty mapping writes a table without rows."""
    from lmseg.attributes.store import AttributeRow, rows_to_table, write_table

    rows = [AttributeRow("test", i, name, tuple(colour), tuple(shape), tuple(texture), "hand-written", "0" * 64,
                         datetime(2026, 1, 1, tzinfo=timezone.utc), "{}") for i, name in sorted(names.items())]
    write_table(rows_to_table(rows), path)
    return path
