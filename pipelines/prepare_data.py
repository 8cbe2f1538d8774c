"""Convert official dataset downloads into the prepared layouts, then check what is there.

Examples::

    python -m pipelines.prepare_data --dataset ade150 --raw-root /data/raw --out-root /data
    python -m pipelines.prepare_data --dataset ade847 --raw-root /data/raw --out-root /data --max-size 512
    python -m pipelines.prepare_data --dataset voc21 --out-root /data --check-only

What each dataset needs (folder trees in lmseg/data/<family>.py and lmseg/data/prepare/):
    ade150        annotations -> annotations_detectron2 (reduce-zero-label)
    ade847        ADE20K 2021 *_seg.png -> uint16 TIFF train ids (65535 = ignore), shorter side <= 512
    cocostuff171  stuffthingmaps -> *_labelTrainIds.png (171 classes)
    coco_object   stuffthingmaps -> *_instanceTrainIds.png (background + 80 things)
    cityscapes19  *_gtFine_labelIds.png -> *_gtFine_labelTrainIds.png
    voc20, voc21, camvid11   none: the official files are read as they are
    pc59, pc459   Pascal Context trainval/*.mat (needs scipy) -> annotations_detectron2/pc59_<split>/*.png
                  (59 classes, 255 = ignore) or pc459_<split>/*.tif (uint16, 65535 = ignore)

Conversions are idempotent: existing outputs are kept (unless --overwrite) and every write is
atomic, so an interrupted run is finished by running it again. Inputs are never modified.
The check decodes every label of the split, compares label and image sizes, and compares the
number of pairs with the official split size.

Exit status: 0 prepared and checked; 1 the check found broken samples (listed);
2 bad input (missing folders, unmatched files, values outside the class range...).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from tqdm import tqdm

from lmseg.data import available_datasets, get_benchmark
from lmseg.data.prepare import (
    ConversionSummary,
    check_dataset,
    prepare_ade150,
    prepare_ade847,
    prepare_cityscapes19,
    prepare_coco_object,
    prepare_cocostuff171,
    prepare_pc59,
    prepare_pc459,
)
from lmseg.errors import LmsegError
from pipelines.cli import require_at_least, run_command, stage_parser

Converter = Callable[..., ConversionSummary]
CONVERTERS: dict[str, Converter] = {
    "ade150": prepare_ade150,
    "ade847": prepare_ade847,
    "cocostuff171": prepare_cocostuff171,
    "coco_object": prepare_coco_object,
    "cityscapes19": prepare_cityscapes19,
    "pc59": prepare_pc59,
    "pc459": prepare_pc459,
}


def build_parser() -> argparse.ArgumentParser:
    parser = stage_parser("prepare_data", __doc__)
    parser.add_argument("--dataset", required=True, choices=available_datasets())
    parser.add_argument("--raw-root", type=Path, help="where the official downloads are unpacked")
    parser.add_argument("--out-root", type=Path, help="datasets root the readers use (default: --raw-root)")
    parser.add_argument("--split", help="split to prepare (default: the evaluation split)")
    parser.add_argument("--overwrite", action="store_true", help="rewrite outputs that already exist")
    parser.add_argument("--check-only", action="store_true", help="only check the prepared split under --out-root")
    parser.add_argument(
        "--max-size", type=int, default=512, help="ade847: shorter-side limit as SAN / CAT-Seg (0 = keep full size)"
    )
    parser.add_argument("-v", "--verbose", action="store_true")
    return parser


def run(args: argparse.Namespace) -> int:
    require_at_least("--max-size", args.max_size, 0)
    benchmark = get_benchmark(args.dataset)
    split = args.split or benchmark.default_split
    out_root = args.out_root or args.raw_root
    if out_root is None:
        raise LmsegError("give --out-root (and --raw-root to convert)")
    if out_root.exists() and not out_root.is_dir():
        raise LmsegError(f"--out-root {out_root} is an existing file, not a folder; give the datasets folder")
    if not args.check_only:
        _convert(args, split, out_root)
    dataset = benchmark.open(out_root, split=split)
    expected = benchmark.split_sizes.get(split)
    with tqdm(total=len(dataset), desc=f"checking {args.dataset}/{split}", disable=not sys.stderr.isatty()) as bar:
        report = check_dataset(dataset, expected=expected, progress=bar.update)
    present = int((report.class_pixels > 0).sum()) if report.class_pixels is not None else 0
    print(
        f"{benchmark.title} {split} (layout {dataset.layout}, {out_root}): {report.samples} pairs"
        + ("" if report.complete else f" - the full split has {expected}, so this copy is incomplete")
    )
    print(f"  {present} of {dataset.num_classes} classes present; {report.ignored_pixels} ignored pixels")
    if not report.ok:
        print(f"  {report.problem_count} broken sample(s):", file=sys.stderr)
        for problem in report.problems:
            print(f"    {problem}", file=sys.stderr)
        return 1
    print("  every label decodes to the class range and matches its image size")
    return 0


def _convert(args: argparse.Namespace, split: str, out_root: Path) -> None:
    name = args.dataset
    if name not in CONVERTERS:
        print(f"{name}: no conversion needed; the official files are read as they are")
        return
    if args.raw_root is None:
        raise LmsegError(f"converting {name} needs --raw-root (or use --check-only)")
    options = {"max_size": args.max_size} if name == "ade847" else {}
    summary = CONVERTERS[name](args.raw_root, out_root, split=split, overwrite=args.overwrite, **options)
    print(f"{name} {split}: {summary}")
    for note in summary.notes:
        print(f"  {note}")


def main(argv: list[str] | None = None) -> int:
    return run_command(build_parser(), run, argv)


if __name__ == "__main__":
    sys.exit(main())
