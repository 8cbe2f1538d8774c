"""Evaluate a segmenter on a benchmark split and write an mIoU report.

Examples::

    python -m pipelines.evaluate --model trident_vitb16 --dataset ade150 --data-root /data
    python -m pipelines.evaluate --model lmseg_vitb16 --checkpoint lmseg.safetensors \\
        --set attribute_table=cache/attributes/ade150/SmolLM2-135M-Instruct.parquet --dataset ade150 --data-root /data
    python -m pipelines.evaluate --model trident_vitb16 --set clip=openai --set dino=dino_vitb16 --set sam=sam_vit_b \\
        --set benchmark=voc20 --set config.window_batch=32 --dataset voc20 --data-root /data
    python -m pipelines.evaluate --model trident_tiny --dataset ade150 --data-root /data --limit 20
    # your own labelled folder (label PNG value = class index, line 1 of classes.txt = class 0):
    python -m pipelines.evaluate --model M --dataset folder --data-root my_data/ --ignore-values 255
    # shards (any machines; same --output or copy the shard files into one folder), then merge:
    python -m pipelines.evaluate --model M --dataset ade150 --data-root /data --shard-index 0 --num-shards 4
    python -m pipelines.evaluate --merge --num-shards 4 --output cache/evaluations/M/ade150

Outputs in --output (default cache/evaluations/<model>/<dataset>[-limit<N>]): report.json,
report.md, iou.png (per-class IoU chart), confusion.npy, and state.npz (the progress; shard
runs write shard-<i>-of-<n>.state.npz instead). An interrupted run (Ctrl-C, crash, killed
machine) continues where it stopped when the same command is run again; if a setting changed,
it refuses and lists the differences (--restart discards the old progress).

Model options: --checkpoint PATH and --device are passed to the model's builder as
checkpoint= and device=; --set key=value passes any other builder option (values are parsed
as JSON when they can be: 0.5, true, null, [1,2]; otherwise kept as text). Dotted keys set
fields of a settings object: --set config.stride=112 (Trident), --set
config.refinement.enabled=true, --set inference.short_side=512 (LMSeg); the report records
the resulting settings.

Exit status: 0 report written; 2 bad input (data, model, options, state of other settings);
1 a sample or the model failed (progress saved: fix and rerun); 130 interrupted (progress saved).
"""

from __future__ import annotations

import argparse
import sys
from functools import partial
from pathlib import Path

from lmseg.errors import LmsegError
from lmseg.evaluation.metric import format_percent
from lmseg.io.shards import shard_from_args
from pipelines.cli import run_command, stage_parser
from pipelines.executor_options import add_executor_arguments, ray_options_from_args
from pipelines.model_options import add_model_arguments, build_segmenter, parse_options


def build_parser() -> argparse.ArgumentParser:
    from lmseg.data import available_datasets

    parser = stage_parser("evaluate", __doc__)
    add_model_arguments(parser, required=False)  # --merge needs no model
    data = parser.add_argument_group("data")
    data.add_argument(
        "--dataset", choices=[*available_datasets(), "folder"],
        help="benchmark to evaluate on, or 'folder': --data-root holds images/, labels/ and classes.txt",
    )
    data.add_argument("--data-root", type=Path, help="datasets root (holding ADEChallengeData2016, VOCdevkit, ...)")
    data.add_argument("--ignore-values", default="255", help="folder: stored label values not evaluated (comma list)")
    data.add_argument("--reduce-zero-label", action="store_true", help="folder: stored 0 = unlabelled, 1..K = classes")
    data.add_argument("--split", help="split (default: the benchmark's evaluation split)")
    data.add_argument("--layout", default="auto", help="prepared layout name (default: the first one found)")
    data.add_argument("--limit", type=int, help="only the first N samples (a quick look)")
    run = parser.add_argument_group("run")
    run.add_argument("--output", type=Path, help="report folder (default cache/evaluations/<model>/<dataset>)")
    run.add_argument("--shard-index", type=int, help="evaluate only this shard (0-based)")
    run.add_argument("--num-shards", type=int, help="number of shards")
    run.add_argument("--merge", action="store_true", help="sum the finished shard states in --output into a report")
    run.add_argument("--restart", action="store_true", help="discard saved progress instead of resuming it")
    run.add_argument("--workers", type=int, default=2, help="image decoding processes (0 = none)")
    run.add_argument("--save-every", type=int, default=25, help="save progress after this many samples")
    run.add_argument("-v", "--verbose", action="store_true")
    add_executor_arguments(parser)
    return parser


def weights_identity(options: dict[str, object]) -> dict[str, object]:
    """sha256 of every option that names an existing file (checkpoint, attribute table, ...)."""
    from lmseg.inference.protocol import weight_files

    return {key: entry for key, entry in weight_files(options).items() if "sha256" in entry}


def open_folder(args: argparse.Namespace):
    """``--dataset folder``: ``<data-root>/images``, ``<data-root>/labels`` and ``<data-root>/classes.txt``."""
    from lmseg.data import folder_dataset

    try:
        ignore = tuple(int(v) for v in args.ignore_values.split(",") if v.strip())
    except ValueError:
        raise LmsegError(f"--ignore-values must be a comma list of integers, got {args.ignore_values!r}") from None
    root = args.data_root
    if not (root / "classes.txt").is_file():
        raise LmsegError(f"--dataset folder: {root / 'classes.txt'} (one class per line, line 1 = class 0) is missing")
    return folder_dataset(
        root / "images", root / "labels", root / "classes.txt",
        ignore_values=ignore, reduce_zero_label=args.reduce_zero_label, name=root.resolve().name,
    )


