"""The progress bar of every loop: tqdm on stderr, shown only where stderr is a terminal by default."""

from __future__ import annotations

import sys
from typing import Any

__all__ = ["progress_bar"]


def progress_bar(total: int, desc: str, *, initial: int = 0, unit: str = "img", enabled: bool | None = None) -> Any:
    """A tqdm bar (``enabled=None``: when stderr is a terminal); use as a context manager or close it."""
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, desc=desc, unit=unit,
                disable=not sys.stderr.isatty() if enabled is None else not enabled)
