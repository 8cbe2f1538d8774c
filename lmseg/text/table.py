"""A stage-1 attribute table as stage 2 uses it: rows by class index, checked against a vocabulary.

Every method takes its table the same way (``attribute_table=`` in Python, ``--attributes``
on the command line, an upload on the web page): a Parquet file written by
``pipelines.gen_prompts``, a mapping class index -> row, or an :class:`AttributeTable`.
:func:`open_attribute_table` reads it once; :meth:`AttributeTable.rows_for` checks it against
the vocabulary of a request. The rule, for every method and front end: each row's class index
lies inside the vocabulary and its ``class_name`` is the vocabulary's primary name at that
index (case and surrounding spaces aside). Classes without a row are allowed (they keep the
method's own prompts); so is a table without rows (every class keeps them). The vocabulary's
*name* is not compared: the same classes typed on the command line, listed in a file or
picked on the web page have different names but the same table.

A row is anything with ``class_name``, ``colour``, ``shape`` and ``texture`` attributes
(:class:`lmseg.attributes.store.AttributeRow`).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from lmseg.errors import LmsegError
from lmseg.vocab import Vocabulary

__all__ = ["AttributeTable", "TableInput", "check_rows", "open_attribute_table", "table_sha256"]


def table_sha256(rows: Mapping[int, object] | None) -> str:
    """Content hash of attribute rows (class index, name, colour, shape, texture); None hashes as no rows."""
    content = []
    for i in sorted(rows or {}):
        r = rows[i]
        content.append([int(i), str(r.class_name), list(r.colour), list(r.shape), list(r.texture)])
    return hashlib.sha256(json.dumps(content, ensure_ascii=False).encode()).hexdigest()


def check_rows(vocabulary: Vocabulary, rows: Mapping[int, object], *, source: str | None = None) -> None:
    """Refuse rows that do not belong to ``vocabulary`` (see the module docstring for the rule).

    Args:
        source: where the rows come from, added to the message (a file name).

    Raises:
        LmsegError: a row's index lies outside the vocabulary, or its class name is not the
            vocabulary's name at that index (a table of another vocabulary or class order).
    """
    where = f" ({source})" if source else ""
    outside = sorted(i for i in rows if not 0 <= int(i) < len(vocabulary))
    if outside:
        raise LmsegError(f"the attribute table{where} has class indices {outside[:5]} outside the vocabulary "
                         f"{vocabulary.name!r} of {len(vocabulary)} classes: it belongs to another vocabulary")
    for index in sorted(rows):
        name, expected = str(getattr(rows[index], "class_name")), vocabulary.classes[int(index)].name
        if name.strip().lower() != expected.strip().lower():
            raise LmsegError(
                f"attribute table row {index} is for {name!r} but class {index} of {vocabulary.name!r} is "
                f"{expected!r}: the table{where} belongs to another vocabulary or class order"
            )


@dataclass(frozen=True)
class AttributeTable:
    """Attribute rows read once, with where they came from.

    Attributes:
        rows: class index -> row.
        source: the file it was read from, or ``"in-memory table of N classes"`` (for reports).
        sha256: :func:`table_sha256` of the rows (the cache and memo key).
    """

    rows: Mapping[int, object]
    source: str
    sha256: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "sha256", table_sha256(self.rows))

    def rows_for(self, vocabulary: Vocabulary) -> Mapping[int, object]:
        """The rows, after :func:`check_rows` against ``vocabulary``."""
        check_rows(vocabulary, self.rows, source=self.source)
        return self.rows


TableInput = str | os.PathLike[str] | Mapping[int, object] | AttributeTable | None


def open_attribute_table(table: TableInput) -> AttributeTable | None:
    """Read ``table`` once: a stage-1 Parquet file, a mapping class index -> row, an
    :class:`AttributeTable` (returned as it is), or None (no table).

    Raises:
        LmsegError: the file is missing, unreadable, or not an lmseg attribute table.
    """
    if table is None or isinstance(table, AttributeTable):
        return table
    if isinstance(table, Mapping):
        return AttributeTable(dict(table), f"in-memory table of {len(table)} classes")
    from lmseg.attributes.store import read_table, table_to_rows

    rows = table_to_rows(read_table(Path(os.fspath(table))))
    return AttributeTable({row.class_index: row for row in rows}, os.fspath(table))
