"""How cost grows with the number of classes: time per image and peak memory, class early rejection off and on.

    .venv/bin/python -m benchmarks.bench_vocabulary --model lmseg_vitb16 --classes 150 847 --iters 1 --threads 1
    .venv/bin/python -m benchmarks.bench_vocabulary --model trident_vitb16 --classes 150 847 21843 --max-classes 64

For each class count N it segments one random image with the method's real architecture and
random weights (:mod:`benchmarks.cases`; speed and memory do not depend on weight values),
with rejection off (``inference.max_classes = 0``) and on (``--max-classes K``, default 64),
each (N, mode) in a fresh subprocess so that its peak memory is its own: the process's peak
RSS on the CPU (model included), ``torch.cuda.max_memory_allocated`` on CUDA. Class
embeddings are random (text encoding is a one-off per vocabulary, cached on disk; it is not
timed). ``--published`` runs the published input size instead of the small CPU one.

Printed per row: wall seconds per image and, on the CPU, the process's CPU seconds per image
(user + system: on a shared machine the steadier measure; with ``--threads 1`` it is the
single-thread time) and the GFLOP of one image (matrix products, convolutions and attention,
counted by ``torch.utils.flop_counter`` during the warm-up image: exact and independent of
the machine's load). The last line compares the largest count with the smallest, with
rejection on (time: CPU seconds on the CPU, wall seconds on CUDA)::

    847/150 classes with rejection: time 1.02x, peak memory 1.00x
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from benchmarks.cases import CASES, Setup

DEFAULT_K = 64


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure(model: str, classes: int, max_classes: int, *, iters: int, warmup: int, device: str,
            published: bool, amp: str | bool) -> dict[str, object]:
    """Seconds per image and peak memory of one (N, K) in this process."""
    dev = torch.device(device)
    case = CASES[model]
    setup = Setup(dev, max_classes=max_classes, published=published, amp=amp)
    predictor = case.build(setup)
    case.random_text(predictor, classes)
    vocabulary = [f"class {i}" for i in range(classes)]
    image = np.random.default_rng(0).integers(0, 256, (*case.image_size(setup), 3), dtype=np.uint8)
    gflop = None
    for i in range(warmup):
        if i == 0 and dev.type == "cpu":  # the work, counted once: independent of the machine's load
            with FlopCounterMode(display=False) as counter:
                predictor.predict(image, vocabulary)
            gflop = counter.get_total_flops() / 1e9
        else:
            predictor.predict(image, vocabulary)
    _sync(dev)
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
    wall, cpu = time.perf_counter(), _cpu_seconds()
    for _ in range(iters):
        result = predictor.predict(image, vocabulary)
    _sync(dev)
    wall, cpu = (time.perf_counter() - wall) / iters, (_cpu_seconds() - cpu) / iters
    peak = (torch.cuda.max_memory_allocated(dev) if dev.type == "cuda"
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024) / 2**20
    kept = classes if result.kept is None else len(result.kept)
    return {"classes": classes, "max_classes": max_classes, "kept": kept, "wall_s": wall,
            "cpu_s": cpu if dev.type == "cpu" else None, "gflop": gflop, "peak_mib": peak}


def run_one(args: argparse.Namespace, classes: int, max_classes: int) -> dict[str, object]:
    """:func:`measure` in a fresh subprocess (its own peak memory)."""
    cmd = [sys.executable, "-m", "benchmarks.bench_vocabulary", "--one", f"{classes},{max_classes}",
           "--model", args.model, "--iters", str(args.iters), "--warmup", str(args.warmup), "--device", args.device,
           "--amp", str(args.amp)] + (["--threads", str(args.threads)] if args.threads else []) + (
           ["--published"] if args.published else [])
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"error: the run with {classes} classes, max_classes={max_classes} failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def ratio_line(rows: list[dict[str, object]], k: int, time_key: str) -> str:
    """``<largest>/<smallest> classes with rejection: time R1x, peak memory R2x``."""
    on = {r["classes"]: r for r in rows if r["max_classes"] == k}
    small, large = on[min(on)], on[max(on)]
    return (f"{large['classes']}/{small['classes']} classes with rejection: time "
            f"{large[time_key] / small[time_key]:.2f}x, peak memory {large['peak_mib'] / small['peak_mib']:.2f}x")


def _amp(text: str) -> str | bool:
    return {"true": True, "false": False}.get(text.lower(), text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="lmseg_vitb16", choices=sorted(CASES))
    parser.add_argument("--classes", type=int, nargs="+", default=[150, 847])
    parser.add_argument("--max-classes", type=int, default=DEFAULT_K, help=f"K with rejection on (default {DEFAULT_K})")
    parser.add_argument("--iters", type=int, default=1, help="timed images per row")
    parser.add_argument("--warmup", type=int, default=1, help="untimed images first")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--published", action="store_true", help="the published input size (a GPU's work)")
    parser.add_argument("--amp", type=_amp, default=True, help="autocast: true (bf16 on CUDA), false, bf16, fp16")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # internal: "N,K" in a subprocess
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.one:
        classes, k = (int(v) for v in args.one.split(","))
        print(json.dumps(measure(args.model, classes, k, iters=args.iters, warmup=args.warmup, device=args.device,
                                 published=args.published, amp=args.amp)))
        return 0
    if args.max_classes < 1 or min(args.classes) < 1:
        parser.error("--classes and --max-classes must be at least 1")
    case = CASES[args.model]
    cpu = args.device == "cpu"
    print(f"# {args.model} ({case.note}); {'published' if args.published else 'small'} input "
          f"{case.published if args.published else case.small}; {args.device}"
          f"{f', {args.threads} thread(s)' if args.threads else ''}; random weights and class embeddings; "
          f"{args.iters} timed image(s) after {args.warmup} warm-up; rejection on: K = {args.max_classes}")
    print("| classes | rejection | classes kept | wall s/image | CPU s/image | GFLOP/image | peak memory (MiB) |")
    print("|---:|---|---:|---:|---:|---:|---:|")
    rows = []
    for n in sorted(args.classes):
        for k in (0, args.max_classes):
            row = run_one(args, n, k)
            rows.append(row)
            cpu_s = f"{row['cpu_s']:.1f}" if row["cpu_s"] is not None else "-"
            gflop = f"{row['gflop']:.0f}" if row["gflop"] is not None else "-"
            print(f"| {n} | {'off' if k == 0 else f'K = {k}'} | {row['kept']} | {row['wall_s']:.2f} | {cpu_s} | "
                  f"{gflop} | {row['peak_mib']:.0f} |", flush=True)
    if len(set(args.classes)) > 1:
        print(ratio_line(rows, args.max_classes, "cpu_s" if cpu else "wall_s"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
