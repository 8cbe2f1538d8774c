"""Ray executor overhead: the same commands run locally and on Ray with 1 and 2 workers.

Each configuration is the real command in a fresh process, timed from start to exit (model
loading included, since each Ray worker loads its own model), on the same inputs:

* ``--stage llm`` (run with the LLM environment): ``gen_prompts`` on a built-in vocabulary
  (default voc20) with the default model through vLLM; classes per second.
* ``--stage vision`` (the vision environment): ``evaluate`` on the real ADE-150 samples
  (hard-linked ``--repeat`` times into a folder dataset) with a tiny model; images per second.

Ray runs join one Ray instance started by the benchmark (its start-up time is printed
separately); ``local`` is the in-run baseline. On a 2-core machine this mostly shows Ray's
overhead (cluster scheduling, one model per worker on shared cores); the speed-up comes on a
real cluster, e.g. (on the head node of a running cluster, GPU workers):

    python -m benchmarks.bench_ray --stage llm --address auto --dataset lvis1203 --workers 1 4 8 \\
        --extra="--model Qwen/Qwen2.5-7B-Instruct --ray-gpus-per-worker 1"
    python -m benchmarks.bench_ray --stage vision --address auto --model trident_vitb16 --workers 1 4 8 \\
        --repeat 100 --extra="--device cuda --ray-gpus-per-worker 1"

Prints a table; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "tests/fixtures/samples/ade150_sceneparsing_val3"


def timed(command: list[str]) -> float:
    """Seconds the command took; raises if it failed."""
    started = time.perf_counter()
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise SystemExit(f"failed ({result.returncode}): {shlex.join(command)}\n{result.stderr[-3000:]}")
    return time.perf_counter() - started


def ade_folder(root: Path, repeat: int) -> tuple[Path, int]:
    """The ADE samples ``repeat`` times as a folder dataset (images/, labels/, classes.txt)."""
    from lmseg.vocab import get_vocabulary

    for kind in ("images", "labels"):
        (root / kind).mkdir(parents=True)
    for k in range(repeat):
        for image in sorted((SAMPLES / "images").iterdir()):
            os.link(image, root / "images" / f"{k:04d}_{image.name}")
            os.link(SAMPLES / "labels" / f"{image.stem}.png", root / "labels" / f"{k:04d}_{image.stem}.png")
    (root / "classes.txt").write_text("\n".join(get_vocabulary("ade150").names) + "\n")
    return root, 3 * repeat


def commands(args: argparse.Namespace, work: Path) -> tuple[list[str], int, str]:
    """(the command without executor options, items per run, unit)."""
    extra = shlex.split(args.extra)
    if args.stage == "llm":
        from lmseg.vocab import get_vocabulary

        base = [sys.executable, "-m", "pipelines.gen_prompts", "--dataset", args.dataset, "--overwrite", *extra]
        return base, len(get_vocabulary(args.dataset)), "classes/s"
    root, count = ade_folder(work / "data", args.repeat)
    base = [sys.executable, "-m", "pipelines.evaluate", "--model", args.model, "--dataset", "folder", "--data-root",
            str(root), "--reduce-zero-label", "--restart", "--workers", "0", *extra]
    return base, count, "images/s"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stage", choices=("llm", "vision"), required=True)
    parser.add_argument("--dataset", default="voc20", help="llm: the vocabulary")
    parser.add_argument("--model", default="lmseg_tiny", help="vision: the segmenter")
    parser.add_argument("--repeat", type=int, default=2, help="vision: copies of the 3 ADE samples")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="Ray worker counts to run")
    parser.add_argument("--address", help="a running cluster ('auto', host:port); default: start one here")
    parser.add_argument("--extra", default="", help="more options for every run (quoted)")
    args = parser.parse_args()

    from lmseg.distributed.cluster import RayOptions, import_ray_for

    ray = import_ray_for(RayOptions(address=args.address))  # a local instance: loopback only
    started = time.perf_counter()
    context = ray.init(address=args.address or "local", include_dashboard=False, log_to_driver=False)
    address = context.address_info["gcs_address"]
    print(f"Ray {'joined' if args.address else 'started'} in {time.perf_counter() - started:.1f} s at {address}")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        base, items, unit = commands(args, work)
        runs = [("local", [])] + [
            (f"ray, {n} worker{'s' * (n > 1)}", ["--executor", "ray", "--ray-address", address, "--ray-workers", str(n),
                                                 "--ray-cpus-per-worker", "1" if args.address else "0.5"])
            for n in args.workers
        ]
        print(f"| run | seconds | {unit} | vs local |\n|---|---|---|---|")
        baseline = None
        for name, executor in runs:
            output = work / (name.replace(" ", "_").replace(",", "") + (".parquet" if args.stage == "llm" else ""))
            try:
                seconds = timed([*base, "--output", str(output), *executor])
            except BaseException:
                ray.shutdown()  # stop the instance started here, also on Ctrl-C
                raise
            baseline = baseline or seconds
            print(f"| {name} | {seconds:.1f} | {items / seconds:.2f} | {baseline / seconds:.2f}x |", flush=True)
    ray.shutdown()


if __name__ == "__main__":
    main()
