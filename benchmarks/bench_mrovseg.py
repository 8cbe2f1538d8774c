"""MROVSeg inference speed and peak memory vs resolution, slices + global view against the
global view alone (real open_clip ViT-B/16 architecture, random weights).

    .venv/bin/python -m benchmarks.bench_mrovseg                     # CPU: 512, 1024, 2048 long side
    python -m benchmarks.bench_mrovseg --device cuda --config mrovseg_vitl14 --bf16

Images are 2:1 (``L x L/2``, as Cityscapes' 2048 x 1024) and are segmented at their own size
(``short_side=None``: the working resolution is the image's), 150 classes. Each (size, mode)
runs in a fresh subprocess so that the CPU peak memory (peak RSS, model included; also shown
above the RSS after building the model) belongs to that configuration alone; on CUDA the peak
is ``torch.cuda.max_memory_allocated``. "CPU s" is the process's user + system CPU time per
image (less sensitive than wall time to other load on a shared machine). Text encoding is excluded (class embeddings are
random; they are computed once per vocabulary and cached in real use). Speed does not depend
on weight values. The last column is the ratio to the global-only run at the same size.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import torch


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def measure(config: str, long_side: int, slices: bool, classes: int, iters: int, device: str, bf16: bool) -> dict:
    """Seconds per image and peak memory of one configuration (run in this process)."""
    import dataclasses

    import numpy as np

    from lmseg.inference.tiler import window_grid
    from lmseg.models.mrovseg import InferenceConfig, MROVSegPredictor, build_model, get_config

    torch.manual_seed(0)
    cfg = dataclasses.replace(get_config(config), use_slices=slices)
    model = build_model(cfg, device=device)
    pred = MROVSegPredictor(model, inference=InferenceConfig(short_side=None, max_long_side=4096), cache=None,
                            amp=bf16)
    text = torch.nn.functional.normalize(torch.randn(classes, 1, model.clip.embed_dim), dim=-1).to(device)
    pred.text = lambda vocabulary: text  # random class embeddings: text encoding is not timed
    image = np.random.default_rng(0).integers(0, 256, (long_side // 2, long_side, 3), dtype=np.uint8)
    vocab = [f"class {i}" for i in range(classes)]
    base = _rss_mb()
    pred.scores_tensor(image[: cfg.slice_size, : cfg.slice_size], vocab)  # warm-up (one slice: cheap on CPU)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    t0, c0 = time.perf_counter(), _cpu_s()
    for _ in range(iters):
        pred.scores_tensor(image, vocab)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    seconds, cpu = (time.perf_counter() - t0) / iters, (_cpu_s() - c0) / iters
    peak = torch.cuda.max_memory_allocated() / 2**20 if device.startswith("cuda") else _rss_mb()
    views = 1 + (len(window_grid(long_side // 2, long_side, cfg.slice_size, model.slice_stride)) if slices else 0)
    return {"long_side": long_side, "slices": slices, "views": views, "s_per_image": seconds, "cpu_s": cpu,
            "peak_mb": peak,
            "above_model_mb": peak - base if not device.startswith("cuda") else None}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--config", default="mrovseg_vitb16")
    parser.add_argument("--sizes", type=int, nargs="+", default=[512, 1024, 2048])
    parser.add_argument("--classes", type=int, default=150)
    parser.add_argument("--iters", type=int, default=None, help="timed images per configuration")
    parser.add_argument("--bf16", action="store_true", help="bfloat16 autocast (CUDA)")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--one", default=None, help=argparse.SUPPRESS)  # internal: "size,slices" in a subprocess
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    iters = args.iters or (1 if args.device == "cpu" else 10)
    if args.one:
        size, slices = args.one.split(",")
        print(json.dumps(measure(args.config, int(size), slices == "1", args.classes, iters, args.device, args.bf16)))
        return 0
    print(f"{args.config} on {args.device}, {args.classes} classes, {iters} timed image(s) per row, "
          f"threads={torch.get_num_threads()}{', bf16' if args.bf16 else ''}")
    header = ("long side", "mode", "views", "s/image", "CPU s", "peak MB", "above model", "x global")
    print(" ".join(f"{h:>{w}}" for h, w in zip(header, (9, 14, 5, 8, 7, 8, 11, 8))))
    for size in args.sizes:
        rows = {}
        for slices in (False, True):
            cmd = [sys.executable, "-m", "benchmarks.bench_mrovseg", "--one", f"{size},{int(slices)}",
                   "--config", args.config, "--classes", str(args.classes), "--iters", str(iters),
                   "--device", args.device] + (["--bf16"] if args.bf16 else []) + (
                   ["--threads", str(args.threads)] if args.threads else [])
            done = subprocess.run(cmd, capture_output=True, text=True, check=True)
            r = rows[slices] = json.loads(done.stdout.strip().splitlines()[-1])
            above = f"{r['above_model_mb']:.0f}" if r["above_model_mb"] is not None else "-"
            ratio = r["s_per_image"] / rows[False]["s_per_image"]
            mode = "slices+global" if slices else "global only"
            print(f"{size:>9} {mode:>14} {r['views']:>5} {r['s_per_image']:>8.2f} {r['cpu_s']:>7.2f} "
                  f"{r['peak_mb']:>8.0f} {above:>11} {ratio:>8.2f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
