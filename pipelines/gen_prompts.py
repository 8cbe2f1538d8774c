"""Generate LLM attributes (colour, shape, texture) for every class of a vocabulary.

Examples::

    python -m pipelines.gen_prompts --dataset ade847
    python -m pipelines.gen_prompts --classes "cat,dog,sofa;couch" --name pets
    python -m pipelines.gen_prompts --dataset ade150 --backend openai \\
        --base-url http://127.0.0.1:8000/v1 --model Qwen/Qwen2.5-7B-Instruct
    python -m pipelines.gen_prompts --dataset ade847 --shard-index 0 --num-shards 4
    python -m pipelines.gen_prompts --dataset ade847 --num-shards 4 --merge-shards
    python -m pipelines.gen_prompts --dataset voc20 --dry-run
    python -m pipelines.gen_prompts --dataset ade150 --method generate   # free generation
    python -m pipelines.gen_prompts --dataset lvis1203 --executor ray --ray-address auto --ray-workers 8 \\
        --ray-gpus-per-worker 1 --model Qwen/Qwen2.5-7B-Instruct --method generate

Methods (recorded in every row; one table never mixes them): ``scored`` (default with the
vLLM backend) ranks curated words by the model's calibrated log-probability and fails no
class the model can read; ``generate`` lets the model write a JSON answer from the
instruction (the jinja2 file sent to the LLM; the only method of the openai backend; may suit
large models better). The scored method refuses the options it would ignore
(``--instruction``, temperatures, ``--max-tokens``, ``--max-attempts``). A quality report of
the table is printed after every run (``python -m pipelines.attribute_report TABLE`` prints it
for any table); with ``--truth``, also how often its attributes are acceptable by a
hand-written truth set (``lmseg.attributes.accuracy``).

Exit status: 0 all classes done; 1 some classes failed (listed: invalid answers, or a class
name too long for the model; the others are written); 2 bad input or an unusable
model/server (nothing lost); 130 interrupted (finished classes are kept).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from lmseg.attributes.accuracy import (
    SPLITS,
    TruthEntry,
    TruthSet,
    check_truth_classes,
    default_truth_path,
    format_truth_report,
    load_truth,
    truth_report,
)
from lmseg.attributes.answer import AnswerLimits
from lmseg.attributes.generate import DEFAULT_INSTRUCTION, GenerationJob, run_generation
from lmseg.attributes.quality import format_report, table_report
from lmseg.attributes.reader import attribute_frame
from lmseg.attributes.scoring import ScoringMethod
from lmseg.attributes.shards import merge_shards
from lmseg.attributes.store import read_table
from lmseg.errors import LmsegError
from lmseg.io.shards import shard_from_args, shard_range
from lmseg.llm.jobs import TableReport
from lmseg.llm.tables import check_writable_file
from lmseg.paths import attribute_table_path, shard_part_path
from lmseg.vocab import Vocabulary, builtin_vocabularies, natural_name
from pipelines.cli import run_command, vocabulary_from_args
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
    vllm_model,
)

if TYPE_CHECKING:
    from lmseg.distributed.cluster import RayOptions


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m pipelines.gen_prompts",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    vocab = parser.add_argument_group("vocabulary (one of)")
    source = vocab.add_mutually_exclusive_group(required=True)
    source.add_argument("--dataset", help=f"a built-in vocabulary: {', '.join(builtin_vocabularies())}")
    source.add_argument("--vocabulary", type=Path, help="a text file, one class per line, synonyms after ',' or ';'")
    source.add_argument("--classes", help='a comma list, synonyms after ";" (e.g. "cat,dog,sofa;couch")')
    vocab.add_argument("--name", help="name of a --vocabulary/--classes vocabulary in the cache (default: from the file or a hash)")

    add_backend_arguments(parser)
    parser.add_argument_group("method").add_argument(
        "--method", choices=("scored", "generate"),
        help="scored: rank curated words by calibrated log-probability (default with vllm); "
        "generate: free JSON generation (default and only choice with openai)")

    gen = add_generation_arguments(
        parser, title="generation (--instruction, temperatures, --max-tokens, --max-attempts: generate method only)",
        default_instruction=DEFAULT_INSTRUCTION, max_tokens=160, chunk_size=64, unit="class")
    gen.add_argument("--max-items", type=int, default=5, help="most phrases kept per group")

    out = parser.add_argument_group("output")
    out.add_argument("--output", type=Path, help="table path (default cache/attributes/<dataset>/<model>.parquet); "
                     "shard parts go beside it (<table>.shard-000-of-004.parquet)")
    out.add_argument("--overwrite", action="store_true", help="regenerate every class and replace the table")
    out.add_argument("--shard-index", type=int, help="generate only this shard (0-based)")
    out.add_argument("--num-shards", type=int, help="number of shards")
    out.add_argument("--merge-shards", action="store_true", help="merge finished shard parts into the table")
    out.add_argument("--dry-run", action="store_true",
                     help="print the rendered instructions (scored: the questions); call no model")
    out.add_argument("--truth", type=Path, nargs="?", const=default_truth_path(), metavar="FILE",
                     help="after the run, judge the table against a truth set (CSV; without FILE: the bundled one); "
                     "its classes must be in the vocabulary (checked before the model loads)")
    out.add_argument("--truth-split", choices=SPLITS, help="judge only this half of the truth set (default: both)")
    out.add_argument("-v", "--verbose", action="store_true",
                     help="debug messages, and vLLM's own messages on the console (else in <cache>/logs/vllm.log)")
    add_executor_arguments(parser, llm=True)
    return parser


def check_numbers(args: argparse.Namespace) -> None:
    """Reject numeric options that cannot work, before anything is loaded."""
    check_llm_numbers(args)
    if args.max_items < 1:
        raise LmsegError(f"--max-items must be >= 1 (got {args.max_items})")
    if args.num_shards is not None and args.num_shards < 1:
        raise LmsegError(f"--num-shards must be >= 1 (got {args.num_shards})")


def resolve_method(args: argparse.Namespace) -> ScoringMethod | None:
    """The scoring definition for ``--method scored``, None for ``generate``.

    Raises:
        LmsegError: scored with the openai backend, or with generation options it would ignore.
    """
    method = args.method or ("generate" if args.backend == "openai" else "scored")
    if method == "generate":
        return None
    if args.backend == "openai":
        raise LmsegError("--method scored needs the log-probabilities of chosen next words, which the openai "
                         "backend does not request; use --method generate with --backend openai, or --backend vllm")
    if args.given:
        verb = "applies" if len(args.given) == 1 else "apply"
        raise LmsegError(f"{', '.join(sorted(args.given))} {verb} to --method generate only; the scored method (the "
                         "default with --backend vllm) asks fixed questions and scores the word lists of "
                         "lmseg/attributes/lexicons/: leave them out, or add --method generate")
    return ScoringMethod()


def shard_of(args: argparse.Namespace) -> tuple[int, int] | None:
    if args.merge_shards:
        if args.shard_index is not None:
            raise LmsegError("--merge-shards takes --num-shards but not --shard-index")
        return None
    return shard_from_args(args.shard_index, args.num_shards)


def dry_run(job: GenerationJob, indices: list[int]) -> None:
    print(f"# vocabulary {job.vocabulary.name}: {len(indices)} of {len(job.vocabulary)} classes")
    print(f"# method {job.method}")
    if job.scoring is None:
        print(f"# instruction {job.instruction.source} (sha256 {job.instruction.sha256})")
    else:
        print(f"# scoring definition sha256 {job.recipe_sha256}; word lists in lmseg/attributes/lexicons/")
    print(f"# settings {job.settings_json()}")
    if job.scoring is None:
        print(f"# answer schema {json.dumps(job.limits.json_schema())}")
    for index in indices:
        entry = job.vocabulary.classes[index]
        print(f"\n## class {index}: {entry.name}")
        if job.scoring is None:
            for message in job.conversation(index):
                print(f"[{message['role']}]\n{message['content']}")
        else:
            for question in job.scoring.questions:
                name = natural_name(entry.name)  # what the model reads (lmseg.vocab.natural)
                texts = " | ".join(f"{p.format(name=name)} <{question.lexicon} word>" for p in question.prefixes)
                print(f"[{question.group}] {texts}  (keep {question.keep}, calibration "
                      f"{job.scoring.weight(question):g})")


def print_summary(report: TableReport, output: Path, max_attempts: int) -> None:
    print(
        f"done: {report.generated} generated, {report.skipped} skipped (already present), "
        f"{len(report.failed)} failed in {report.seconds:.1f} s ({report.rows_per_second:.2f} classes/s)",
        file=sys.stderr,
    )
    print(f"table: {output} (read it back with lmseg.attributes.load_attribute_table(..., path=...))",
          file=sys.stderr)
    for index, (name, reason) in sorted(report.failed.items()):
        print(f"  failed: class {index} {shown(name)}: {reason}", file=sys.stderr)
    if any(reason.startswith("invalid answer") for _, reason in report.failed.values()):
        print(f"re-run with a larger --max-attempts (this run: {max_attempts}) to give the classes with invalid "
              "answers more tries (tries are deterministic: the same number repeats the same answers)",
              file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    check_numbers(args)
    vocabulary = vocabulary_from_args(args)
    shard = shard_of(args)
    scoring = resolve_method(args)
    settings = sampling_settings(args)
    instruction = load_instruction_option(args)
    indices = list(shard_range(len(vocabulary), *shard)) if shard else list(range(len(vocabulary)))
    ray_options = ray_options_from_args(args, default_batch_size=16)
    truth = truth_entries(args, vocabulary)

    def job_for(output: Path) -> GenerationJob:
        return GenerationJob(vocabulary, instruction, settings, AnswerLimits(max_items=args.max_items), output,
                             class_indices=indices, overwrite=args.overwrite, chunk_size=args.chunk_size,
                             max_attempts=args.max_attempts, scoring=scoring)

    if args.dry_run:
        dry_run(job_for(args.output or Path("-")), indices)
        return 0
    if args.merge_shards:
        return merge(args, vocabulary)
    if args.output is not None:
        check_writable_file(table_path(args.output, shard))  # before a model loads
    backend = build_backend(args)
    output = table_path(args.output or attribute_table_path(vocabulary.name, backend.model_name), shard)
    check_writable_file(output)
    print(f"{vocabulary.name}: {len(indices)} classes, model {backend.model_name}, method {job_for(output).method}, "
          f"table {output}", file=sys.stderr)
    try:
        if ray_options is not None:
            report = run_on_ray(args, job_for(output), backend.model_name, ray_options)
        else:
            report = run_generation(job_for(output), backend)
    except KeyboardInterrupt:
        print(f"\ninterrupted; every finished chunk is saved in {output}; re-run the same command to continue",
              file=sys.stderr)
        return 130
    print_summary(report, output, args.max_attempts)
    if output.exists():
        frame = attribute_frame(read_table(output))
        print(format_report(table_report(frame)), file=sys.stderr)
        if truth is not None:
            truth_set, split = truth
            print(format_truth_report(truth_report(frame, truth_set, split), truth_set.source), file=sys.stderr)
    return 1 if report.failed else 0


def truth_entries(args: argparse.Namespace, vocabulary: Vocabulary) -> tuple[TruthSet, str | None] | None:
    """``--truth``/``--truth-split``: the truth set and split to judge the table by, read and checked
    against the vocabulary's class names now, before any model loads; None without ``--truth``.

    Raises:
        LmsegError: ``--truth-split`` without ``--truth``, a malformed truth file, or one that names
            classes the vocabulary does not have.
    """
    if args.truth is None:
        if args.truth_split:
            raise LmsegError("--truth-split applies to --truth")
        return None
    truth_set = load_truth(args.truth)
    entries: tuple[TruthEntry, ...] = truth_set.select(args.truth_split)
    check_truth_classes(entries, vocabulary.names, f"vocabulary {vocabulary.name!r}")
    return truth_set, args.truth_split


def table_path(table: Path, shard: tuple[int, int] | None) -> Path:
    """The file this run writes: the table, or its shard's part beside it."""
    return table if shard is None else shard_part_path(table, shard)


