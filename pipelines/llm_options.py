"""The LLM option groups shared by ``gen_prompts`` and ``parse_captions``.

* "model": ``--backend``, ``--model`` and the server and vLLM settings, read by
  :func:`build_backend`;
* "generation": ``--instruction`` (the jinja2 file sent to the LLM), temperatures, tokens,
  seed, attempts, chunk size, read by :func:`sampling_settings` and
  :func:`load_instruction_option`;
* the Ray engine of ``--executor ray`` (:func:`ray_engine_options`, with the ``--executor``
  group of :mod:`pipelines.executor_options`).

Every number is checked by :func:`check_llm_numbers` before anything loads: one ``error:``
line for a value that cannot work (``--concurrency 0``, ``nan`` or ``inf`` anywhere). The
options a command gave explicitly are recorded in ``args.given`` (the scored method of
``gen_prompts`` refuses the generation options it would ignore). An option's earlier names
(:data:`RENAMED_OPTIONS`) are hidden options whose use is an error naming the new one.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lmseg.errors import LmsegError
from lmseg.llm.backends.base import Backend, SamplingSettings
from lmseg.llm.instruction import Instruction, load_instruction
from lmseg.llm.ray_engine import RayEngineOptions, choose_engine
from lmseg.paths import cache_dir, default_llm_path

if TYPE_CHECKING:
    from lmseg.distributed.cluster import RayOptions

MAX_TIMEOUT_S = 86400.0  # one day; an infinite timeout overflows the socket layer

# Earlier names of the generation options: old name -> the message of its error.
RENAMED_OPTIONS = {old: f"{old} was renamed --instruction (the jinja2 file sent to the LLM)"
                   for old in ("--prompt", "--template")}


class _Given(argparse.Action):
    """Store the value and record the option in ``namespace.given`` (it was typed, not defaulted)."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        setattr(namespace, self.dest, values)
        namespace.given = getattr(namespace, "given", frozenset()) | {option_string}


class _Renamed(argparse.Action):
    """An option's earlier name: record it in ``namespace.renamed`` (refused by :func:`check_llm_numbers`)."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        namespace.renamed = option_string


def add_backend_arguments(parser: argparse.ArgumentParser) -> None:
    """The "model" group: backend, model, server and vLLM settings (read by :func:`build_backend`)."""
    model = parser.add_argument_group("model")
    model.add_argument("--backend", choices=("vllm", "openai"), default="vllm")
    model.add_argument("--model", help="vllm: hub id or local folder (default: the prepared SmolLM2-135M-Instruct); "
                       "openai: served model name (default: the server's first model)")
    model.add_argument("--base-url", help="openai: API root, e.g. http://127.0.0.1:8000/v1")
    model.add_argument("--api-key-env", default="OPENAI_API_KEY",
                       help="openai: environment variable holding the API key")
    model.add_argument("--concurrency", type=int, default=8, help="openai: requests in flight")
    model.add_argument("--timeout", type=float, default=60.0, help="openai: seconds per request attempt")
    model.add_argument("--max-retries", type=int, default=3, help="openai: retries after transport errors")
    model.add_argument("--response-format", choices=("json_schema", "json_object", "none"), default="json_schema")
    model.add_argument("--max-model-len", type=int, default=1024, help="vllm: context length (input + answer); "
                       "a longer input fails alone, by name")
    model.add_argument("--dtype", default="auto", choices=("auto", "float32", "bfloat16", "float16"),
                       help="vllm: weight dtype (auto: float32 on a CPU, the model's own on a GPU)")
    model.add_argument("--gpu-memory-utilization", type=float, help="vllm: memory share (default 0.9 GPU, 0.2 CPU)")
    model.add_argument("--tensor-parallel-size", type=int, default=1, help="vllm: GPUs per model")


def add_generation_arguments(parser: argparse.ArgumentParser, *, title: str, default_instruction: str,
                             max_tokens: int, chunk_size: int, unit: str) -> argparse._ArgumentGroup:
    """The "generation" group (read by :func:`sampling_settings` and :func:`load_instruction_option`).

    Args:
        parser: the command's parser.
        title: the group's title in ``--help``.
        default_instruction: the instruction's file in ``instructions/``.
        max_tokens: the default of ``--max-tokens``.
        chunk_size: the default of ``--chunk-size``.
        unit: what one row is (``class``, ``caption``), for the help texts.

    Returns:
        The group, for the command's own generation options.
    """
    gen = parser.add_argument_group(title)
    gen.add_argument("--instruction", type=Path, action=_Given, metavar="FILE",
                     help=f"the jinja2 file sent to the LLM (default instructions/{default_instruction})")
    gen.add_argument(*RENAMED_OPTIONS, dest="renamed", action=_Renamed, help=argparse.SUPPRESS)
    gen.add_argument("--temperature", type=float, default=0.0, action=_Given, help="first attempt (default 0: greedy)")
    gen.add_argument("--retry-temperature", type=float, default=0.7, action=_Given, help="retries (default 0.7)")
    gen.add_argument("--max-tokens", type=int, default=max_tokens, action=_Given,
                     help=f"most tokens per answer (default {max_tokens})")
    gen.add_argument("--seed", type=int, default=0)
    gen.add_argument("--max-attempts", type=int, default=3, action=_Given,
                     help=f"attempts per {unit} before it is reported failed (default 3)")
    gen.add_argument("--chunk-size", type=int, default=chunk_size,
                     help=f"{unit} rows generated (and saved) together (default {chunk_size})")
    parser.set_defaults(default_instruction=default_instruction, given=frozenset(), renamed=None)
    return gen


def check_llm_numbers(args: argparse.Namespace) -> None:
    """Reject settings of both groups that cannot work (e.g. ``--concurrency 0`` would wait
    forever, ``--timeout inf`` overflows), before any model loads.

    Raises:
        LmsegError: the first bad value, naming its option.
    """
    if args.renamed is not None:
        raise LmsegError(RENAMED_OPTIONS[args.renamed])
    at_least = {"--concurrency": (args.concurrency, 1), "--max-retries": (args.max_retries, 0),
                "--max-model-len": (args.max_model_len, 64), "--tensor-parallel-size": (args.tensor_parallel_size, 1),
                "--max-tokens": (args.max_tokens, 16), "--max-attempts": (args.max_attempts, 1),
                "--chunk-size": (args.chunk_size, 1)}
    for flag, (value, low) in at_least.items():
        if value < low:
            raise LmsegError(f"{flag} must be >= {low} (got {value})")
    if not (math.isfinite(args.timeout) and 0 < args.timeout <= MAX_TIMEOUT_S):
        raise LmsegError(f"--timeout must be > 0 and at most {MAX_TIMEOUT_S:.0f} seconds (got {args.timeout})")
    if args.gpu_memory_utilization is not None and not 0 < args.gpu_memory_utilization <= 1:
        raise LmsegError(f"--gpu-memory-utilization must be in (0, 1] (got {args.gpu_memory_utilization})")
    if not (math.isfinite(args.temperature) and args.temperature >= 0):
        raise LmsegError(f"--temperature must be a finite number >= 0 (got {args.temperature})")
    if not (math.isfinite(args.retry_temperature) and args.retry_temperature > 0):
        raise LmsegError(f"--retry-temperature must be a finite number > 0 (got {args.retry_temperature})")


def shown(text: str, limit: int = 60) -> str:
    """``text`` quoted for a one-line message, cut to ``limit`` characters (with its length if cut)."""
    return repr(text) if len(text) <= limit else f"{text[:limit]!r}... ({len(text):,} characters)"


def sampling_settings(args: argparse.Namespace) -> SamplingSettings:
    """The sampling settings of the generation options."""
    return SamplingSettings(temperature=args.temperature, retry_temperature=args.retry_temperature,
                            max_tokens=args.max_tokens, seed=args.seed)


def load_instruction_option(args: argparse.Namespace) -> Instruction:
    """``--instruction FILE``, or the command's default instruction of ``instructions/``."""
    return load_instruction(args.instruction, default=args.default_instruction)


