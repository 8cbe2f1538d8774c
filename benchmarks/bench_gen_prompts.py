"""Attribute generation speed: one batched vLLM call vs one request at a time.

Both paths use the same engine, model, instructions, JSON schema and sampling settings (the
first, greedy attempt; no retries), so the ratio isolates batching. The sequential loop runs
on the first ``--sequential-limit`` classes only (a full sequential pass over ade847 takes
most of an hour on a 2-core CPU); classes per second is what is compared. Optionally the
full pipeline (chunked, validated, retried, saved after every chunk) is timed too.

    python -m benchmarks.bench_gen_prompts [--dataset ade847] [--sequential-limit 64] [--pipeline]

Prints a table; asserts nothing.
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from pathlib import Path

from lmseg.attributes.answer import AnswerLimits, parse_answer
from lmseg.attributes.generate import DEFAULT_INSTRUCTION, GenerationJob, run_generation
from lmseg.llm.backends.base import SamplingSettings
from lmseg.llm.backends.vllm_backend import VLLMBackend
from lmseg.llm.instruction import load_instruction
from lmseg.llm.jobs import InvalidAnswer
from lmseg.paths import default_llm_path
from lmseg.vocab import get_vocabulary


def count_valid(answers: list, names: list[tuple[str, ...]], limits: AnswerLimits) -> int:
    valid = 0
    for answer, class_names in zip(answers, names, strict=True):
        try:
            parse_answer(answer, class_names, limits)
            valid += 1
        except (InvalidAnswer, TypeError):
            pass
    return valid


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default="ade847")
    parser.add_argument("--model", type=Path, default=default_llm_path())
    parser.add_argument("--sequential-limit", type=int, default=64)
    parser.add_argument("--pipeline", action="store_true", help="also time the full gen_prompts pipeline")
    parser.add_argument("--chunk-size", type=int, default=64)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    vocab = get_vocabulary(args.dataset)
    instruction = load_instruction(None, default=DEFAULT_INSTRUCTION)
    limits, settings = AnswerLimits(), SamplingSettings()
    job = GenerationJob(vocab, instruction, settings, limits, Path("unused"), chunk_size=args.chunk_size)
    conversations = [job.conversation(i) for i in range(len(vocab))]
    names = [c.names for c in vocab.classes]
    schema = limits.json_schema()

    backend = VLLMBackend(args.model)
    start = time.perf_counter()
    backend.generate(conversations[:2], schema, settings, 0)  # start the engine and warm up
    startup = time.perf_counter() - start

    start = time.perf_counter()
    batched = backend.generate(conversations, schema, settings, 0)
    batched_s = time.perf_counter() - start

    n_seq = min(args.sequential_limit, len(vocab))
    start = time.perf_counter()
    sequential = [backend.generate([c], schema, settings, 0)[0] for c in conversations[:n_seq]]
    sequential_s = time.perf_counter() - start

    rows = [
        ("batched (one call)", len(vocab), batched_s, count_valid(batched, names, limits)),
        ("sequential (one at a time)", n_seq, sequential_s, count_valid(sequential, names[:n_seq], limits)),
    ]
    if args.pipeline:
        with tempfile.TemporaryDirectory() as tmp:
            pipeline_job = GenerationJob(vocab, instruction, settings, limits, Path(tmp) / "t.parquet",
                                         chunk_size=args.chunk_size)
            report = run_generation(pipeline_job, backend, progress=False)
        rows.append((f"pipeline (chunks of {args.chunk_size}, retries, saves)", len(vocab), report.seconds,
                     report.generated))

    print(f"\nmodel {args.model.name}, vocabulary {args.dataset} ({len(vocab)} classes), engine start {startup:.1f} s")
    print(f"{'path':<44} {'classes':>7} {'seconds':>8} {'classes/s':>9} {'valid':>6}")
    for label, count, seconds, valid in rows:
        print(f"{label:<44} {count:>7} {seconds:>8.1f} {count / seconds:>9.2f} {valid:>6}")
    ratio = (len(vocab) / batched_s) / (n_seq / sequential_s)
    print(f"\nbatched / sequential speed-up: {ratio:.1f}x")


if __name__ == "__main__":
    main()
