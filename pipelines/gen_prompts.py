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
vLLM backend) ranks curated words by the model's calibrated log-probability and never fails;
``generate`` lets the model write a JSON answer (the only method of the openai backend; may
suit large models better). A quality report of the table is printed after every run
(``python -m pipelines.attribute_report TABLE`` prints it for any table).

Exit status: 0 all classes done; 1 some classes failed (listed); 2 bad input or an
unusable model/server (nothing lost); 130 interrupted (finished classes are kept).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lmseg.attributes.answer import AnswerLimits
from lmseg.attributes.backends.base import Backend, SamplingSettings
from lmseg.attributes.generate import GenerationJob, GenerationReport, run_generation
from lmseg.attributes.prompt import load_template
from lmseg.attributes.quality import format_report, table_report
from lmseg.attributes.reader import attribute_frame
from lmseg.attributes.scoring import ScoringMethod
from lmseg.attributes.shards import merge_shards
from lmseg.attributes.store import check_writable, read_table
from lmseg.errors import LmsegError
from lmseg.io.shards import shard_from_args, shard_range
from lmseg.paths import attribute_table_path, cache_dir, default_llm_path, shard_part_path
from lmseg.vocab import Vocabulary, builtin_vocabularies, natural_name
from pipelines.cli import run_command, vocabulary_from_args
from pipelines.executor_options import add_executor_arguments, ray_options_from_args

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

    gen = parser.add_argument_group("generation (--template, temperatures, tokens, attempts: generate method only)")
    gen.add_argument("--template", type=Path, help="jinja2 prompt template (default prompts/attributes.j2)")
    gen.add_argument("--temperature", type=float, default=0.0)
    gen.add_argument("--retry-temperature", type=float, default=0.7)
    gen.add_argument("--max-tokens", type=int, default=160)
    gen.add_argument("--seed", type=int, default=0)
    gen.add_argument("--max-attempts", type=int, default=3, help="attempts per class before it is reported failed")
    gen.add_argument("--max-items", type=int, default=5, help="most phrases kept per group")
    gen.add_argument("--chunk-size", type=int, default=64, help="classes generated (and saved) together")

    out = parser.add_argument_group("output")
    out.add_argument("--output", type=Path, help="table path (default cache/attributes/<dataset>/<model>.parquet); "
                     "shard parts go beside it (<table>.shard-000-of-004.parquet)")
    out.add_argument("--overwrite", action="store_true", help="regenerate every class and replace the table")
    out.add_argument("--shard-index", type=int, help="generate only this shard (0-based)")
    out.add_argument("--num-shards", type=int, help="number of shards")
    out.add_argument("--merge-shards", action="store_true", help="merge finished shard parts into the table")
    out.add_argument("--dry-run", action="store_true", help="print the rendered prompts; call no model")
    out.add_argument("-v", "--verbose", action="store_true",
                     help="debug messages, and vLLM's own messages on the console (else in <cache>/logs/vllm.log)")
    add_executor_arguments(parser, llm=True)
    return parser


def check_numbers(args: argparse.Namespace) -> None:
    """Reject numeric options that cannot work, before anything is loaded."""
    check_backend_numbers(args)
    at_least = {"--max-attempts": (args.max_attempts, 1), "--max-items": (args.max_items, 1),
                "--chunk-size": (args.chunk_size, 1), "--max-tokens": (args.max_tokens, 16)}
    for flag, (value, low) in at_least.items():
        if value < low:
            raise LmsegError(f"{flag} must be >= {low} (got {value})")
    for flag, value in (("--temperature", args.temperature), ("--retry-temperature", args.retry_temperature)):
        if not value >= 0:
            raise LmsegError(f"{flag} must be a number >= 0 (got {value})")
    if args.num_shards is not None and args.num_shards < 1:
        raise LmsegError(f"--num-shards must be >= 1 (got {args.num_shards})")


def resolve_method(args: argparse.Namespace) -> ScoringMethod | None:
    """The scoring definition for ``--method scored``, None for ``generate``."""
    method = args.method or ("generate" if args.backend == "openai" else "scored")
    if method == "generate":
        return None
    if args.backend == "openai":
        raise LmsegError("--method scored needs the log-probabilities of chosen next words, which the openai "
                         "backend does not request; use --method generate with --backend openai, or --backend vllm")
    return ScoringMethod()


