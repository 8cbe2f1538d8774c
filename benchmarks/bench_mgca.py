"""MGCA throughput: training pairs/s (webdataset tar files vs a folder, with and without loader
workers) and inference seconds per image against LMSeg at the same input size.

    .venv/bin/python -m benchmarks.bench_mgca                     # CPU: tiny models, short
    python -m benchmarks.bench_mgca --device cuda --model vitb16  # GPU: ViT-B/16 architectures

Data: the 16 real image-caption pairs of tests/fixtures/mgca_captions, repeated ``--repeat``
times, written once as img2dataset-style tar files and once as a folder of image files with
a CSV table. Every configuration reads the same pairs in the same order (the task's
deterministic sampler), so only the storage and the number of loader workers differ.

* ``data``: pairs/s of the data pipeline alone (read, decode, crop, phrases, collate);
* ``train``: pairs/s of whole training steps (data + forward + backward + AdamW) of the MGCA
  task with random weights (speed does not depend on weight values).

Inference: seconds per image of ``mgca_*`` with each prediction unit and of ``lmseg_*``, both
at the same short side, on the fixture images, text embeddings computed before timing.
Ratios are against baselines measured in the same run (tar files vs folder; MGCA vs LMSeg).
"""

from __future__ import annotations

import argparse
import csv
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

FIXTURE = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "mgca_captions" / "captions.csv"


def write_data(root: Path, repeat: int) -> tuple[Path, Path]:
    """The fixture pairs ``repeat`` times as tar files (``root/tars``) and as a folder + CSV."""
    from lmseg.captions.table import read_caption_table
    from lmseg.captions.webdataset import SkipLog
    from lmseg.captions.write import write_tars

    pairs = read_caption_table(FIXTURE, SkipLog()) * repeat
    write_tars(pairs, root / "tars", per_tar=64)
    folder = root / "folder"
    folder.mkdir()
    with open(folder / "pairs.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["image", "caption"])
        for i, pair in enumerate(pairs):
            name = f"{i:06d}{pair.path.suffix}"
            (folder / name).write_bytes(pair.read_image_bytes())
            writer.writerow([name, pair.caption])
    return root / "tars", folder / "pairs.csv"


def measure_training(task, *, workers: int, batch: int, steps: int, train: bool, device: torch.device) -> float:
    """Pairs per second over ``steps`` batches (after one warm-up batch)."""
    from torch.utils.data import DataLoader

    model = task.build_model().to(device) if train else None
    optimizer = None
    if model is not None:
        optimizer = torch.optim.AdamW([{"params": g.params, "lr": 1e-4 * g.lr_scale} for g in task.param_groups(model)])
    loader = DataLoader(task.train_dataset(), batch_size=batch, sampler=range((steps + 1) * batch),
                        collate_fn=task.collate, num_workers=workers)
    start = None
    for i, batch_data in enumerate(loader):
        if model is not None:
            optimizer.zero_grad(set_to_none=True)
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda"):
                loss = task.loss(model, batch_data)["loss"]
            loss.backward()
            optimizer.step()
            if device.type == "cuda":
                torch.cuda.synchronize()
        if i == 0:
            start = time.perf_counter()
    return steps * batch / (time.perf_counter() - start)


def measure_inference(seg, images: list[np.ndarray], vocabulary: list[str], repeats: int) -> float:
    """Seconds per image (text embeddings computed before timing)."""
    seg.predict(images[0], vocabulary)
    start = time.perf_counter()
    for _ in range(repeats):
        for image in images:
            seg.predict(image, vocabulary)
    return (time.perf_counter() - start) / (repeats * len(images))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--model", choices=("tiny", "vitb16"), default="tiny")
    parser.add_argument("--repeat", type=int, default=4, help="copies of the 16 fixture pairs")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--short-side", type=int, default=None, help="inference short side (default 96 / 448)")
    parser.add_argument("--infer-repeats", type=int, default=2)
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    from lmseg.captions.table import read_caption_table
    from lmseg.captions.webdataset import SkipLog
    from lmseg.models.mgca import TRAIN_TASKS

    name = f"mgca_{args.model}"
    print(f"device {device}, torch threads {torch.get_num_threads()}, model {name}")
    with tempfile.TemporaryDirectory() as tmp:
        tars, table = write_data(Path(tmp), args.repeat)
        results: dict[tuple[str, str, int], float] = {}
        for mode in ("data", "train"):
            for storage, section in (("tars", {"tars": str(tars)}), ("folder", {"table": str(table)})):
                for workers in (0, args.workers):
                    task = TRAIN_TASKS["mgca"]({"name": name, "clip": None}, section, 0)
                    rate = measure_training(task, workers=workers, batch=args.batch, steps=args.steps,
                                            train=mode == "train", device=device)
                    results[(mode, storage, workers)] = rate
                    print(f"{mode:5s} {storage:6s} workers={workers}: {rate:8.1f} pairs/s "
                          f"(x{rate / results[(mode, 'tars', 0)] if storage == 'folder' or workers else 1:.2f} "
                          f"vs tars, 0 workers)")
        pairs = read_caption_table(FIXTURE, SkipLog())
        images = [np.asarray(Image.open(path).convert("RGB")) for path in dict.fromkeys(p.path for p in pairs)]
    infer_images(args, images, device)
    return 0


def infer_images(args: argparse.Namespace, images: list[np.ndarray], device: torch.device) -> None:
    """Print LMSeg and MGCA (each unit) seconds per image at the same short side (random weights)."""
    from lmseg.models.lmseg import InferenceConfig as LMSegInference
    from lmseg.models.lmseg import LMSegPredictor
    from lmseg.models.lmseg import build_model as build_lmseg
    from lmseg.models.lmseg import get_config as lmseg_config

    short = args.short_side or (96 if args.model == "tiny" else 448)
    vocabulary = ["giraffe", "tree", "food", "broccoli", "bread", "sky", "grass", "person", "car", "water"]
    lm = LMSegPredictor(build_lmseg(lmseg_config(f"lmseg_{args.model}"), device=device),
                        inference=LMSegInference(short_side=short))
    base = measure_inference(lm, images, vocabulary, args.infer_repeats)
    print(f"infer lmseg_{args.model} short side {short}: {base:.3f} s/image")
    for unit in ("pixel", "region", "adaptive"):
        took = measure_inference(build_mgca(args.model, short, unit, device), images, vocabulary, args.infer_repeats)
        print(f"infer mgca_{args.model} unit={unit} short side {short}: {took:.3f} s/image "
              f"(x{took / base:.2f} of LMSeg)")


def build_mgca(model: str, short: int, unit: str, device: torch.device):
    """An MGCA predictor with random weights (speed does not depend on them)."""
    from lmseg.models.mgca import InferenceConfig, MGCAPredictor, build_model, get_config

    net = build_model(get_config(f"mgca_{model}"), device=device)
    return MGCAPredictor(net, inference=InferenceConfig(short_side=short, unit=unit))


if __name__ == "__main__":
    raise SystemExit(main())
