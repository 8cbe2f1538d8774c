"""Which training samples each process reads: a pure function of (micro-step, rank).

Micro-step ``m`` (optimiser step ``t`` has micro-steps ``t * A .. t * A + A - 1`` for ``A``
accumulation steps) of rank ``r`` in a world of ``W`` processes reads the global sample
counters ``(m * W + r) * B + j``, ``j < B``. The dataset maps a counter to a sample
deterministically, so a run resumed at step ``t`` reads exactly what the uninterrupted run would.
"""

from __future__ import annotations

from collections.abc import Iterator

__all__ = ["StepSampler"]


class StepSampler:
    """Infinite sampler of global sample counters from micro-step ``start`` on (see the module docstring)."""

    def __init__(self, start: int, batch: int, rank: int, world: int) -> None:
        self.start, self.batch, self.rank, self.world = start, batch, rank, world

    def __iter__(self) -> Iterator[int]:
        micro_step = self.start
        while True:
            base = (micro_step * self.world + self.rank) * self.batch
            yield from range(base, base + self.batch)
            micro_step += 1
