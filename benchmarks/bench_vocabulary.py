"""How cost grows with the number of classes: time per image and peak memory, class early rejection off and on.

    .venv/bin/python -m benchmarks.bench_vocabulary --model lmseg_vitb16 --classes 150 847 --iters 1 --threads 1
    .venv/bin/python -m benchmarks.bench_vocabulary --model trident_vitb16 --classes 150 847 21843 --max-classes 64
    .venv/bin/python -m benchmarks.bench_vocabulary --model mrovseg_vitb16 --classes 21843 --rejection on --threads 1

For each class count N it segments one random image with the method's real architecture and
random weights (:mod:`benchmarks.cases`; speed and memory do not depend on weight values),
with rejection off (``inference.max_classes = 0``) and on (``--max-classes K``, default 64),
each (N, mode) in a fresh subprocess so that its peak memory is its own: the process's peak
RSS on the CPU (model included), ``torch.cuda.max_memory_allocated`` on CUDA. Class
embeddings are random (text encoding is a one-off per vocabulary, cached on disk; it is not
timed). ``--rejection on`` runs only the rows with rejection (a vocabulary too big to run
without it in reasonable time). ``--published`` runs the published input size instead of the small CPU one.

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
import subprocess
import sys

import torch

from benchmarks.cases import CASES, DEFAULT_K, Setup, measure_images


def measure(model: str, classes: int, max_classes: int, *, iters: int, warmup: int, device: str,
            published: bool, amp: str | bool) -> dict[str, object]:
    """Seconds per image and peak memory of one (N, K) in this process."""
    dev = torch.device(device)
    case = CASES[model]
    setup = Setup(dev, max_classes=max_classes, size="published" if published else "small", amp=amp)
    m = measure_images(case, setup, case.build(setup), classes, iters=iters, warmup=warmup,
                       count_flops=dev.type == "cpu" and warmup > 0)
    return {"classes": classes, "max_classes": max_classes, "kept": m.kept, "wall_s": m.wall_s,
            "cpu_s": m.cpu_s if dev.type == "cpu" else None, "gflop": m.gflop, "peak_mib": m.peak_mib}


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
    parser.add_argument("--model", default="lmseg_vitb16", choices=sorted(n for n, c in CASES.items() if c.rejects))
    parser.add_argument("--classes", type=int, nargs="+", default=[150, 847])
    parser.add_argument("--max-classes", type=int, default=DEFAULT_K, help=f"K with rejection on (default {DEFAULT_K})")
    parser.add_argument("--rejection", nargs="+", choices=("off", "on"), default=["off", "on"],
                        help="the rows to run per class count (default both; 'on' alone for vocabularies too big "
                             "to run without rejection)")
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
          f"{case.images['published' if args.published else 'small']}; {args.device}"
          f"{f', {args.threads} thread(s)' if args.threads else ''}; random weights and class embeddings; "
          f"{args.iters} timed image(s) after {args.warmup} warm-up; rejection on: K = {args.max_classes}")
    print("| classes | rejection | classes kept | wall s/image | CPU s/image | GFLOP/image | peak memory (MiB) |")
    print("|---:|---|---:|---:|---:|---:|---:|")
    rows = []
    for n in sorted(args.classes):
        for k in [0] * ("off" in args.rejection) + [args.max_classes] * ("on" in args.rejection):
            row = run_one(args, n, k)
            rows.append(row)
            cpu_s = f"{row['cpu_s']:.1f}" if row["cpu_s"] is not None else "-"
            gflop = f"{row['gflop']:.0f}" if row["gflop"] is not None else "-"
            print(f"| {n} | {'off' if k == 0 else f'K = {k}'} | {row['kept']} | {row['wall_s']:.2f} | {cpu_s} | "
                  f"{gflop} | {row['peak_mib']:.0f} |", flush=True)
    if len(set(args.classes)) > 1 and "on" in args.rejection:
        print(ratio_line(rows, args.max_classes, "cpu_s" if cpu else "wall_s"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
