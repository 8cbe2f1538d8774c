"""evaluate / segment --executor ray on a real Ray cluster on loopback, with a real tiny model.

One local Ray cluster (2 CPUs, no dashboard) serves the module; the test process is the
driver (the commands run in-process and join it through --ray-address).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch", reason="the vision stage runs in the vision environment")
pytest.importorskip("ray", reason="Ray is not installed in this environment (run `make setup`)")

from lmseg.data import open_dataset  # noqa: E402
from lmseg.distributed.cluster import RayOptions  # noqa: E402
from lmseg.distributed.vision import evaluate_dataset_on_ray  # noqa: E402
from lmseg.evaluation.state import EvaluationState  # noqa: E402
from lmseg.evaluation.steps import SampleFailure  # noqa: E402
from pipelines.evaluate import main as evaluate_main  # noqa: E402
from pipelines.segment import main as segment_main  # noqa: E402
from tests.attribute_tables import write_attribute_table  # noqa: E402
from tests.data.samples import ADE150, build_ade150  # noqa: E402
from tests.distributed.fault_models import FaultOnce  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
MODEL = "lmseg_tiny"


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> Iterator[None]:
    """Local runs on one torch thread, as Ray gives its 1-CPU workers: bit-identical numerics
    need the same thread count (other counts reorder float sums and flip a few near-tie pixels)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def ray_address() -> Iterator[str]:
    """A fresh single-machine Ray cluster; its workers import this checkout (PYTHONPATH)."""
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p)
    import ray

    context = ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        yield context.address_info["gcs_address"]
    finally:
        ray.shutdown()


@pytest.fixture(scope="module")
def ade_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("data")
    build_ade150(root)
    return root