def add_backend_arguments(parser: argparse.ArgumentParser) -> None:
    """The "model" argument group (backend, model, server and vLLM settings) read by
    :func:`build_backend`; shared with ``pipelines.parse_captions``."""
    model = parser.add_argument_group("model")
    model.add_argument("--backend", choices=("vllm", "openai"), default="vllm")
    model.add_argument("--model", help="vllm: hub id or local folder (default: the prepared SmolLM2-135M-Instruct); "
                       "openai: served model name (default: the server's first model)")
    model.add_argument("--base-url", help="openai: API root, e.g. http://127.0.0.1:8000/v1")
    model.add_argument("--api-key-env", default="OPENAI_API_KEY", help="openai: environment variable holding the API key")
    model.add_argument("--concurrency", type=int, default=8, help="openai: requests in flight")
    model.add_argument("--timeout", type=float, default=60.0, help="openai: seconds per request attempt")
    model.add_argument("--max-retries", type=int, default=3, help="openai: retries after transport errors")
    model.add_argument("--response-format", choices=("json_schema", "json_object", "none"), default="json_schema")
    model.add_argument("--max-model-len", type=int, default=1024, help="vllm: context length")
    model.add_argument("--dtype", default="auto", choices=("auto", "float32", "bfloat16", "float16"),
                       help="vllm: weight dtype (auto: float32 on a CPU, the model's own on a GPU)")
    model.add_argument("--gpu-memory-utilization", type=float, help="vllm: memory share (default 0.9 GPU, 0.2 CPU)")
    model.add_argument("--tensor-parallel-size", type=int, default=1, help="vllm: GPUs per model")


def check_backend_numbers(args: argparse.Namespace) -> None:
    """Reject settings of :func:`add_backend_arguments` that cannot work (e.g. ``--concurrency 0``
    would wait forever), before any model loads."""
    at_least = {"--concurrency": (args.concurrency, 1), "--max-retries": (args.max_retries, 0),
                "--max-model-len": (args.max_model_len, 64), "--tensor-parallel-size": (args.tensor_parallel_size, 1)}
    for flag, (value, low) in at_least.items():
        if value < low:
            raise LmsegError(f"{flag} must be >= {low} (got {value})")
    if not args.timeout > 0:
        raise LmsegError(f"--timeout must be > 0 seconds (got {args.timeout})")
    if args.gpu_memory_utilization is not None and not 0 < args.gpu_memory_utilization <= 1:
        raise LmsegError(f"--gpu-memory-utilization must be in (0, 1] (got {args.gpu_memory_utilization})")


def build_backend(args: argparse.Namespace) -> Backend:
    if args.backend == "openai":
        if not args.base_url:
            raise LmsegError("--backend openai needs --base-url (e.g. http://127.0.0.1:8000/v1)")
        from lmseg.attributes.backends.openai_backend import OpenAIBackend

        return OpenAIBackend(
            args.base_url, args.model, api_key_env=args.api_key_env, concurrency=args.concurrency,
            timeout=args.timeout, max_retries=args.max_retries, response_format=args.response_format,
        )
    from lmseg.attributes.backends.vllm_backend import VLLMBackend

    model = args.model or default_llm_path()
    if args.model is None and not Path(model).exists():
        raise LmsegError(f"the default model is not prepared at {model}; run `make setup` first, or pass --model")
    return VLLMBackend(
        model, max_model_len=args.max_model_len, dtype=args.dtype, gpu_memory_utilization=args.gpu_memory_utilization,
        tensor_parallel_size=args.tensor_parallel_size, seed=args.seed,
        library_log=None if args.verbose else cache_dir() / "logs" / "vllm.log",
    )


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
        print(f"# template {job.template.source} (sha256 {job.template.sha256})")
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
                print(f"[{question.group}] {question.prefix.format(name=name)} <{question.lexicon} word>")