def run_settings(segmenter, *, settings: dict[str, object], vocabulary, options: dict[str, object]) -> dict:
    """The settings that identify an evaluation: ``settings`` and the segmenter's protocol record."""
    from lmseg.inference.protocol import protocol_record

    return {**settings, "protocol": protocol_record(segmenter, vocabulary, options=options)}


def default_output(model: str, dataset: str, limit: int | None) -> Path:
    from lmseg.paths import cache_dir, model_slug

    return cache_dir() / "evaluations" / model_slug(model) / (dataset + (f"-limit{limit}" if limit else ""))


def run(args: argparse.Namespace) -> int:
    if args.merge:
        return merge(args)
    from lmseg.data import get_benchmark, open_dataset
    from lmseg.evaluation.report import write_report
    from lmseg.evaluation.runner import evaluate_dataset
    from lmseg.evaluation.shards import state_path_for

    for flag, value in (("--model", args.model), ("--dataset", args.dataset), ("--data-root", args.data_root)):
        if value is None:
            raise LmsegError(f"{flag} is required (or use --merge)")
    if args.limit is not None and args.limit < 1:
        raise LmsegError(f"--limit must be at least 1, got {args.limit}")
    if args.save_every < 1:
        raise LmsegError("--save-every must be at least 1")
    shard = shard_from_args(args.shard_index, args.num_shards)
    ray_options = ray_options_from_args(args, default_batch_size=1)
    options = parse_options(args)
    if ray_options is not None:  # workers may run in other folders (or on other machines)
        args.data_root = args.data_root.resolve()
    if args.dataset == "folder":
        split = "folder"
        dataset = open_folder(args)
    else:
        split = args.split or get_benchmark(args.dataset).default_split
        dataset = open_dataset(args.dataset, args.data_root, split=split, layout=args.layout)
    output = args.output or default_output(args.model, dataset.name, args.limit)
    state_path = state_path_for(output, shard)
    make_segmenter = partial(build_segmenter, args.model, options)
    identity_of = partial(run_settings, settings={"model": args.model, "model_options": options,
                                                  "weights": weights_identity(options), "split": split},
                          vocabulary=dataset.vocabulary, options=options)
    common = {"limit": args.limit, "state_path": state_path, "restart": args.restart, "save_every": args.save_every}
    if ray_options is None:
        segmenter = make_segmenter()
        result = evaluate_dataset(segmenter, dataset, identity=identity_of(segmenter), shard=shard,
                                  num_workers=args.workers, **common)
    else:  # the driver builds no model: the workers do, and one of them describes it
        from lmseg.distributed.vision import evaluate_dataset_on_ray

        result = evaluate_dataset_on_ray(make_segmenter, dataset, ray_options, identity_of=identity_of, **common)
    speed = result.images_per_second
    throughput = f"{speed:.2f} images/s" if speed else "nothing new to process"
    if shard is not None:
        print(
            f"shard {shard[0]} of {shard[1]}: {result.num_samples} samples counted ({throughput}); "
            f"state in {state_path}. Merge with: python -m pipelines.evaluate --merge --num-shards {shard[1]} "
            f"--output {output}"
        )
        return 0
    paths = write_report(
        output,
        result.scores,
        result.class_names,
        settings=result.identity,
        run={
            "data_root": str(args.data_root),
            "workers": args.workers,
            "processed_this_run": result.processed,
            "seconds_this_run": round(result.seconds, 3),
            "images_per_second": round(speed, 3) if speed else None,
        },
        num_samples=result.num_samples,
        num_selected=result.num_selected,
    )
    print(
        f"{args.model} on {args.dataset}: mIoU {format_percent(result.scores.mean_iou)}, "
        f"mAcc {format_percent(result.scores.mean_accuracy)}, pixel acc {format_percent(result.scores.pixel_accuracy)} "
        f"over {result.num_samples} sample(s) ({throughput})"
    )
    print(f"report: {paths['markdown']} (also {paths['json'].name}, {paths['chart'].name})")
    return 0


def merge(args: argparse.Namespace) -> int:
    from lmseg.evaluation.metric import SegmentationMetric
    from lmseg.evaluation.report import write_report
    from lmseg.evaluation.shards import merge_states, shard_state_paths

    if args.output is None or args.num_shards is None:
        raise LmsegError("--merge needs --output (the folder with the shard states) and --num-shards")
    state = merge_states(shard_state_paths(args.output, args.num_shards))
    dataset = state.identity.get("dataset", {})
    ignore_index = int(dataset.get("ignore_index", 255))
    scores = SegmentationMetric.from_confusion(state.confusion, ignore_index).compute()
    class_names = dataset.get("class_names") or [str(i) for i in range(state.confusion.shape[0])]
    paths = write_report(
        args.output,
        scores,
        class_names,
        settings=state.identity,
        run={"merged_shards": args.num_shards},
        num_samples=len(state.done),
        num_selected=len(state.done),
    )
    print(f"merged {args.num_shards} shards ({len(state.done)} samples): mIoU {format_percent(scores.mean_iou)}")
    print(f"report: {paths['markdown']}")
    return 0


def run_or_report(args: argparse.Namespace) -> int:
    """``run``, with a sample that cannot be evaluated reported as exit status 1."""
    from lmseg.evaluation.runner import SampleFailure

    try:
        return run(args)
    except SampleFailure as exc:
        print(f"error: {exc}", file=sys.stderr)
        print("progress is saved: fix the problem and run the same command again to resume", file=sys.stderr)
        return 1


def main(argv: list[str] | None = None) -> int:
    return run_command(build_parser(), run_or_report, argv,
                       interrupted="progress is saved; run the same command again to resume")


if __name__ == "__main__":
    sys.exit(main())
