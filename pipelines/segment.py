"""Segment your own images into the classes you name.

Examples::

    python -m pipelines.segment photo.jpg --model trident_vitb16 --classes "cat,dog,sofa;couch"
    python -m pipelines.segment photos/ --model lmseg_vitb16 --checkpoint lmseg.safetensors \\
        --dataset ade150 --output out/ --scores
    python -m pipelines.segment photos/ --model trident_tiny --vocabulary my_classes.txt
    python -m pipelines.segment photos/ --model trident_tiny --dataset voc20 \\
        --attributes cache/attributes/voc20/SmolLM2-135M-Instruct.parquet

For each image it writes <name>_label.png (pixel value = class index; 16-bit above 255
classes), <name>_overlay.png (colours and a legend) and, with --scores, <name>_scores/ (one
8-bit map per class, 255 = score 1). classes.txt lists the class indices; protocol.json records
the model, weights, class list, resizes, settings, precision and library versions. Folders are searched
recursively and their structure is kept. The output folder must not be the input folder or
inside it (outputs never overwrite inputs).

In Python::

    from lmseg import create_segmenter; from lmseg.inference.outputs import segment_files
    segment_files(create_segmenter("trident_vitb16", ...), "photos/", ["cat", "dog"], "out/")

Model options as for evaluate: --checkpoint, --device, --attributes TABLE (a stage-1 attribute
table of the classes, for every method), --set KEY=VALUE.
--shard-index I --num-shards N segments only the I-th contiguous block of the sorted images
(run the shards anywhere with the same --output).

An image that cannot be segmented (unreadable or truncated file, too large, an aspect ratio
or size the model refuses) is reported at once on stderr as "error: <file>: <why>", counted in
the final summary, and never stops the rest of the folder.

Exit status: 0 all images done; 1 some images failed (each named; the others are written);
2 bad input (no images, bad vocabulary, unknown model or option, an attribute table that cannot
be read or is of other classes, output folder inside the input or an existing file).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pipelines.cli import require_at_least, run_command, stage_parser, vocabulary_from_args
from pipelines.executor_options import add_executor_arguments, ray_options_from_args
from pipelines.model_options import add_model_arguments, build_segmenter, check_attribute_table, parse_options


def build_parser() -> argparse.ArgumentParser:
    parser = stage_parser("segment", __doc__)
    parser.add_argument("input", type=Path, help="an image file or a folder of images")
    add_model_arguments(parser, required=True)
    vocab = parser.add_argument_group("classes (one of)")
    source = vocab.add_mutually_exclusive_group(required=True)
    source.add_argument("--classes", help='comma list, synonyms after ";" (e.g. "cat,dog,sofa;couch")')
    source.add_argument("--vocabulary", type=Path, help="text file, one class per line, synonyms after ',' or ';'")
    source.add_argument("--dataset", help="a built-in vocabulary (ade150, voc21, ...)")
    out = parser.add_argument_group("output")
    out.add_argument(
        "--output", type=Path, default=Path("segment_output"), help="output folder (default ./segment_output)"
    )
    out.add_argument("--scores", action="store_true", help="also write per-class score maps")
    out.add_argument("--max-class-pixels", type=int, default=None,
                     help="most pixels x classes of one image where a map per class is kept at the image's size "
                          "(--scores, or a model that does not work in chunks of classes; default 1,000,000,000)")
    out.add_argument("--batch-size", type=int, default=4, help="images decoded per batch")
    out.add_argument("--workers", type=int, default=2, help="image decoding processes (0 = none)")
    out.add_argument("--shard-index", type=int, help="segment only this shard of the images (0-based)")
    out.add_argument("--num-shards", type=int, help="number of shards")
    parser.add_argument("-v", "--verbose", action="store_true")
    add_executor_arguments(parser)
    return parser


def run(args: argparse.Namespace) -> int:
    from lmseg.inference.outputs import MAX_CLASS_PIXELS, check_output_dir, find_images, segment_files
    from lmseg.io.shards import shard_from_args

    require_at_least("--batch-size", args.batch_size, 1)
    require_at_least("--workers", args.workers, 0)
    vocabulary = vocabulary_from_args(args)
    options = parse_options(args)
    check_attribute_table(options, vocabulary)
    require_at_least("--max-class-pixels", args.max_class_pixels, 1)
    max_class_pixels = MAX_CLASS_PIXELS if args.max_class_pixels is None else args.max_class_pixels
    shard = shard_from_args(args.shard_index, args.num_shards)
    ray_options = ray_options_from_args(args, default_batch_size=1)
    find_images(args.input)  # fail on a missing input before loading a model
    check_output_dir(args.input, args.output)
    def report(path, message) -> None:
        print(f"error: {path}: {message}", file=sys.stderr)

    if ray_options is None:
        summary = segment_files(
            build_segmenter(args.model, options), args.input, vocabulary, args.output, scores=args.scores,
            batch_size=args.batch_size, num_workers=args.workers, shard=shard, options=options, on_failure=report,
            max_class_pixels=max_class_pixels,
        )
    else:
        from functools import partial

        from lmseg.distributed.vision import segment_files_on_ray

        make_segmenter = partial(build_segmenter, args.model, options)  # built on the workers, never here
        summary = segment_files_on_ray(make_segmenter, args.input, vocabulary, args.output, ray_options,
                                       model_options=options, scores=args.scores, on_failure=report,
                                       max_class_pixels=max_class_pixels)
    covered = "the workers' model loading included" if ray_options is not None else "model loading not included"
    print(
        f"segmented {len(summary.done)} image(s) into {len(vocabulary)} classes in {summary.seconds:.1f} s "
        f"(encoding the class names and segmenting; {covered}); {len(summary.failed)} failed; outputs in {args.output}"
    )
    if summary.failed:
        print(f"{len(summary.failed)} image(s) failed and were skipped (listed above):", file=sys.stderr)
        for path, _ in summary.failed:
            print(f"  {path}", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_command(build_parser(), run, argv, interrupted="images already written are kept")


if __name__ == "__main__":
    sys.exit(main())