def merge(args: argparse.Namespace, vocabulary: Vocabulary) -> int:
    """``--merge-shards``: merge the parts of ``--output`` (or of the default table) into it."""
    if not args.num_shards:
        raise LmsegError("--merge-shards needs --num-shards")
    if args.output is None:
        if args.backend == "openai" and not args.model:
            raise LmsegError("--merge-shards with --backend openai needs --model (the served model name) or --output")
        if args.backend == "openai":
            model_name = args.model
        else:
            from lmseg.llm.backends.vllm_backend import resolve_model

            model_name = resolve_model(vllm_model(args))[1]
        output = attribute_table_path(vocabulary.name, model_name)
    else:
        output = args.output
    check_writable_file(output)
    parts = [shard_part_path(output, (k, args.num_shards)) for k in range(args.num_shards)]
    rows = merge_shards(vocabulary, parts, output)
    print(f"merged {len(parts)} shard parts, {rows} classes, into {output}", file=sys.stderr)
    return 0


def run_on_ray(args: argparse.Namespace, job: GenerationJob, model_name: str, options: RayOptions) -> TableReport:
    """``--executor ray``: the same job on a Ray cluster (workers build the backend from ``args``)."""
    from lmseg.attributes.table_job import AttributeTableJob
    from lmseg.distributed.llm_tables import fill_table_on_ray

    return fill_table_on_ray(AttributeTableJob(job, model_name), options, lock=job.output,
                             engine=ray_engine_options(args, options, scored=job.scoring is not None))


def main(argv: list[str] | None = None) -> int:
    return run_command(build_parser(), run, argv)


if __name__ == "__main__":
    sys.exit(main())
