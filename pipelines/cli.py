"""What every ``python -m pipelines.<stage>`` command does around its own work.

Parse the arguments, set up logging (``-v`` for debug), run, and turn an
:class:`~lmseg.errors.LmsegError` into a one-line ``error: ...`` on stderr and exit status 2.
Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence

from lmseg.errors import LmsegError


def run_command(
    parser: argparse.ArgumentParser,
    run: Callable[[argparse.Namespace], int],
    argv: Sequence[str] | None = None,
    log_format: str = "%(asctime)s %(levelname)s %(name)s: %(message)s",
) -> int:
    """Run ``run(parsed arguments)``; returns the exit status."""
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if getattr(args, "verbose", False) else logging.INFO, format=log_format)
    try:
        return run(args)
    except LmsegError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