@pytest.fixture(scope="module")
def local_report(ade_root: Path, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("local")
    assert evaluate_main(["--model", MODEL, "--dataset", "ade150", "--data-root", str(ade_root), "--output", str(out),
                          "--workers", "0"]) == 0
    return out


def without_run(report_folder: Path) -> dict:
    report = json.loads((report_folder / "report.json").read_text())
    report.pop("run")  # how this run went (workers, seconds, images/s), not what it measured
    return report


def ray_args(address: str, *extra: str) -> list[str]:
    return ["--executor", "ray", "--ray-address", address, *extra]


def test_evaluate_on_ray_gives_the_local_matrix_and_report(ray_address, ade_root, local_report, tmp_path) -> None:
    out = tmp_path / "ray"
    code = evaluate_main(["--model", MODEL, "--dataset", "ade150", "--data-root", str(ade_root), "--output", str(out),
                          *ray_args(ray_address, "--ray-workers", "2", "--ray-cpus-per-worker", "0.5")])
    assert code == 0
    np.testing.assert_array_equal(np.load(out / "confusion.npy"), np.load(local_report / "confusion.npy"))
    assert without_run(out) == without_run(local_report)


def test_a_worker_that_dies_loses_and_double_counts_nothing(ray_address, ade_root, local_report, tmp_path) -> None:
    dataset = open_dataset("ade150", ade_root)
    make = partial(FaultOnce, str(tmp_path / "died"), "die")
    options = RayOptions(address=ray_address, workers=1, cpus_per_worker=0.5, batch_size=1)
    result = evaluate_dataset_on_ray(make, dataset, options, segmenter=make(), state_path=tmp_path / "state.npz")
    assert (tmp_path / "died").exists()  # a worker really died mid-run
    assert result.complete and result.num_samples == 3 and result.processed == 3
    np.testing.assert_array_equal(result.scores.confusion, np.load(local_report / "confusion.npy"))
    state = EvaluationState.load(tmp_path / "state.npz")
    assert sorted(state.done) == sorted(p.sample_id for p in dataset.pairs)


def test_a_failed_sample_keeps_the_progress_and_the_rerun_resumes(ray_address, ade_root, local_report,
                                                                  tmp_path) -> None:
    dataset = open_dataset("ade150", ade_root)
    make = partial(FaultOnce, str(tmp_path / "failed"), "fail")
    options = RayOptions(address=ray_address, workers=1, cpus_per_worker=0.5, batch_size=1)
    state_path = tmp_path / "state.npz"
    with pytest.raises(SampleFailure, match="injected failure of one sample"):
        evaluate_dataset_on_ray(make, dataset, options, segmenter=make(), state_path=state_path, save_every=1)
    counted = EvaluationState.load(state_path).done
    assert len(counted) < 3
    result = evaluate_dataset_on_ray(make, dataset, options, segmenter=make(), state_path=state_path)
    assert result.complete and result.processed == 3 - len(counted)  # the counted ones are not done again
    np.testing.assert_array_equal(result.scores.confusion, np.load(local_report / "confusion.npy"))


def test_segment_on_ray_writes_the_local_files(ray_address, tmp_path) -> None:
    common = ["--model", MODEL, "--classes", "wall,floor,ceiling;roof,person", str(ADE150 / "images")]
    assert segment_main([*common, "--output", str(tmp_path / "local"), "--workers", "0"]) == 0
    assert segment_main([*common, "--output", str(tmp_path / "ray"),
                         *ray_args(ray_address, "--ray-workers", "2", "--ray-cpus-per-worker", "0.5")]) == 0
    local = {p.relative_to(tmp_path / "local"): p.read_bytes() for p in (tmp_path / "local").rglob("*") if p.is_file()}
    remote = {p.relative_to(tmp_path / "ray"): p.read_bytes() for p in (tmp_path / "ray").rglob("*") if p.is_file()}
    assert len(local) == 2 + 2 * 3  # classes.txt, protocol.json, a label map and an overlay per image
    assert remote == local


@pytest.mark.parametrize("name", ["trident_tiny", "mgca_tiny"])
def test_the_attribute_table_reaches_the_workers(name, ray_address, ade_root, tmp_path, monkeypatch) -> None:
    """--attributes with a relative path: the workers (other folders) get the same table as a local run."""
    write_attribute_table(tmp_path / "t.parquet", {0: "wall", 2: "sky"})
    monkeypatch.chdir(tmp_path)
    common = ["--model", name, "--dataset", "ade150", "--data-root", str(ade_root), "--limit", "1",
              "--attributes", "t.parquet"]
    assert evaluate_main([*common, "--output", str(tmp_path / "local"), "--workers", "0"]) == 0
    assert evaluate_main([*common, "--output", str(tmp_path / "ray"), *ray_args(ray_address, "--ray-workers", "1",
                                                                                "--ray-cpus-per-worker", "0.5")]) == 0
    np.testing.assert_array_equal(np.load(tmp_path / "ray" / "confusion.npy"),
                                  np.load(tmp_path / "local" / "confusion.npy"))
    report = without_run(tmp_path / "ray")
    assert report == without_run(tmp_path / "local")
    assert report["settings"]["model_options"]["attribute_table"] == str(tmp_path / "t.parquet")
    classes = ["--model", name, "--classes", "wall,floor,sky", str(ADE150 / "images"), "--attributes", "t.parquet"]
    assert segment_main([*classes, "--output", str(tmp_path / "s-local"), "--workers", "0"]) == 0
    assert segment_main([*classes, "--output", str(tmp_path / "s-ray"),
                         *ray_args(ray_address, "--ray-workers", "1", "--ray-cpus-per-worker", "0.5")]) == 0
    local = {p.relative_to(tmp_path / "s-local"): p.read_bytes() for p in (tmp_path / "s-local").rglob("*")
             if p.is_file()}
    remote = {p.relative_to(tmp_path / "s-ray"): p.read_bytes() for p in (tmp_path / "s-ray").rglob("*") if p.is_file()}
    assert remote == local


def test_bad_ray_input_is_refused_before_any_model_loads(capsys, ade_root, tmp_path) -> None:
    base = ["--model", MODEL, "--dataset", "ade150", "--data-root", str(ade_root), "--output", str(tmp_path / "o")]
    assert evaluate_main([*base, "--executor", "ray", "--ray-workers", "0"]) == 2
    assert "error: --ray-workers must be at least 1, got 0" in capsys.readouterr().err
    assert evaluate_main([*base, "--ray-batch-size", "2"]) == 2
    assert "error: --ray-batch-size only apply with --executor ray" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_a_model_that_cannot_be_built_is_one_error_line(capsys, ray_address, ade_root, tmp_path) -> None:
    # the driver builds one segmenter first (its protocol record identifies the run), so a bad
    # option fails there, before any Ray work, as in a local run
    code = evaluate_main(["--model", MODEL, "--opt", "no_such_option=1", "--dataset", "ade150", "--data-root",
                          str(ade_root), "--output", str(tmp_path / "o"), *ray_args(ray_address)])
    err = capsys.readouterr().err
    assert code == 2, err[-2000:]
    assert "error: segmenter 'lmseg_tiny' does not accept these options ['no_such_option']" in err
    assert "Traceback" not in err
