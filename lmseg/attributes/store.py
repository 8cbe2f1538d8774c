"""The attribute table on disk: one Parquet file, one row per class.

Columns (a fixed interface that later stages rely on):

    dataset          string              vocabulary name
    class_index      int32               index of the class in the vocabulary
    class_name       string              primary name
    colour           list<string>        clean phrases, non-empty
    shape            list<string>
    texture          list<string>
    model            string              model that wrote the row
    instruction_sha256 string            sha256 of the instruction's text (the jinja2 message
                                         to the LLM), or of the scoring definition
    created_at       timestamp[us, UTC]
    sampling         string              JSON of the method's settings (sampling or scoring)
    method           string              how the row was made: ``generate`` (free generation
                                         constrained by a JSON schema) or ``scored``
                                         (candidate words ranked by calibrated
                                         log-probability, ``lmseg.attributes.scoring``)

The schema version is in the file metadata under ``lmseg.schema_version``. Older tables are
still read, resumed and merged, and come back as version 3: version 1 tables (before the
``method`` column; every row of them was made by ``generate``) with that column added, and
versions 1 and 2 (before ``template_sha256`` was renamed ``instruction_sha256``) with the
column under its new name (:func:`lmseg.llm.tables.read_parquet`). Rows are sorted by
``class_index``. The table is written as every LLM table is
(:func:`lmseg.llm.tables.write_table`: atomically, so a reader sees the old table or the new
one, never half of one).

Errors of :func:`read_table` state what is wrong with the file, not what to do about it: the
command that reads the table adds the advice that fits it (``gen_prompts``: ``--overwrite``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pyarrow as pa

from lmseg.attributes.answer import GROUPS
from lmseg.errors import LmsegError
from lmseg.llm.tables import read_parquet, write_table

__all__ = ["SCHEMA", "SCHEMA_VERSION", "AttributeRow", "read_table", "rows_to_table", "table_to_rows", "write_table"]

SCHEMA_VERSION = "3"
_VERSION_KEY = b"lmseg.schema_version"

_V1_FIELDS = [
        pa.field("dataset", pa.string(), nullable=False),
        pa.field("class_index", pa.int32(), nullable=False),
        pa.field("class_name", pa.string(), nullable=False),
        pa.field("colour", pa.list_(pa.string()), nullable=False),
        pa.field("shape", pa.list_(pa.string()), nullable=False),
        pa.field("texture", pa.list_(pa.string()), nullable=False),
        pa.field("model", pa.string(), nullable=False),
        pa.field("instruction_sha256", pa.string(), nullable=False),
        pa.field("created_at", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("sampling", pa.string(), nullable=False),
]
_METHOD_FIELD = pa.field("method", pa.string(), nullable=False)
SCHEMA = pa.schema([*_V1_FIELDS, _METHOD_FIELD], metadata={_VERSION_KEY: SCHEMA_VERSION.encode()})
_V1_SCHEMA = pa.schema(_V1_FIELDS)


@dataclass(frozen=True)
class AttributeRow:
    """One row of the table (see the module docstring for the meaning of each field)."""

    dataset: str
    class_index: int
    class_name: str
    colour: tuple[str, ...]
    shape: tuple[str, ...]
    texture: tuple[str, ...]
    model: str
    instruction_sha256: str
    created_at: datetime
    sampling: str
    method: str = "generate"


def rows_to_table(rows: Sequence[AttributeRow]) -> pa.Table:
    """Build a table with the fixed schema, sorted by class index."""
    ordered = sorted(rows, key=lambda r: r.class_index)
    columns = {name: [getattr(r, name) for r in ordered] for name in SCHEMA.names}
    for group in GROUPS:
        columns[group] = [list(v) for v in columns[group]]
    return pa.Table.from_pydict(columns, schema=SCHEMA)


def table_to_rows(table: pa.Table) -> list[AttributeRow]:
    """The rows of a table read with :func:`read_table`."""
    return [
        AttributeRow(**{**row, "colour": tuple(row["colour"]), "shape": tuple(row["shape"]),
                        "texture": tuple(row["texture"])})
        for row in table.to_pylist()
    ]


def read_table(path: str | Path) -> pa.Table:
    """Read and check an attribute table.

    Raises:
        LmsegError: the file is missing, not a readable Parquet file, has another schema or
            schema version, or has repeated class indices.
    """
    path = Path(path)
    if not path.exists():
        raise LmsegError(f"attribute table {path} does not exist")
    try:
        # Through one open file, so that a writer renaming a new table over the path meanwhile
        # cannot mix the old file's size with the new file's bytes (pyarrow stats, then opens).
        with open(path, "rb") as handle:
            table = read_parquet(handle)
    except (pa.ArrowException, OSError) as exc:
        raise LmsegError(f"attribute table {path} is corrupt or not a Parquet file ({exc})") from None
    version = (table.schema.metadata or {}).get(_VERSION_KEY)
    if version is None:
        raise LmsegError(f"{path} is a Parquet file but not an lmseg attribute table (no schema version)")
    expected = {"1": _V1_SCHEMA, "2": SCHEMA, SCHEMA_VERSION: SCHEMA}.get(version.decode())
    if expected is None:
        raise LmsegError(
            f"attribute table {path} has schema version {version.decode()}, this lmseg reads versions 1 to "
            f"{SCHEMA_VERSION}"
        )
    if not table.schema.equals(expected, check_metadata=False):
        raise LmsegError(
            f"attribute table {path} does not have the expected columns/types:\n  found    {table.schema}\n"
            f"  expected {expected}"
        )
    if expected is _V1_SCHEMA:  # every version-1 row was made by free generation
        table = table.append_column(_METHOD_FIELD, pa.array(["generate"] * table.num_rows, pa.string()))
    table = table.replace_schema_metadata(SCHEMA.metadata)  # an older table comes back as the current version
    indices = table.column("class_index").to_pylist()
    if len(set(indices)) != len(indices):
        raise LmsegError(f"attribute table {path} lists some class index more than once")
    return table
