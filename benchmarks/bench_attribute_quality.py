"""Attribute quality, side by side: free generation vs scored words (raw and calibrated).

All methods run on the same classes with one vLLM engine (started before any timing) and
the same model; for each, the table report of ``lmseg.attributes.quality`` (distinct sets, most common set's share,
phrases common to most classes, colour words in the shape and texture groups) and the time
taken. Ratios are within this run; nothing is asserted.

    python -m benchmarks.bench_attribute_quality [--dataset ade847] [--every 12] [--methods generate,scored]

``--every N`` takes every N-th class (12: 71 classes of ade847); ``--every 1`` is the whole
vocabulary (ade847 with all methods: tens of minutes on a 2-core CPU). ``--keep DIR`` keeps
the tables (one per method) for ``python -m pipelines.attribute_report``.
"""

from __future__ import annotations

import argparse
import logging
import tempfile
from dataclasses import replace
from pathlib import Path

from lmseg.attributes.answer import AnswerLimits
from lmseg.attributes.generate import DEFAULT_INSTRUCTION, GenerationJob, run_generation
from lmseg.attributes.quality import format_report, table_report
from lmseg.attributes.reader import attribute_frame
from lmseg.attributes.scoring import DEFAULT_QUESTIONS, ScoringMethod
from lmseg.attributes.store import read_table
from lmseg.llm.backends.base import SamplingSettings
from lmseg.llm.backends.vllm_backend import VLLMBackend
from lmseg.llm.instruction import load_instruction
from lmseg.paths import default_llm_path
from lmseg.vocab import get_vocabulary

METHODS = {
    "generate": None,
    # the default questions set their own calibration weights: uncalibrated means every weight 0
    "scored-raw": ScoringMethod(tuple(replace(q, calibration=0.0) for q in DEFAULT_QUESTIONS)),
    "scored": ScoringMethod(),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default="ade847")
    parser.add_argument("--model", type=Path, default=default_llm_path())
    parser.add_argument("--every", type=int, default=12, help="take every N-th class")
    parser.add_argument("--methods", default=",".join(METHODS), help=f"comma list of {', '.join(METHODS)}")
    parser.add_argument("--keep", type=Path, help="folder to keep the tables in")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    vocab = get_vocabulary(args.dataset)
    indices = list(range(0, len(vocab), args.every))
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.keep or Path(tmp)
        backend = VLLMBackend(args.model, library_log=folder / "vllm.log")
        backend.next_word_logprobs(["The colour of the object is"], ["red"])  # start the engine before timing
        results = []
        for name in args.methods.split(","):
            job = GenerationJob(vocab, load_instruction(None, default=DEFAULT_INSTRUCTION), SamplingSettings(),
                                AnswerLimits(), folder / f"{args.dataset}-{name}.parquet", class_indices=indices,
                                overwrite=True, scoring=METHODS[name])
            report = run_generation(job, backend, progress=False)
            quality = table_report(attribute_frame(read_table(job.output)))
            results.append((name, report, quality))
            print(f"\n== {name}: {report.generated} of {len(indices)} classes in {report.seconds:.1f} s "
                  f"({len(report.failed)} failed)\n{format_report(quality)}", flush=True)

    print(f"\nmodel {args.model.name}, {args.dataset}, {len(indices)} classes (every {args.every}-th)")
    print(f"{'method':<12} {'rows':>5} {'failed':>6} {'seconds':>8} "
          f"{'top colour':>10} {'top shape':>9} {'top texture':>11} {'shape no-colour':>15} {'texture no-colour':>17}")
    for name, report, quality in results:
        colour, shape, texture = quality.groups
        print(f"{name:<12} {report.generated:>5} {len(report.failed):>6} {report.seconds:>8.1f} "
              f"{colour.top_share:>10.1%} {shape.top_share:>9.1%} {texture.top_share:>11.1%} "
              f"{1 - shape.colour_phrase_share:>15.1%} {1 - texture.colour_phrase_share:>17.1%}")


if __name__ == "__main__":
    main()
