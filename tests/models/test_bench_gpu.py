"""``make bench-gpu``'s script works before any GPU time is spent: ``--smoke`` runs the same
code on the CPU (tiny variants) and writes a table with one row per (method, classes,
rejection) and finite numbers; a failure or a time-out is reported in its own rows.

The smoke run's CPU seconds (user + system of its subprocesses) are printed by
``test_smoke_writes_one_row_per_measurement`` (``-s``): on the shared 2-core development
machine (2026-12-07, load 8 to 10) 78 s with 8 and 24 classes and a warm-up image, 64.6 s with
4 and 12 and a warm-up, 54.1 s with 4 and 12 and no warm-up (now); SAM 3's prompts and the
five models' imports and builds are most of it. The whole file: 84 CPU s.
"""

from __future__ import annotations

import math
import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("open_clip", reason="needs the vision environment (open_clip)")

from benchmarks import bench_gpu  # noqa: E402 - after the skip
from benchmarks.cases import CASES, Case, Setup  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
SMOKE = bench_gpu.SMOKE


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _rows(table: str) -> list[list[str]]:
    lines = [line for line in table.splitlines() if line.startswith("| ")]
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in lines[1:]]  # header dropped


def test_smoke_writes_one_row_per_measurement(tmp_path) -> None:
    out = tmp_path / "table.md"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "LMSEG_CACHE_DIR": str(tmp_path / "cache")}
    before = _children_cpu()
    done = subprocess.run([sys.executable, "-m", "benchmarks.bench_gpu", "--smoke", "--threads", "1",
                           "--table", str(out)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800)
    print(f"bench_gpu --smoke: {_children_cpu() - before:.1f} CPU s")
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.startswith("device: CPU")
    text = out.read_text()
    assert "--smoke" in text.splitlines()[0] and "rejection K = 2" in text.splitlines()[0]
    rows = _rows(text)
    expected = {(case.tiny, n, "off" if k == 0 else f"K = {k}")
                for case in CASES.values() for k in ((0, SMOKE["max_classes"]) if case.rejects else (0,))
                for n in SMOKE["classes"]}
    assert sorted((r[0], int(r[1]), r[2]) for r in rows) == sorted(expected)
    for method, classes, rejection, kept, per_s, memory, _ in rows:
        assert int(kept) == (int(classes) if rejection == "off" else SMOKE["max_classes"])
        assert math.isfinite(float(per_s)) and float(per_s) > 0
        assert math.isfinite(float(memory)) and float(memory) > 0


class _Predictor:
    """A fault injector: ``predict`` fails with ``MemoryError`` for 12 classes."""

    def predict(self, image, vocabulary):
        if len(vocabulary) == 12:
            raise MemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")
        return type("Result", (), {"kept": None})()


def _fake_case(build) -> Case:
    sizes = {"tiny": (8, 8), "small": (8, 8), "published": (8, 8)}
    return Case("fake", "fake_tiny", build, lambda predictor, n: None, sizes, "fake", rejects=False,
                precision="the predictor's amp: none")


OPTIONS = bench_gpu.Options("cpu", "tiny", [4, 12], 2, 1, 0, False, False)


def test_a_failing_row_is_reported_and_the_others_measured() -> None:
    rows = list(bench_gpu.method_rows(_fake_case(lambda setup: _Predictor()), OPTIONS))
    assert [r["classes"] for r in rows] == [4, 12]
    assert "error" not in rows[0] and rows[0]["images_per_s"] > 0
    assert rows[1]["error"] == "MemoryError: CUDA out of memory. Tried to allocate 20.00 GiB"


def test_a_failing_build_fails_its_rows_only() -> None:
    def build(setup: Setup):
        raise RuntimeError("no such weights\nsecond line")

    rows = list(bench_gpu.method_rows(_fake_case(build), OPTIONS))
    assert [(r["classes"], r["error"]) for r in rows] == [(4, "build: RuntimeError: no such weights"),
                                                           (12, "build: RuntimeError: no such weights")]


def test_a_worker_over_its_time_gives_error_rows() -> None:
    rows = bench_gpu.run_worker(["mgca_vitb16"], OPTIONS, timeout=0.01, threads=1)
    assert [(r["method"], r["classes"]) for r in rows] == [("mgca_tiny", 4), ("mgca_tiny", 12)]
    assert all(r["error"].startswith("over the time limit of 0 s") for r in rows)
    table = bench_gpu.table(rows, "header", cuda=False)
    assert table.count("| failed: over the time limit") == 2


def test_no_gpu_is_one_error_line(capsys) -> None:
    if bench_gpu.torch.cuda.is_available():
        pytest.skip("a CUDA GPU is here: the full benchmark would run")
    assert bench_gpu.main(["--table", "unused.md"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: no CUDA GPU here")
