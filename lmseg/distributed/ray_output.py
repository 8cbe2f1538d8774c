"""Ray's own output goes to a log file, so a command's console shows only the command's output.

Ray writes to the driver's console in two ways: its Python loggers (``ray``, ``ray.data``:
connection messages, deprecation warnings, Ray Data's progress block every 10 s) and its C++
core worker, which writes error-level lines straight to file descriptor 2. While
:func:`ray_output_to` is active, both go to the log file: descriptor 2 points at the file,
Python's ``sys.stderr`` (the command's messages and progress bar) keeps the console, and the
console handlers of Ray's loggers write to the file instead. Ray Data's own progress bars are
switched off (the command shows its own).
"""

from __future__ import annotations

import contextlib
import datetime
import io
import logging
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

__all__ = ["ray_output_to"]


@contextlib.contextmanager
def ray_output_to(path: Path | None) -> Iterator[None]:
    """Send Ray's console output to ``path`` (appended) for the duration of the block.

    ``path=None`` changes nothing (``-v``: Ray's messages stay on the console). Enter it after
    importing Ray and Ray Data, which set up their console handlers when imported.
    """
    if path is None:
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8", buffering=1) as sink:
        sink.write(f"\n==== {datetime.datetime.now().isoformat(timespec='seconds')} {' '.join(sys.argv)}\n")
        with _descriptor_2_to(sink), _ray_loggers_to(sink):
            _quiet_ray_data()
            yield


@contextlib.contextmanager
def _descriptor_2_to(sink: TextIO) -> Iterator[None]:
    """Point file descriptor 2 at ``sink``; ``sys.stderr`` (and handlers writing to it) keep the console."""
    sys.stderr.flush()
    saved = os.dup(2)
    console: TextIO | None = None
    old_stderr = sys.stderr
    if _writes_to_descriptor_2(old_stderr):
        console = io.TextIOWrapper(os.fdopen(os.dup(saved), "wb", buffering=0), encoding=old_stderr.encoding,
                                   errors="backslashreplace", line_buffering=True)
    os.dup2(sink.fileno(), 2)
    moved = _repoint_handlers(old_stderr, console) if console is not None else []
    if console is not None:
        sys.stderr = console
    try:
        yield
    finally:
        sys.stderr.flush()
        if console is not None:
            sys.stderr = old_stderr
            for handler in moved:
                handler.setStream(old_stderr)
            console.close()
        os.dup2(saved, 2)
        os.close(saved)


def _writes_to_descriptor_2(stream: TextIO) -> bool:
    try:
        return stream.fileno() == 2
    except (AttributeError, OSError, ValueError):  # a test's capture object, or a closed stream
        return False


def _repoint_handlers(old: TextIO, new: TextIO) -> list[logging.StreamHandler]:
    """Stream handlers bound to ``old`` (lmseg's console handler) write to ``new`` instead."""
    moved = []
    for logger in _all_loggers():
        for handler in logger.handlers:
            if type(handler) is logging.StreamHandler and handler.stream is old:
                handler.setStream(new)
                moved.append(handler)
    return moved


@contextlib.contextmanager
def _ray_loggers_to(sink: TextIO) -> Iterator[None]:
    """Ray's console handlers (on ``ray`` and its child loggers) write to ``sink`` meanwhile."""
    replaced: list[tuple[logging.Logger, logging.Handler, logging.Handler]] = []
    for logger in _all_loggers():
        if logger.name != "ray" and not logger.name.startswith("ray."):
            continue
        for handler in list(logger.handlers):
            if isinstance(handler, logging.StreamHandler) and not isinstance(handler, logging.FileHandler):
                to_file = logging.StreamHandler(sink)
                to_file.setFormatter(handler.formatter)
                to_file.setLevel(handler.level)
                logger.removeHandler(handler)
                logger.addHandler(to_file)
                replaced.append((logger, handler, to_file))
    try:
        yield
    finally:
        for logger, original, to_file in replaced:
            logger.removeHandler(to_file)
            logger.addHandler(original)


def _all_loggers() -> list[logging.Logger]:
    loggers = [logging.getLogger()]
    loggers += [item for item in logging.Logger.manager.loggerDict.values() if isinstance(item, logging.Logger)]
    return loggers


def _quiet_ray_data() -> None:
    """No Ray Data progress bars on the console (the command shows its own)."""
    from ray.data import DataContext

    DataContext.get_current().enable_progress_bars = False
