"""Evaluation throughput on the real ADE-150 samples: does decoding overlap inference?

The three ADE-150 validation samples of ``tests/fixtures/samples`` are hard-linked ``--repeat``
times into a temporary "folder" dataset (official ADE labels, reduce-zero-label, 150 classes)
and evaluated with :func:`lmseg.evaluation.runner.evaluate_dataset`, the loop behind
``python -m pipelines.evaluate``, by two segmenters:

* ``constant``: answers class 0 everywhere at once, so the run measures the loop itself
  (JPEG/PNG decoding, label decoding, the confusion matrix);
* ``--model`` (default ``lmseg_tiny``, random weights): a real model, so decoding and
  inference compete for the CPU or overlap with it.

Each runs with ``--workers`` decoding processes and with none (decoding in the main process,
the in-run baseline). Reported: images/s, and the speed-up of workers over none.

    python -m benchmarks.bench_evaluate                       # 3 x 10 images, workers 0 and 2
    python -m benchmarks.bench_evaluate --repeat 30 --model trident_tiny --device cuda

Prints a table; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from lmseg.data import folder_dataset
from lmseg.evaluation.runner import evaluate_dataset
from lmseg.inference import Segmentation, as_rgb_array, as_vocabulary
from lmseg.registry import create_segmenter
from lmseg.vocab import get_vocabulary

SAMPLES = Path(__file__).resolve().parents[1] / "tests/fixtures/samples/ade150_sceneparsing_val3"


class ConstantSegmenter:
    """Class 0 everywhere: costs nothing, so only the evaluation loop is timed."""

    def predict(self, image, vocabulary, *, return_scores: bool = False) -> Segmentation:
        rgb = as_rgb_array(image)
        return Segmentation(np.zeros(rgb.shape[:2], np.int32), tuple(as_vocabulary(vocabulary).names))

    def logits(self, image, vocabulary) -> np.ndarray:
        rgb = as_rgb_array(image)
        scores = np.zeros((len(as_vocabulary(vocabulary)), *rgb.shape[:2]), np.float32)
        scores[0] = 1.0
        return scores

    def settings(self) -> dict:
        return {"constant_class": 0}


def build_split(root: Path, repeat: int) -> int:
    """Hard-link the ADE samples ``repeat`` times into ``root/images`` and ``root/labels``."""
    (root / "images").mkdir(parents=True)
    (root / "labels").mkdir()
    for copy in range(repeat):
        for image in sorted((SAMPLES / "images").glob("*.jpg")):
            os.link(image, root / "images" / f"{copy:04d}_{image.name}")
            os.link(SAMPLES / "labels" / f"{image.stem}.png", root / "labels" / f"{copy:04d}_{image.stem}.png")
    return len(list((root / "images").iterdir()))


def time_run(segmenter: object, root: Path, workers: int) -> float:
    """Seconds to evaluate the whole split (no state file, no progress bar)."""
    dataset = folder_dataset(root / "images", root / "labels", get_vocabulary("ade150"), reduce_zero_label=True)
    start = time.perf_counter()
    evaluate_dataset(segmenter, dataset, num_workers=workers, progress=False)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=10, help="copies of the 3 samples (default 10: 30 images)")
    parser.add_argument("--model", default="lmseg_tiny", help="a registered segmenter that needs no weights")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--workers", type=int, default=2, help="decoding processes to compare with none")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "split"
        count = build_split(root, args.repeat)
        models = {"constant": ConstantSegmenter(), args.model: create_segmenter(args.model, device=args.device)}
        print(f"{count} ADE-150 images ({args.repeat} x 3 real samples), {os.cpu_count()} CPU cores")
        print("| segmenter | workers | seconds | images/s | speed-up vs 0 workers |\n|---|---|---|---|---|")
        for name, segmenter in models.items():
            time_run(segmenter, root, 0)  # warm-up: page cache, lazy initialisation, text embeddings
            baseline = time_run(segmenter, root, 0)
            timed = time_run(segmenter, root, args.workers)
            for workers, seconds in ((0, baseline), (args.workers, timed)):
                print(f"| {name} | {workers} | {seconds:.2f} | {count / seconds:.1f} | {baseline / seconds:.2f}x |")


if __name__ == "__main__":
    main()