def build_backend(args: argparse.Namespace) -> Backend:
    """The backend of the "model" options: a server checked now, or a vLLM model checked on
    disk (its engine starts at the first request).

    Raises:
        LmsegError: no ``--base-url`` for openai, the default model not prepared, a model folder
            or hub id that cannot be had, or the server unusable.
    """
    if args.backend == "openai":
        if not args.base_url:
            raise LmsegError("--backend openai needs --base-url (e.g. http://127.0.0.1:8000/v1)")
        from lmseg.llm.backends.openai_backend import OpenAIBackend

        return OpenAIBackend(
            args.base_url, args.model, api_key_env=args.api_key_env, concurrency=args.concurrency,
            timeout=args.timeout, max_retries=args.max_retries, response_format=args.response_format,
        )
    from lmseg.llm.backends.vllm_backend import VLLMBackend

    return VLLMBackend(
        vllm_model(args), max_model_len=args.max_model_len, dtype=args.dtype,
        gpu_memory_utilization=args.gpu_memory_utilization, tensor_parallel_size=args.tensor_parallel_size,
        seed=args.seed, library_log=None if args.verbose else cache_dir() / "logs" / "vllm.log",
    )


def vllm_model(args: argparse.Namespace) -> str | Path:
    """``--model``, or the prepared default model.

    Raises:
        LmsegError: the default model is not prepared (``make setup``).
    """
    if args.model is not None:
        return args.model
    model = default_llm_path()
    if not model.exists():
        raise LmsegError(f"the default model is not prepared at {model}; run `make setup` first, or pass --model")
    return model


def ray_engine_options(args: argparse.Namespace, options: RayOptions, *, scored: bool = False) -> RayEngineOptions:
    """The Ray engine of an LLM table stage: ``--ray-llm-engine``, the backend factory (workers
    build the backend from these options, with the resolved model path: they may run
    elsewhere), the model and vLLM engine arguments of ``ray-data-llm``, and the worker environment."""
    from functools import partial

    from lmseg.llm.backends.vllm_backend import resolve_model

    if args.backend == "vllm":
        args = argparse.Namespace(**{**vars(args), "model": resolve_model(vllm_model(args))[0]})
    engine_kwargs: dict[str, object] = {"max_model_len": args.max_model_len, "dtype": args.dtype, "seed": args.seed,
                                        "tensor_parallel_size": args.tensor_parallel_size}
    if args.gpu_memory_utilization is not None:
        engine_kwargs["gpu_memory_utilization"] = args.gpu_memory_utilization
    engine = choose_engine(args.ray_llm_engine or "auto", args.backend, options.gpus_per_worker, scored=scored)
    return RayEngineOptions(
        engine=engine, make_backend=partial(build_backend, args),
        model_source=args.model, vllm_engine_kwargs=engine_kwargs,
        # vLLM's engine inside the actor itself: no child processes left behind when Ray kills an actor
        worker_env={"VLLM_ENABLE_V1_MULTIPROCESSING": "0"} if args.backend == "vllm" else {},
    )
