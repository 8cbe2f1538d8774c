"""Reading attribute tables back: the entry point for training and evaluation code.

A table written with ``--output FILE`` is read with ``path=FILE`` (``dataset`` is still
checked against the rows; ``model`` only picks the default path and may be anything then).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa

from lmseg.attributes.answer import GROUPS
from lmseg.attributes.store import AttributeRow, read_table, table_to_rows
from lmseg.errors import LmsegError
from lmseg.paths import attribute_table_path

if TYPE_CHECKING:  # pandas is loaded by ``to_pandas`` when a frame is asked for, not by every model import
    import pandas as pd


def load_attribute_table(dataset: str, model: str, *, path: str | Path | None = None) -> pa.Table:
    """The attribute table of a vocabulary written by a model.

    Args:
        dataset: vocabulary name (``ade150``, ``custom-1a2b3c4d``, ...).
        model: the model's name as stored (``SmolLM2-135M-Instruct``, ``Qwen/Qwen2.5-7B-Instruct``).
        path: read this file instead of the default ``cache/attributes/<dataset>/<model-slug>.parquet``.

    Returns:
        The table (schema in ``lmseg.attributes.store``), rows sorted by ``class_index``.

    Raises:
        LmsegError: the table is missing, corrupt, of another schema, or of another dataset.
    """
    table_path = Path(path) if path is not None else attribute_table_path(dataset, model)
    table = read_table(table_path)
    datasets = set(table.column("dataset").to_pylist())
    if datasets - {dataset}:
        raise LmsegError(f"{table_path} holds attributes of {sorted(datasets)}, not {dataset!r}")
    return table


def load_attributes(dataset: str, model: str, *, path: str | Path | None = None) -> dict[int, AttributeRow]:
    """The rows of :func:`load_attribute_table`, keyed by class index (absent classes are missing keys)."""
    return {row.class_index: row for row in table_to_rows(load_attribute_table(dataset, model, path=path))}


def attribute_frame(table: pa.Table) -> pd.DataFrame:
    """A table as a pandas DataFrame: one row per class, the groups as tuples of phrases.

    Use it on :func:`load_attribute_table`'s result (or ``store.read_table``'s)::

        frame = attribute_frame(load_attribute_table("ade847", "SmolLM2-135M-Instruct", path=table))
    """
    frame = table.to_pandas(use_threads=False)  # no Arrow thread pool (lmseg.llm.tables.read_parquet)
    for group in GROUPS:
        frame[group] = [tuple(phrases) for phrases in frame[group]]
    return frame


def load_attribute_frame(dataset: str, model: str, *, path: str | Path | None = None) -> pd.DataFrame:
    """:func:`load_attribute_table` as a pandas DataFrame (see :func:`attribute_frame`)."""
    return attribute_frame(load_attribute_table(dataset, model, path=path))