def print_summary(report: GenerationReport, max_attempts: int) -> None:
    print(
        f"done: {report.generated} generated, {report.skipped} skipped (already present), "
        f"{len(report.failed)} failed in {report.seconds:.1f} s ({report.classes_per_second:.2f} classes/s)",
        file=sys.stderr,
    )
    print(f"table: {report.output} (read it back with lmseg.attributes.load_attribute_table(..., path=...))",
          file=sys.stderr)
    for index, (name, reason) in sorted(report.failed.items()):
        print(f"  failed: class {index} {name!r}: {reason}", file=sys.stderr)
    if report.failed:
        print(f"re-run with a larger --max-attempts (this run: {max_attempts}) to give the failed classes more "
              "tries (tries are deterministic: the same number repeats the same answers)", file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    check_numbers(args)
    vocabulary = vocabulary_from_args(args)
    shard = shard_of(args)
    scoring = resolve_method(args)
    settings = SamplingSettings(
        temperature=args.temperature, retry_temperature=args.retry_temperature, max_tokens=args.max_tokens,
        seed=args.seed,
    )
    template = load_template(args.template)
    indices = list(shard_range(len(vocabulary), *shard)) if shard else list(range(len(vocabulary)))
    ray_options = ray_options_from_args(args, default_batch_size=16)

    def job_for(output: Path) -> GenerationJob:
        return GenerationJob(vocabulary, template, settings, AnswerLimits(max_items=args.max_items), output,
                             class_indices=indices, overwrite=args.overwrite, chunk_size=args.chunk_size,
                             max_attempts=args.max_attempts, scoring=scoring)

    if args.dry_run:
        dry_run(job_for(args.output or Path("-")), indices)
        return 0
    if args.merge_shards:
        return merge(args, vocabulary)
    if args.output is not None:
        check_writable(table_path(args.output, shard))  # before a model loads
    backend = build_backend(args)
    output = table_path(args.output or attribute_table_path(vocabulary.name, backend.model_name), shard)
    check_writable(output)
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
    print_summary(report, args.max_attempts)
    if output.exists():
        print(format_report(table_report(attribute_frame(read_table(output)))), file=sys.stderr)
    return 1 if report.failed else 0


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
        model_name = args.model if args.backend == "openai" else _vllm_model_name(args)
        output = attribute_table_path(vocabulary.name, model_name)
    else:
        output = args.output
    check_writable(output)
    parts = [shard_part_path(output, (k, args.num_shards)) for k in range(args.num_shards)]
    rows = merge_shards(vocabulary, parts, output)
    print(f"merged {len(parts)} shard parts, {rows} classes, into {output}", file=sys.stderr)
    return 0


def run_on_ray(args: argparse.Namespace, job: GenerationJob, model_name: str, options: RayOptions) -> GenerationReport:
    """``--executor ray``: the same job on a Ray cluster (workers build the backend from ``args``)."""
    from lmseg.distributed.attributes import generate_attributes_on_ray

    return generate_attributes_on_ray(job, options, model_name=model_name,
                                      **ray_llm_arguments(args, options, scored=job.scoring is not None))


def ray_llm_arguments(args: argparse.Namespace, options: RayOptions, *, scored: bool = False) -> dict[str, Any]:
    """The engine, backend factory, model and worker settings of an LLM table stage on Ray, from
    the arguments of :func:`add_backend_arguments` and ``--ray-llm-engine`` (keyword arguments of
    :func:`lmseg.distributed.llm_tables.fill_table_on_ray`); shared with ``pipelines.parse_captions``."""
    from functools import partial

    from lmseg.attributes.backends.vllm_backend import resolve_model
    from lmseg.distributed.attributes import choose_engine

    if args.backend == "vllm":  # workers may run elsewhere: give them the resolved model path
        args = argparse.Namespace(**{**vars(args), "model": resolve_model(args.model or default_llm_path())[0]})
    engine_kwargs = {"max_model_len": args.max_model_len, "dtype": args.dtype, "seed": args.seed,
                     "tensor_parallel_size": args.tensor_parallel_size}
    if args.gpu_memory_utilization is not None:
        engine_kwargs["gpu_memory_utilization"] = args.gpu_memory_utilization
    return {
        "engine": choose_engine(args.ray_llm_engine or "auto", args.backend, options, scored=scored),
        "make_backend": partial(build_backend, args), "model_source": args.model, "vllm_engine_kwargs": engine_kwargs,
        # vLLM's engine inside the actor itself: no child processes left behind when Ray kills an actor
        "worker_env": {"VLLM_ENABLE_V1_MULTIPROCESSING": "0"} if args.backend == "vllm" else {},
    }


def _vllm_model_name(args: argparse.Namespace) -> str:
    from lmseg.attributes.backends.vllm_backend import resolve_model

    return resolve_model(args.model or default_llm_path())[1]


def main(argv: list[str] | None = None) -> int:
    return run_command(build_parser(), run, argv)


if __name__ == "__main__":
    sys.exit(main())
