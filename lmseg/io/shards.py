"""Splitting work across machines: one rule for attributes, evaluation and segmentation.

Shard ``i`` of ``n`` owns the contiguous block ``[i * N // n, (i + 1) * N // n)`` of the ``N``
items (vocabulary classes, selected samples, images in sorted order): the blocks cover every
item exactly once and differ in size by at most one. Every command takes the shard as
``--shard-index I --num-shards N`` and checks it with :func:`shard_from_args`.
"""

from __future__ import annotations

from lmseg.errors import LmsegError

__all__ = ["shard_from_args", "shard_range"]


def shard_from_args(index: int | None, count: int | None) -> tuple[int, int] | None:
    """``(index, count)`` from ``--shard-index`` / ``--num-shards``, or None when neither is given.

    Raises:
        LmsegError: only one of them is given, ``count < 1``, or ``index`` outside ``0..count-1``.
    """
    if index is None and count is None:
        return None
    if index is None or count is None:
        raise LmsegError("give both --shard-index and --num-shards (or neither)")
    if count < 1 or not 0 <= index < count:
        raise LmsegError(f"--shard-index must be in 0..{count - 1} for --num-shards {count}, got {index}"
                         if count >= 1 else f"--num-shards must be at least 1, got {count}")
    return index, count


def shard_range(num_items: int, index: int, count: int) -> range:
    """The item indices owned by shard ``index`` of ``count`` (see the module docstring).

    Raises:
        LmsegError: a bad shard (as :func:`shard_from_args`).
    """
    shard_from_args(index, count)
    return range(index * num_items // count, (index + 1) * num_items // count)
