"""Report how well an attribute table tells its classes apart and, with --truth, how true it is.

    python -m pipelines.attribute_report cache/attributes/ade847/SmolLM2-135M-Instruct.parquet
    python -m pipelines.attribute_report TABLE --truth                 # the bundled truth set
    python -m pipelines.attribute_report TABLE --truth FILE --split test

Prints, per group, the number of distinct phrase sets, the most common set and its share of
the classes, phrases found in most classes, and (shape, texture) the share of phrases that
name a colour; see ``lmseg.attributes.quality``. With ``--truth``, also the share of the truth
set's classes with an acceptable word among those kept and as the first word, per group
(``lmseg.attributes.accuracy``); every class of the truth set (of ``--split``, if given) must
be in the table. Exit status: 0 the table meets the project's targets (with ``--truth``, the
truth targets too), 1 it misses them, 2 it or the truth file cannot be read, or the truth
file names classes that are not in the table.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from lmseg.attributes.accuracy import SPLITS, default_truth_path, format_truth_report, load_truth, truth_report
from lmseg.attributes.quality import format_report, table_report
from lmseg.attributes.reader import attribute_frame
from lmseg.attributes.store import read_table
from lmseg.errors import LmsegError
from pipelines.cli import run_command, stage_parser


def build_parser() -> argparse.ArgumentParser:
    parser = stage_parser("attribute_report", __doc__)
    parser.add_argument("table", type=Path, help="an attribute table (.parquet) written by pipelines.gen_prompts")
    parser.add_argument("--truth", type=Path, nargs="?", const=default_truth_path(), metavar="FILE",
                        help="judge the table against a truth set (CSV; without FILE: the bundled "
                        "lmseg/attributes/truth/attribute_truth.csv)")
    parser.add_argument("--split", choices=SPLITS, help="only this half of the truth set (default: both)")
    return parser


def run(args: argparse.Namespace) -> int:
    if args.split and args.truth is None:
        raise LmsegError("--split applies to --truth")
    truth = load_truth(args.truth) if args.truth is not None else None  # a bad truth file fails first
    try:
        table = read_table(args.table)
    except LmsegError as exc:
        raise LmsegError(f"{exc}; write it again (python -m pipelines.gen_prompts ... --overwrite --output "
                         f"{args.table}), or give another table") from None
    frame = attribute_frame(table)
    if frame.empty:
        raise LmsegError(f"attribute table {args.table} has no rows")
    report = table_report(frame)
    accuracy = truth_report(frame, truth, args.split, f"table {args.table}") if truth is not None else None
    print(format_report(report))
    if accuracy is not None:
        print(format_truth_report(accuracy, truth.source))
    return 0 if report.meets_targets and (accuracy is None or accuracy.meets_targets) else 1


def main(argv: list[str] | None = None) -> int:
    return run_command(build_parser(), run, argv)


if __name__ == "__main__":
    sys.exit(main())
