"""What every ``python -m pipelines.<stage>`` command does around its own work.

Parse the arguments, set up logging (lmseg's own messages at INFO, other libraries' only
from WARNING; ``-v`` shows everything at DEBUG), run, and turn an
:class:`~lmseg.errors.LmsegError` into a one-line ``error: ...`` on stderr and exit status 2.
Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence

from lmseg.errors import LmsegError


def stage_parser(stage: str, doc: str) -> argparse.ArgumentParser:
    """The parser of ``python -m pipelines.<stage>``: its docstring's first paragraph as description,
    the rest (examples, outputs, exit status) as the epilog of ``--help``."""
    return argparse.ArgumentParser(
        prog=f"python -m pipelines.{stage}",
        description=doc.split("\n\n")[0],
        epilog=doc.split("\n\n", 1)[1] if "\n\n" in doc else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def run_command(
    parser: argparse.ArgumentParser,
    run: Callable[[argparse.Namespace], int],
    argv: Sequence[str] | None = None,
    *,
    interrupted: str | None = None,
) -> int:
    """Run ``run(parsed arguments)``; returns the exit status.

    Args:
        parser: the command's parser (a ``-v/--verbose`` flag, if any, turns on debug logs).
        run: the command's work; returns the exit status.
        argv: arguments (default ``sys.argv[1:]``).
        interrupted: if given, Ctrl-C prints ``interrupted: <this>`` and exits 130;
            otherwise the command handles KeyboardInterrupt itself.
    """
    args = parser.parse_args(argv)
    verbose = getattr(args, "verbose", False)
    logging.basicConfig(level=logging.DEBUG if verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if not verbose:
        logging.getLogger("lmseg").setLevel(logging.INFO)
    try:
        return run(args)
    except KeyboardInterrupt:
        if interrupted is None:
            raise
        print(f"\ninterrupted: {interrupted}", file=sys.stderr)
        return 130
    except LmsegError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def require_at_least(flag: str, value: int | None, minimum: int) -> None:
    """Refuse a whole-number option below ``minimum`` (None: not given), before any work starts.

    Raises:
        LmsegError: ``"<flag> must be at least <minimum>, got <value>"``.
    """
    if value is not None and value < minimum:
        raise LmsegError(f"{flag} must be at least {minimum}, got {value}")


def vocabulary_from_args(args: argparse.Namespace):
    """The vocabulary named by ``--dataset`` (built-in), ``--vocabulary`` (a file) or ``--classes``
    (a comma list), with ``--name`` (if the command has it) naming a file or list vocabulary.

    Raises:
        LmsegError: a bad vocabulary, or ``--name`` with a built-in ``--dataset``.
    """
    from lmseg.vocab import get_vocabulary, load_vocabulary_file, parse_class_list

    name = getattr(args, "name", None)
    if args.dataset:
        if name:
            raise LmsegError("--name applies to --vocabulary or --classes, not to a built-in --dataset")
        return get_vocabulary(args.dataset)
    if args.vocabulary:
        return load_vocabulary_file(args.vocabulary, name)
    return parse_class_list(args.classes, name)
