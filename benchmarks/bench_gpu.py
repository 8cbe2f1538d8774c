"""One GPU benchmark command: every method at its published input size, 150 and 847 classes, rejection off and on.

    make bench-gpu                                  # one CUDA GPU; writes runs/bench_gpu.md
    make bench-gpu ARGS="--compile --table runs/gpu_compiled.md"
    make bench-gpu ARGS=--smoke                     # the same script on the CPU at tiny sizes

For every method of :data:`benchmarks.cases.CASES` (LMSeg, MROVSeg, Trident, MGCA, SAM 3 at
their published sizes, random weights; class embeddings random, SAM 3's prompts encoded by its
own text encoder once per vocabulary in the untimed warm-up), each class count (default 150
and 847) and class early rejection off (``inference.max_classes = 0``) and on (K =
:data:`~benchmarks.cases.DEFAULT_K`; MGCA and SAM 3 have no rejection: off only), it reports
images/s (wall time of ``predict``, after warm-up) and the peak GPU memory
(``torch.cuda.max_memory_allocated`` over the timed images, weights included), prints the
device's name and writes a Markdown table ready for the README (``--table``).

Precision on CUDA: bf16 autocast (LMSeg and MROVSeg through their own ``amp`` rule,
:mod:`lmseg.inference.precision`; MGCA and SAM 3 under ``torch.autocast`` around ``predict``,
their predictors having no setting; Trident fp16 encoders, its published precision). Attention:
PyTorch's SDPA kernels wherever the model's attention is plain softmax attention (CLIP through
``nn.MultiheadAttention`` with ``need_weights=False``, timm's DINO, LMSeg's window attention,
SAM 3's ViT); the SAM ViT encoder (decomposed relative positions) and dense CLIP's last block
(its own attention, :mod:`lmseg.backbones.clip`) compute theirs explicitly.
``--channels-last`` puts the models' 4-D weights (convolutions) in channels-last;
``--compile`` runs ``nn.Module.compile`` on each top-level part of each model (their
``forward``; compilation happens in the warm-up, not timed).

Each method runs in its own subprocess (``--method-timeout`` seconds at most) and each row in
its own ``try``: a CUDA out-of-memory or any failure is written in its row, and the run goes
on; the exit status is 1 when any row failed. ``--smoke`` runs the same code on the CPU with
the tiny random variants (``lmseg_tiny``, ...), 4 and 12 classes and K = 2, one timed image
and no warm-up, all methods in one subprocess (torch is imported once; 300 s per method);
memory is then the process's peak RSS so far (not per row).
"""

from __future__ import annotations

import argparse
import gc
import json
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from benchmarks.cases import CASES, DEFAULT_K, Case, Setup, measure_images

DEFAULT_TABLE = Path("runs/bench_gpu.md")
SMOKE = {"classes": [4, 12], "max_classes": 2, "iters": 1, "warmup": 0, "method_timeout": 300.0}


@dataclass(frozen=True)
class Options:
    """What one method's subprocess measures (the parsed command line, less the table)."""

    device: str
    size: str
    classes: list[int]
    max_classes: int
    iters: int
    warmup: int
    channels_last: bool
    compile: bool


def _prepare(predictor, options: Options) -> None:
    """Channels-last weights and ``torch.compile`` of the model's top-level parts, as asked."""
    if options.channels_last:
        predictor.model.to(memory_format=torch.channels_last)
    if options.compile:
        for part in predictor.model.children():
            part.compile()


def _free(device: torch.device) -> None:
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def _error(exc: BaseException) -> str:
    first = (str(exc).strip().splitlines() or [""])[0]
    return f"{type(exc).__name__}: {first}"[:160]


def method_rows(case: Case, options: Options):
    """Yield one row (a dict) per (classes, rejection) of ``case``; a failure is its row's ``error``."""
    device = torch.device(options.device)
    for k in (0, options.max_classes) if case.rejects else (0,):
        setup = Setup(device, max_classes=k, size=options.size, amp="bf16")
        row = {"method": case.tiny if options.size == "tiny" else case.name, "max_classes": k}
        try:
            predictor = case.build(setup)
            _prepare(predictor, options)
        except Exception as exc:  # noqa: BLE001 - reported in the rows, the run goes on
            for n in options.classes:
                yield {**row, "classes": n, "error": f"build: {_error(exc)}"}
            continue
        for n in options.classes:
            try:
                m = measure_images(case, setup, predictor, n, iters=options.iters, warmup=options.warmup)
                yield {**row, "classes": n, "kept": m.kept, "images_per_s": 1.0 / m.wall_s,
                       "cpu_s": m.cpu_s, "peak_mib": m.peak_mib}
            except Exception as exc:  # noqa: BLE001 - an OOM or any failure: this row only
                yield {**row, "classes": n, "error": _error(exc)}
            _free(device)
        del predictor
        _free(device)


def expected_rows(case: Case, options: Options) -> list[tuple[int, int]]:
    """``(classes, max_classes)`` of every row ``case`` should give."""
    return [(n, k) for k in ((0, options.max_classes) if case.rejects else (0,)) for n in options.classes]


