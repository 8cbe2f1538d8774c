"""Decoding inputs in worker processes while the main process runs the model.

Evaluation (images + labels) and segmentation (image files) both read their inputs through
:func:`decode_in_workers`: a torch ``DataLoader`` over the items with ``num_workers``
processes and a small prefetch, so decoding overlaps inference and memory stays flat. An item
that cannot be decoded comes back as a :class:`DecodeFailure` (its message) instead of
stopping the loader; the caller decides whether that ends the run (evaluation) or is
reported and skipped (segmentation).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from lmseg.errors import LmsegError

__all__ = ["DecodeFailure", "decode_in_workers"]

Item = TypeVar("Item")
Decoded = TypeVar("Decoded")


@dataclass(frozen=True)
class DecodeFailure:
    """An item that could not be decoded: the :class:`~lmseg.errors.LmsegError` message."""

    message: str


class _Decoder(Generic[Item, Decoded]):
    """Map-style dataset: position -> ``(position, decode(items[position]) or DecodeFailure)``."""

    def __init__(self, items: Sequence[Item], decode: Callable[[Item], Decoded]) -> None:
        self.items, self.decode = list(items), decode

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, position: int) -> tuple[int, Decoded | DecodeFailure]:
        try:
            return position, self.decode(self.items[position])
        except LmsegError as exc:
            return position, DecodeFailure(str(exc))


def _as_list(batch: list[Any]) -> list[Any]:
    return list(batch)


def decode_in_workers(
    items: Sequence[Item], decode: Callable[[Item], Decoded], *, num_workers: int = 2, batch_size: int = 1,
    prefetch_factor: int = 2,
) -> Iterator[tuple[int, Decoded | DecodeFailure]]:
    """Yield ``(position, decoded or DecodeFailure)`` for every item, in order.

    Args:
        items: what to decode (sample indices, paths, ...); ``decode`` must be picklable
            (a module-level function or a bound method of a picklable object) for workers.
        decode: item -> decoded value; an :class:`~lmseg.errors.LmsegError` becomes a failure.
        num_workers: processes (0 = decode in this process).
        batch_size: items per worker task.
        prefetch_factor: tasks in flight per worker.
    """
    if not items:
        return
    from torch.utils.data import DataLoader  # torch only where a loop actually runs

    loader = DataLoader(
        _Decoder(items, decode), batch_size=max(1, batch_size), shuffle=False, num_workers=num_workers,
        collate_fn=_as_list, prefetch_factor=prefetch_factor if num_workers > 0 else None, persistent_workers=False,
    )
    for batch in loader:
        yield from batch
