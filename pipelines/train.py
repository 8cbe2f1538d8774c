"""Train a model: ``python -m pipelines.train --config configs/lmseg_vitb16_cocostuff.yaml``.

The config names the method (``task:``, default ``lmseg``) and holds the shared sections
(``run:``, ``optim:``) and the method's own (``model:``, ``data:``); see
:mod:`lmseg.engine.config`. The loop, checkpoints, exact resume, metrics and DDP are
:class:`lmseg.engine.trainer.Trainer`'s (docs/engine.md).

Examples::

    python -m pipelines.train --config configs/lmseg_tiny_samples.yaml    # the bundled samples, a few minutes on a CPU
    python -m pipelines.train --config configs/lmseg_vitb16_cocostuff.yaml --set optim.lr=1e-4 --set max_steps=40000
    torchrun --standalone --nproc_per_node=4 -m pipelines.train --config ... --set optim.batch_size=1

Running the same command again resumes from ``<output_dir>/checkpoints/last.pt``; ``--resume
PATH`` resumes from another checkpoint. A resumed run refuses settings that differ from the
checkpoint's (it lists them), except output folder, logging / checkpoint frequency, device
and loader processes, which it applies and logs.

Prints a JSON summary (step, the last step's loss and loss terms, e.g. MGCA's loss_image /
loss_object / loss_region / loss_pixel, output_dir, the method's logged values) at the end.
Exit status: 0 done; 2 bad config, override, checkpoint or data (``error: ...``, nothing
trained); 130 interrupted (the last checkpoint is kept).
"""

from __future__ import annotations

import argparse
import json
import sys

from pipelines.cli import run_command, stage_parser


def build_parser() -> argparse.ArgumentParser:
    parser = stage_parser("train", __doc__)
    parser.add_argument("--config", required=True, help="YAML file (see configs/)")
    parser.add_argument("--resume", default=None,
                        help="training checkpoint to resume from (default: <output_dir>/checkpoints/last.pt)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config value, e.g. --set optim.max_steps=100 (JSON or YAML value; repeatable)")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logs of every library")
    return parser


def run(args: argparse.Namespace) -> int:
    from lmseg.engine.config import load_train_config
    from lmseg.engine.trainer import Trainer
    from lmseg.registry import create_train_task

    config = load_train_config(args.config, args.set)
    summary = Trainer(config, create_train_task(config)).fit(resume=args.resume)
    print(json.dumps(summary))
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_command(build_parser(), run, argv,
                       interrupted="the last checkpoint is kept; run the same command again to resume from it")


if __name__ == "__main__":
    sys.exit(main())
