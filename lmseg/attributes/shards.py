"""Splitting a vocabulary across machines, and merging the parts into one table.

Shard ``k`` of ``n`` owns the contiguous block of class indices
``[k * C // n, (k + 1) * C // n)`` of a vocabulary of ``C`` classes (the project's one shard
rule, :func:`lmseg.io.shards.shard_range`). Each shard writes its own
part file; :func:`merge_shards` checks that the parts were made the same way and cover the
vocabulary exactly, then writes the whole table.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from lmseg.attributes.store import read_table, rows_to_table, table_to_rows, write_table
from lmseg.errors import LmsegError
from lmseg.vocab import Vocabulary


def merge_shards(vocabulary: Vocabulary, parts: list[Path], output: Path) -> int:
    """Merge shard part files into the table at ``output``.

    Args:
        vocabulary: the vocabulary the parts were generated for.
        parts: the part files, one per shard, in shard order.
        output: the merged table (written atomically).

    Returns:
        The number of rows written.

    Raises:
        LmsegError: a part is missing, unreadable, made another way than the others, or a
            class is missing or present twice.
    """
    missing_parts = [str(p) for p in parts if not p.exists()]
    if missing_parts:
        raise LmsegError(f"cannot merge: missing shard part(s): {', '.join(missing_parts)}")
    rows = [row for k, part in enumerate(parts) for row in table_to_rows(_read_part(part, k))]
    provenance = {(r.dataset, r.model, r.method, r.instruction_sha256, r.sampling) for r in rows}
    if len(provenance) > 1:
        raise LmsegError(
            "cannot merge: the shard parts were made with different datasets, models, methods, instructions or "
            f"settings: {sorted((d, m, how, t[:12]) for d, m, how, t, _ in provenance)}"
        )
    seen = [r.class_index for r in rows]
    wrong = [r.class_index for r in rows if r.dataset != vocabulary.name
             or r.class_index >= len(vocabulary) or r.class_name != vocabulary.names[r.class_index]]
    if wrong:
        raise LmsegError(f"cannot merge: rows {wrong[:10]} do not match vocabulary {vocabulary.name!r}")
    if len(set(seen)) != len(seen):
        raise LmsegError("cannot merge: some classes appear in more than one shard part")
    absent = sorted(set(range(len(vocabulary))) - set(seen))
    if absent:
        names = ", ".join(vocabulary.names[i] for i in absent[:10])
        raise LmsegError(
            f"cannot merge: {len(absent)} classes have no attributes yet (e.g. {names}); "
            "finish or re-run the shards that own them"
        )
    write_table(rows_to_table(rows), output)
    return len(rows)


def _read_part(part: Path, index: int) -> pa.Table:
    """One part file; an unreadable one says which shard to run again."""
    try:
        return read_table(part)
    except LmsegError as exc:
        raise LmsegError(f"cannot merge: {exc}; run that shard again (--shard-index {index} --overwrite)") from None
