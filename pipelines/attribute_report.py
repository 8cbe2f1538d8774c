"""Report how well an attribute table tells its classes apart.

    python -m pipelines.attribute_report cache/attributes/ade847/SmolLM2-135M-Instruct.parquet

Prints, per group, the number of distinct phrase sets, the most common set and its share of
the classes, phrases found in most classes, and (shape, texture) the share of phrases that
name a colour; see ``lmseg.attributes.quality``. Exit status: 0 the table meets the
project's targets, 1 it misses them, 2 it cannot be read.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from lmseg.attributes.quality import format_report, table_report
from lmseg.attributes.reader import attribute_frame
from lmseg.attributes.store import read_table
from lmseg.errors import LmsegError
from pipelines.cli import run_command


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m pipelines.attribute_report", description=__doc__.split("\n\n")[0])
    parser.add_argument("table", type=Path, help="an attribute table (.parquet) written by pipelines.gen_prompts")
    return parser


def run(args: argparse.Namespace) -> int:
    try:
        table = read_table(args.table)
    except LmsegError as exc:
        raise LmsegError(f"{exc}; write it again (python -m pipelines.gen_prompts ... --overwrite --output "
                         f"{args.table}), or give another table") from None
    frame = attribute_frame(table)
    if frame.empty:
        raise LmsegError(f"attribute table {args.table} has no rows")
    report = table_report(frame)
    print(format_report(report))
    return 0 if report.meets_targets else 1


def main(argv: list[str] | None = None) -> int:
    return run_command(build_parser(), run, argv)


if __name__ == "__main__":
    sys.exit(main())
