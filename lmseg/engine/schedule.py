"""Learning-rate schedules: the factor that multiplies each group's rate at optimiser step ``t``."""

from __future__ import annotations

import math

__all__ = ["lr_factor"]


def lr_factor(step: int, warmup: int, total: int, *, schedule: str = "cosine", power: float = 0.9) -> float:
    """Linear warm-up from ``1 / warmup`` to 1 over ``warmup`` steps, then decay to 0 at ``total``.

    Args:
        step: the optimiser step (0-based) about to be taken.
        warmup: warm-up steps (0: none).
        total: the run's ``max_steps``.
        schedule: ``cosine`` (half a cosine) or ``poly`` (``(1 - progress) ** power``).
        power: the poly exponent.
    """
    if warmup > 0 and step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    if schedule == "poly":
        return (1.0 - progress) ** power
    return 0.5 * (1.0 + math.cos(math.pi * progress))
