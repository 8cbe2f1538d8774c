"""Generate LLM attributes (colour, shape, texture) for every class of a vocabulary.

Examples::

    python -m pipelines.gen_prompts --dataset ade847
    python -m pipelines.gen_prompts --classes "cat,dog,sofa;couch" --name pets
    python -m pipelines.gen_prompts --dataset ade150 --backend openai \\
        --base-url http://127.0.0.1:8000/v1 --model Qwen/Qwen2.5-7B-Instruct
    python -m pipelines.gen_prompts --dataset ade847 --shard-index 0 --num-shards 4
    python -m pipelines.gen_prompts --dataset ade847 --num-shards 4 --merge-shards
    python -m pipelines.gen_prompts --dataset voc20 --dry-run

Exit status: 0 all classes done; 1 some classes failed (listed); 2 bad input or an
unusable model/server (nothing lost); 130 interrupted (finished classes are kept).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from lmseg.attributes.answer import AnswerLimits
from lmseg.attributes.backends.base import Backend, SamplingSettings
from lmseg.attributes.generate import GenerationJob, GenerationReport, run_generation
from lmseg.attributes.prompt import load_template
from lmseg.attributes.shards import merge_shards
from lmseg.engine.shards import shard_from_args, shard_range
from lmseg.errors import LmsegError
from lmseg.paths import attribute_table_path, default_llm_path
from lmseg.vocab import builtin_vocabularies
from pipelines.cli import run_command, vocabulary_from_args


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

    gen = parser.add_argument_group("generation")
    gen.add_argument("--template", type=Path, help="jinja2 prompt template (default prompts/attributes.j2)")
    gen.add_argument("--temperature", type=float, default=0.0)
    gen.add_argument("--retry-temperature", type=float, default=0.7)
    gen.add_argument("--max-tokens", type=int, default=160)
    gen.add_argument("--seed", type=int, default=0)
    gen.add_argument("--max-attempts", type=int, default=3, help="attempts per class before it is reported failed")
    gen.add_argument("--max-items", type=int, default=5, help="most phrases kept per group")
    gen.add_argument("--chunk-size", type=int, default=64, help="classes generated (and saved) together")

    out = parser.add_argument_group("output")
    out.add_argument("--output", type=Path, help="table path (default cache/attributes/<dataset>/<model>.parquet)")
    out.add_argument("--overwrite", action="store_true", help="regenerate every class and replace the table")
    out.add_argument("--shard-index", type=int, help="generate only this shard (0-based)")
    out.add_argument("--num-shards", type=int, help="number of shards")
    out.add_argument("--merge-shards", action="store_true", help="merge finished shard parts into the table")
    out.add_argument("--dry-run", action="store_true", help="print the rendered prompts; call no model")
    out.add_argument("-v", "--verbose", action="store_true")
    return parser


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
    model.add_argument("--dtype", default="auto", help="vllm: weight dtype")
    model.add_argument("--gpu-memory-utilization", type=float, help="vllm: memory share (default 0.9 GPU, 0.2 CPU)")
    model.add_argument("--tensor-parallel-size", type=int, default=1, help="vllm: GPUs per model")


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
    )


def shard_of(args: argparse.Namespace) -> tuple[int, int] | None:
    if args.merge_shards:
        if args.shard_index is not None:
            raise LmsegError("--merge-shards takes --num-shards but not --shard-index")
        return None
    return shard_from_args(args.shard_index, args.num_shards)


def dry_run(job: GenerationJob, indices: list[int]) -> None:
    print(f"# vocabulary {job.vocabulary.name}: {len(indices)} of {len(job.vocabulary)} classes")
    print(f"# template {job.template.source} (sha256 {job.template.sha256})")
    print(f"# settings {job.settings_json()}")
    print(f"# answer schema {json.dumps(job.limits.json_schema())}")
    for index in indices:
        print(f"\n## class {index}: {job.vocabulary.classes[index].name}")
        for message in job.conversation(index):
            print(f"[{message['role']}]\n{message['content']}")


def print_summary(report: GenerationReport, max_attempts: int) -> None:
    print(
        f"done: {report.generated} generated, {report.skipped} skipped (already present), "
        f"{len(report.failed)} failed in {report.seconds:.1f} s ({report.classes_per_second:.2f} classes/s)",
        file=sys.stderr,
    )
    print(f"table: {report.output}", file=sys.stderr)
    for index, (name, reason) in sorted(report.failed.items()):
        print(f"  failed: class {index} {name!r}: {reason}", file=sys.stderr)
    if report.failed:
        print(f"re-run with a larger --max-attempts (this run: {max_attempts}) to give the failed classes more "
              "tries (tries are deterministic: the same number repeats the same answers)", file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    vocabulary = vocabulary_from_args(args)
    shard = shard_of(args)
    settings = SamplingSettings(
        temperature=args.temperature, retry_temperature=args.retry_temperature, max_tokens=args.max_tokens,
        seed=args.seed,
    )
    template = load_template(args.template)
    indices = list(shard_range(len(vocabulary), *shard)) if shard else list(range(len(vocabulary)))
    if args.chunk_size < 1 or args.max_attempts < 1:
        raise LmsegError("--chunk-size and --max-attempts must be >= 1")

    def job_for(output: Path) -> GenerationJob:
        return GenerationJob(vocabulary, template, settings, AnswerLimits(max_items=args.max_items), output,
                             class_indices=indices, overwrite=args.overwrite, chunk_size=args.chunk_size,
                             max_attempts=args.max_attempts)

    if args.dry_run:
        dry_run(job_for(args.output or Path("-")), indices)
        return 0
    if args.merge_shards:
        if not args.num_shards:
            raise LmsegError("--merge-shards needs --num-shards")
        if args.backend == "openai" and not args.model:
            raise LmsegError("--merge-shards with --backend openai needs --model (the served model name)")
        model_name = args.model if args.backend == "openai" else _vllm_model_name(args)
        parts = [attribute_table_path(vocabulary.name, model_name, (k, args.num_shards)) for k in range(args.num_shards)]
        output = args.output or attribute_table_path(vocabulary.name, model_name)
        rows = merge_shards(vocabulary, parts, output)
        print(f"merged {len(parts)} shard parts, {rows} classes, into {output}", file=sys.stderr)
        return 0
    backend = build_backend(args)
    output = args.output or attribute_table_path(vocabulary.name, backend.model_name, shard)
    try:
        report = run_generation(job_for(output), backend)
    except KeyboardInterrupt:
        print(f"\ninterrupted; every finished chunk is saved in {output}; re-run the same command to continue",
              file=sys.stderr)
        return 130
    print_summary(report, args.max_attempts)
    return 1 if report.failed else 0


def _vllm_model_name(args: argparse.Namespace) -> str:
    from lmseg.attributes.backends.vllm_backend import resolve_model

    return resolve_model(args.model or default_llm_path())[1]


def main(argv: list[str] | None = None) -> int:
    return run_command(build_parser(), run, argv)


if __name__ == "__main__":
    sys.exit(main())
