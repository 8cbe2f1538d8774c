"""The progress bar of every loop: tqdm on stderr, shown only where stderr is a terminal by default.

The bar starts no thread: tqdm's monitor (a daemon thread that wakes every 10 s to adjust a
slow bar's refresh) would still be alive when the interpreter exits, one more thread that can
race the exit (see :mod:`lmseg.llm.tables`); bars here refresh on their own updates.
"""

from __future__ import annotations

import sys
from typing import Any

__all__ = ["progress_bar"]


def progress_bar(total: int, desc: str, *, initial: int = 0, unit: str = "img", enabled: bool | None = None) -> Any:
    """A tqdm bar (``enabled=None``: when stderr is a terminal); use as a context manager or close it."""
    from tqdm import tqdm

    class Bar(tqdm):  # type: ignore[misc]
        monitor_interval = 0  # no monitor thread

    return Bar(total=total, initial=initial, desc=desc, unit=unit,
               disable=not sys.stderr.isatty() if enabled is None else not enabled)
