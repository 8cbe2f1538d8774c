"""Noun phrases of captions by an LLM, cached in a Parquet table keyed by caption hash (MGCA).

Examples::

    python -m pipelines.parse_captions --tars data/cc3m/ --output cache/caption_phrases/cc3m
    python -m pipelines.parse_captions --table pairs.csv --backend openai --base-url http://127.0.0.1:8000/v1
    python -m pipelines.parse_captions --tars 'data/cc3m/*.tar' --shard-index 0 --num-shards 8
    python -m pipelines.parse_captions --captions captions.txt --dry-run
    python -m pipelines.parse_captions --tars data/cc3m/ --executor ray --ray-address auto --ray-workers 8 \\
        --ray-gpus-per-worker 1 --model Qwen/Qwen2.5-7B-Instruct

Captions are streamed from webdataset tar files (img2dataset's ``{key}.txt``), a CSV/Parquet
table, or a UTF-8 text file with one caption per line. Finished chunks are kept; running the
same command again parses only what is missing. Training reads the table with
``data.phrase_table``. A caption gets no row when the model gives it no valid phrase (an empty
list included) or when it is too long for the model: it is listed as failed, and training
parses it with the rule parser. (``--shards`` was renamed ``--tars``: "shard" means a part of
the work, as in ``--shard-index/--num-shards``.)

Exit status: 0 all captions done; 1 some failed (listed; the others are written); 2 bad input
or an unusable model/server (nothing lost); 130 interrupted (finished chunks are kept).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from pathlib import Path

from lmseg.captions.llm import DEFAULT_INSTRUCTION, CaptionJob, PhraseLimits, lock_path, run_caption_parsing
from lmseg.captions.table import read_caption_table, utf8_lines
from lmseg.captions.webdataset import SkipLog, iter_tars, list_tars
from lmseg.errors import LmsegError
from lmseg.io.shards import shard_from_args
from lmseg.llm.jobs import TableReport
from lmseg.llm.tables import check_writable_folder
from lmseg.paths import cache_dir, model_slug
from pipelines.cli import run_command
from pipelines.executor_options import add_executor_arguments, ray_options_from_args
from pipelines.llm_options import (
    add_backend_arguments,
    add_generation_arguments,
    build_backend,
    check_llm_numbers,
    load_instruction_option,
    ray_engine_options,
    sampling_settings,
    shown,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m pipelines.parse_captions", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    src = parser.add_argument_group("captions (one of)").add_mutually_exclusive_group(required=True)
    src.add_argument("--tars", help="webdataset tar files: a folder of .tar files, a glob, or a file")
    src.add_argument("--shards", help=argparse.SUPPRESS)  # the old name of --tars: an error that says so
    src.add_argument("--table", type=Path, help="a CSV or Parquet table with a caption column")
    src.add_argument("--captions", type=Path, help="a UTF-8 text file, one caption per line")
    parser.add_argument("--caption-column", default="caption", help="--table: the caption column")
    parser.add_argument("--image-column", default="image", help="--table: the image column")
    add_backend_arguments(parser)
    gen = add_generation_arguments(parser, title="generation", default_instruction=DEFAULT_INSTRUCTION,
                                   max_tokens=96, chunk_size=256, unit="caption")
    gen.add_argument("--max-phrases", type=int, default=8, help="most phrases kept per caption")
    out = parser.add_argument_group("output")
    out.add_argument("--output", type=Path, help="table folder (default cache/caption_phrases/<model>)")
    out.add_argument("--shard-index", type=int, help="parse only this shard of the captions (0-based)")
    out.add_argument("--num-shards", type=int, help="number of shards (captions are split by hash)")
    out.add_argument("--dry-run", action="store_true",
                     help="print the rendered instructions of the first 3 captions; call no model")
    out.add_argument("-v", "--verbose", action="store_true")
    add_executor_arguments(parser, llm=True)
    return parser


def caption_stream(args: argparse.Namespace, skips: SkipLog) -> Iterator[str]:
    """The captions of the chosen source, streamed (tar files one at a time). The source is
    checked here, at once (a caption file is read through once), so that bad input is reported
    before any model loads."""
    if args.shards:
        raise LmsegError("--shards was renamed --tars (webdataset tar files); --shard-index/--num-shards split "
                         "the work")
    if args.tars:
        return (s.caption for s in iter_tars(list_tars(args.tars), skips))
    if args.table:
        rows = read_caption_table(args.table, skips, image_column=args.image_column, caption_column=args.caption_column)
        return (s.caption for s in rows)
    if not args.captions.is_file():
        raise LmsegError(f"cannot read captions from {args.captions}: no such file")
    for _ in utf8_lines(args.captions):  # a byte that is not UTF-8: an error now, naming its line
        pass
    return (line for line in utf8_lines(args.captions) if line.strip())


def print_summary(report: TableReport, skips: SkipLog, output: Path) -> None:
    print(f"done: {report.generated} parsed, {report.skipped} skipped (already present), {len(report.failed)} failed "
          f"in {report.seconds:.1f} s; input problems: {skips.summary()}", file=sys.stderr)
    print(f"table: {output}", file=sys.stderr)
    for (sha, caption), (_, reason) in sorted(report.failed.items()):
        print(f"  failed: caption {sha[:12]} {shown(caption)}: {reason}", file=sys.stderr)
    if report.failed:
        print(f"the {len(report.failed)} failed captions have no row: training (data.phrase_table) parses them with "
              "the rule parser; a larger model (--model, or --backend openai) finds phrases for more of them",
              file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    check_llm_numbers(args)
    if args.max_phrases < 1:
        raise LmsegError(f"--max-phrases must be >= 1 (got {args.max_phrases})")
    shard = shard_from_args(args.shard_index, args.num_shards)
    settings = sampling_settings(args)
    instruction = load_instruction_option(args)
    limits = PhraseLimits(max_phrases=args.max_phrases)
    ray_options = ray_options_from_args(args, default_batch_size=16)
    skips = SkipLog()
    captions = caption_stream(args, skips)
    if args.dry_run:
        for caption, _ in zip(captions, range(3)):
            print(instruction.render(caption=caption.strip(), max_phrases=limits.max_phrases)[0]["content"])
            print("---")
        return 0
    if args.output is not None:
        check_writable_folder(args.output)  # before a model loads
    backend = build_backend(args)
    output = args.output or cache_dir() / "caption_phrases" / model_slug(backend.model_name)
    check_writable_folder(output)
    job = CaptionJob(instruction, settings, limits, output, shard=shard, chunk_size=args.chunk_size,
                     max_attempts=args.max_attempts)
    try:
        if ray_options is None:
            report = run_caption_parsing(captions, job, backend)
        else:
            from lmseg.captions.table_job import CaptionTableJob
            from lmseg.distributed.llm_tables import fill_table_on_ray

            report = fill_table_on_ray(CaptionTableJob(job, backend.model_name, captions), ray_options,
                                       lock=lock_path(job), engine=ray_engine_options(args, ray_options))
    except KeyboardInterrupt:
        print(f"\ninterrupted; every finished chunk is saved in {output}; re-run the same command to continue",
              file=sys.stderr)
        return 130
    print_summary(report, skips, output)
    return 1 if report.failed else 0


def main(argv: list[str] | None = None) -> int:
    return run_command(build_parser(), run, argv)


if __name__ == "__main__":
    sys.exit(main())