def run_worker(names: list[str], options: Options, timeout: float, threads: int | None) -> list[dict]:
    """:func:`method_rows` of ``names`` in one fresh subprocess; rows it did not give (a crash,
    the timeout) are error rows naming why."""
    cmd = [sys.executable, "-m", "benchmarks.bench_gpu", "--worker", *names, "--device", options.device,
           "--size", options.size, "--classes", *map(str, options.classes), "--max-classes", str(options.max_classes),
           "--iters", str(options.iters), "--warmup", str(options.warmup)]
    cmd += ["--channels-last"] * options.channels_last + ["--compile"] * options.compile
    cmd += ["--threads", str(threads)] if threads else []
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        out, err, why = done.stdout, done.stderr, f"exit status {done.returncode}"
    except subprocess.TimeoutExpired as exc:
        out, err, why = _text(exc.stdout), _text(exc.stderr), f"over the time limit of {timeout:.0f} s"
    rows = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    have = {(r["method"], r["classes"], r["max_classes"]) for r in rows}
    tail = (err.strip().splitlines() or [""])[-1][:160]
    missing = []
    for name in names:
        method = CASES[name].tiny if options.size == "tiny" else name
        missing += [{"method": method, "classes": n, "max_classes": k, "error": f"{why}: {tail}".rstrip(": ")}
                    for n, k in expected_rows(CASES[name], options) if (method, n, k) not in have]
    return rows + missing


def _text(data: bytes | str | None) -> str:
    return data.decode(errors="replace") if isinstance(data, bytes) else (data or "")


def device_name(device: str) -> str:
    if torch.device(device).type == "cuda":
        return torch.cuda.get_device_name(torch.device(device))
    import platform

    return f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads)"


def table(rows: list[dict], header: str, cuda: bool) -> str:
    """The Markdown table: one row per (method, classes, rejection)."""
    memory = "peak GPU memory (MiB)" if cuda else "peak RSS so far (MiB)"
    lines = [header, "", f"| method | classes | rejection | classes kept | images/s | {memory} | precision |",
             "|---|---:|---|---:|---:|---:|---|"]
    for r in rows:
        case = next(c for c in CASES.values() if r["method"] in (c.name, c.tiny))
        rejection = "off" if r["max_classes"] == 0 else f"K = {r['max_classes']}"
        if "error" in r:
            cells = f"failed: {r['error'].replace('|', '/')} | | |"
            lines.append(f"| {r['method']} | {r['classes']} | {rejection} | {cells} {case.precision} |")
        else:
            lines.append(f"| {r['method']} | {r['classes']} | {rejection} | {r['kept']} | {r['images_per_s']:.3g} | "
                         f"{r['peak_mib']:.0f} | {case.precision} |")
    return "\n".join(lines) + "\n"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--smoke", action="store_true", help="the CPU at tiny sizes (tiny variants, few classes)")
    parser.add_argument("--methods", nargs="+", choices=sorted(CASES), default=list(CASES))
    parser.add_argument("--classes", type=int, nargs="+", default=[150, 847])
    parser.add_argument("--max-classes", type=int, default=DEFAULT_K, help=f"K with rejection on (default {DEFAULT_K})")
    parser.add_argument("--iters", type=int, default=3, help="timed images per row (default 3)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed images first (default 1)")
    parser.add_argument("--channels-last", action="store_true", help="channels-last weights")
    parser.add_argument("--compile", action="store_true", help="torch.compile each model's top-level parts")
    parser.add_argument("--method-timeout", type=float, default=90.0, help="seconds per method (default 90)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--table", type=Path, default=DEFAULT_TABLE, help=f"Markdown output (default {DEFAULT_TABLE})")
    parser.add_argument("--device", default="cuda", help=argparse.SUPPRESS)  # internal, with --one
    parser.add_argument("--size", default="published", help=argparse.SUPPRESS)
    parser.add_argument("--worker", nargs="+", choices=sorted(CASES), help=argparse.SUPPRESS)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.smoke:
        for key, value in SMOKE.items():
            setattr(args, key, value)
        args.device, args.size = "cpu", "tiny"
    options = Options(args.device, args.size, args.classes, args.max_classes, args.iters, args.warmup,
                      args.channels_last, args.compile)
    if args.worker:
        for name in args.worker:
            for row in method_rows(CASES[name], options):
                print(json.dumps(row), flush=True)
        return 0
    if min(args.classes) < 1 or args.max_classes < 1 or args.iters < 1 or args.warmup < 0:
        parser.error("--classes, --max-classes and --iters must be at least 1, --warmup at least 0")
    if not args.smoke and not torch.cuda.is_available():
        print("error: no CUDA GPU here; `make bench-gpu ARGS=--smoke` runs the same script on the CPU", file=sys.stderr)
        return 2
    name = device_name(args.device)
    print(f"device: {name}", flush=True)
    start, rows = time.perf_counter(), []
    # on the GPU one process per method (a crash costs its rows only); the smoke: one for all (imports once)
    workers = [args.methods] if args.smoke else [[m] for m in args.methods]
    for names in workers:
        for row in run_worker(names, options, args.method_timeout * len(names), args.threads):
            rows.append(row)
            print(json.dumps(row), flush=True)
    extras = ", ".join(x for x, on in (("channels-last", args.channels_last), ("torch.compile", args.compile)) if on)
    command = " ".join(["python -m benchmarks.bench_gpu", *(sys.argv[1:] if argv is None else argv)])
    header = (f"`{command}` on {name}, torch {torch.__version__}: "
              f"{'tiny variants (smoke)' if args.smoke else 'published input sizes'}, random weights, "
              f"{args.iters} timed image(s) after {args.warmup} warm-up, rejection K = {args.max_classes}"
              f"{f', {extras}' if extras else ''}; whole run {time.perf_counter() - start:.0f} s.")
    args.table.parent.mkdir(parents=True, exist_ok=True)
    args.table.write_text(table(rows, header, torch.device(args.device).type == "cuda"))
    print(f"table: {args.table}")
    failed = sum("error" in r for r in rows)
    print(f"{len(rows) - failed} rows measured, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
