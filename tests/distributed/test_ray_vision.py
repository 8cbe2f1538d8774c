"""evaluate / segment --executor ray on a real Ray cluster on loopback, with a real tiny model.

One local Ray cluster (2 CPUs, no dashboard) serves the module; the test process is the
driver (the commands run in-process and join it through --ray-address). The driver computes
with 2 torch threads (where Ray would give a 0.5-CPU worker 1), and builds no model: the
commands' Ray runs fail if it tries.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
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
def two_threads() -> Iterator[None]:
    """The driver (and the local runs) on 2 torch threads, not the 1 thread Ray gives a worker
    of 0.5 CPU: the workers must follow the driver for the local results (other thread counts
    reorder float sums and flip a few near-tie pixels)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(threads)


def forbid_models_here(monkeypatch: pytest.MonkeyPatch) -> None:
    """From now on, building a segmenter in this process (the driver) fails the test; the
    workers are other processes."""
    import lmseg.registry

    monkeypatch.setattr(lmseg.registry, "create_segmenter", lambda *a, **k: pytest.fail("the driver built a model"))


@pytest.fixture
def no_model_here(monkeypatch: pytest.MonkeyPatch) -> None:
    forbid_models_here(monkeypatch)


@pytest.fixture
def private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``LMSEG_CACHE_DIR`` for one test (Ray's log goes to ``<cache>/logs/ray.log``)."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("LMSEG_CACHE_DIR", str(cache))
    return cache


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


def test_evaluate_on_ray_gives_the_local_matrix_and_report(ray_address, ade_root, local_report, tmp_path,
                                                            no_model_here) -> None:
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
    result = evaluate_dataset_on_ray(make, dataset, options, state_path=tmp_path / "state.npz")
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
        evaluate_dataset_on_ray(make, dataset, options, state_path=state_path, save_every=1)
    counted = EvaluationState.load(state_path).done
    assert len(counted) < 3
    result = evaluate_dataset_on_ray(make, dataset, options, state_path=state_path)
    assert result.complete and result.processed == 3 - len(counted)  # the counted ones are not done again
    np.testing.assert_array_equal(result.scores.confusion, np.load(local_report / "confusion.npy"))


def test_segment_on_ray_writes_the_local_files_and_keeps_rays_output_off_the_console(
        ray_address, tmp_path, private_cache, capfd, monkeypatch) -> None:
    common = ["--model", MODEL, "--classes", "wall,floor,ceiling;roof,person", str(ADE150 / "images")]
    assert segment_main([*common, "--output", str(tmp_path / "local"), "--workers", "0"]) == 0
    capfd.readouterr()
    forbid_models_here(monkeypatch)
    assert segment_main([*common, "--output", str(tmp_path / "ray"),
                         *ray_args(ray_address, "--ray-workers", "2", "--ray-cpus-per-worker", "0.5")]) == 0
    local = {p.relative_to(tmp_path / "local"): p.read_bytes() for p in (tmp_path / "local").rglob("*") if p.is_file()}
    remote = {p.relative_to(tmp_path / "ray"): p.read_bytes() for p in (tmp_path / "ray").rglob("*") if p.is_file()}
    assert len(local) == 2 + 2 * 3  # classes.txt, protocol.json, a label map and an overlay per image
    assert remote.keys() == local.keys()
    differ = sorted(str(name) for name in local if remote[name] != local[name])
    assert differ == []  # protocol.json included: described by a segmenter built on a worker
    console = capfd.readouterr()
    assert console.out.startswith("segmented 3 image(s) into 4 classes")
    assert "Starting execution of Dataset" in (private_cache / "logs" / "ray.log").read_text()  # Ray Data's log
    for ray_line in ("streaming_executor.py", "logging_progress.py", "core_worker.cc", "deprecated"):
        assert ray_line not in console.err + console.out


def test_the_workers_use_the_drivers_cache(ray_address, private_cache) -> None:
    """The driver joined Ray before its LMSEG_CACHE_DIR was set (as this module's cluster is
    joined): each actor still gets it, so workers read the text embeddings the driver wrote
    (embeddings computed at another thread count differ in the last bits and flip near-tie pixels)."""
    import ray

    task = ray.remote(**RayOptions(address=ray_address, cpus_per_worker=0.5).actor_options())(
        lambda: os.environ.get("LMSEG_CACHE_DIR"))
    assert ray.get(task.remote()) == str(private_cache)


@pytest.mark.parametrize("name", ["trident_tiny", "mgca_tiny"])
def test_the_attribute_table_reaches_the_workers(name, ray_address, ade_root, tmp_path, monkeypatch) -> None:
    """--attributes with a relative path: the workers (other folders) get the same table as a local run."""
    write_attribute_table(tmp_path / "t.parquet", {0: "wall", 2: "sky"})
    monkeypatch.chdir(tmp_path)
    common = ["--model", name, "--dataset", "ade150", "--data-root", str(ade_root), "--limit", "1",
              "--attributes", "t.parquet"]
    classes = ["--model", name, "--classes", "wall,floor,sky", str(ADE150 / "images"), "--attributes", "t.parquet"]
    assert evaluate_main([*common, "--output", str(tmp_path / "local"), "--workers", "0"]) == 0
    assert segment_main([*classes, "--output", str(tmp_path / "s-local"), "--workers", "0"]) == 0
    forbid_models_here(monkeypatch)
    on_ray = ray_args(ray_address, "--ray-workers", "1", "--ray-cpus-per-worker", "0.5")
    assert evaluate_main([*common, "--output", str(tmp_path / "ray"), *on_ray]) == 0
    np.testing.assert_array_equal(np.load(tmp_path / "ray" / "confusion.npy"),
                                  np.load(tmp_path / "local" / "confusion.npy"))
    report = without_run(tmp_path / "ray")
    assert report == without_run(tmp_path / "local")
    assert report["settings"]["model_options"]["attribute_table"] == str(tmp_path / "t.parquet")
    assert segment_main([*classes, "--output", str(tmp_path / "s-ray"), *on_ray]) == 0
    local = {p.relative_to(tmp_path / "s-local"): p.read_bytes() for p in (tmp_path / "s-local").rglob("*")
             if p.is_file()}
    remote = {p.relative_to(tmp_path / "s-ray"): p.read_bytes() for p in (tmp_path / "s-ray").rglob("*") if p.is_file()}
    assert remote == local


def test_sam3_tiny_segments_on_ray_as_locally(ray_address, tmp_path, private_cache, monkeypatch) -> None:
    """The fifth method (SAM 3 through the sam3 package) on Ray workers: the local files, byte for byte."""
    pytest.importorskip("sam3", reason="the sam3 package is not installed (run `make setup`)")
    common = ["--model", "sam3_tiny", "--classes", "wall,floor,person", str(ADE150 / "images" / "ADE_val_00000001.jpg")]
    assert segment_main([*common, "--output", str(tmp_path / "local"), "--workers", "0"]) == 0
    forbid_models_here(monkeypatch)
    assert segment_main([*common, "--output", str(tmp_path / "ray"),
                         *ray_args(ray_address, "--ray-workers", "1", "--ray-cpus-per-worker", "0.5")]) == 0
    local = {p.relative_to(tmp_path / "local"): p.read_bytes() for p in (tmp_path / "local").rglob("*") if p.is_file()}
    remote = {p.relative_to(tmp_path / "ray"): p.read_bytes() for p in (tmp_path / "ray").rglob("*") if p.is_file()}
    assert len(local) == 4 and remote == local


def test_bad_ray_input_is_refused_before_any_model_loads(capsys, ade_root, tmp_path, no_model_here) -> None:
    base = ["--model", MODEL, "--dataset", "ade150", "--data-root", str(ade_root), "--output", str(tmp_path / "o")]
    cases = [
        (["--executor", "ray", "--ray-workers", "0"], "--ray-workers must be at least 1, got 0"),
        (["--ray-batch-size", "2"], "--ray-batch-size only apply with --executor ray"),
        (["--executor", "ray", "--ray-cpus-per-worker", "nan"], "--ray-cpus-per-worker must be a finite number > 0, got nan"),
        (["--executor", "ray", "--ray-gpus-per-worker", "inf"], "--ray-gpus-per-worker must be a finite number >= 0, got inf"),
        (["--executor", "ray", "--device", "cuda"], "--device cuda on Ray needs a GPU reserved for each worker"),
        (["--executor", "ray", "--device", "bogus"], "--device 'bogus' is not a device name"),
    ]
    for extra, message in cases:
        assert evaluate_main([*base, *extra]) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and message in err and err.count("\n") == 1, err
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(("extra", "message"), [
    (["--ray-cpus-per-worker", "3"], "a Ray worker asks for 3 CPUs, more than any node of this cluster has "
                                     "(largest: 2 CPUs, 0 GPUs; 2 CPUs and 0 GPUs on 1 node)"),
    (["--ray-gpus-per-worker", "1", "--device", "cuda"], "--ray-gpus-per-worker 1 asks for GPUs and this Ray "
                                                         "cluster has none"),
    (["--ray-workers", "5", "--ray-cpus-per-worker", "0.5"], "--ray-workers 5 with 0.5 CPUs each do not fit this "
                                                             "Ray cluster (2 CPUs and 0 GPUs on 1 node): at most 4"),
])
def test_a_pool_the_cluster_cannot_hold_is_refused_at_once(extra, message, capsys, ray_address, tmp_path,
                                                           no_model_here) -> None:
    # Ray would wait forever for these actors; nothing is started and no model is built
    code = segment_main(["--model", MODEL, "--classes", "wall,floor", str(ADE150 / "images"), "--output",
                         str(tmp_path / "o"), *ray_args(ray_address, *extra)])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith(f"error: {message}") and err.count("\n") == 1, err
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(("option", "message"), [
    ("no_such_option=1", "segmenter 'lmseg_tiny' does not accept these options ['no_such_option']"),
    pytest.param("device=cuda", "--device cuda: this machine has no such device (",
                 marks=pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="this machine has CUDA")),
])
def test_a_model_that_cannot_be_built_on_the_workers_is_one_error_line(option, message, capsys, ray_address,
                                                                       ade_root, tmp_path, no_model_here) -> None:
    # the model is built on the workers only (the first one describes the run), so its errors come from there
    code = evaluate_main(["--model", MODEL, "--set", option, "--dataset", "ade150", "--data-root", str(ade_root),
                          "--output", str(tmp_path / "o"), *ray_args(ray_address)])
    err = capsys.readouterr().err
    assert code == 2, err[-2000:]
    assert err.startswith(f"error: on a Ray worker: {message}") and err.count("\n") == 1, err
    assert not (tmp_path / "o" / "state.npz").exists()


def test_auto_with_no_cluster_there_fails_at_once(capsys, ray_address, tmp_path, monkeypatch, no_model_here) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # nothing listens here once the probe is closed
    monkeypatch.setenv("RAY_ADDRESS", f"127.0.0.1:{port}")  # where `auto` looks first, as after a crashed `ray start`
    code = segment_main(["--model", MODEL, "--classes", "wall", str(ADE150 / "images"), "--output",
                         str(tmp_path / "o"), "--executor", "ray", "--ray-address", "auto"])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: cannot reach a Ray cluster at --ray-address auto (= ") and (
        f":{port}, from $RAY_ADDRESS or `ray start`)" in err), err


def test_a_refused_authentication_token_says_where_the_token_comes_from(ray_address, tmp_path) -> None:
    # a driver without the cluster's token (another machine, another user): Ray retries for about 20 s, then this
    env = {key: value for key, value in os.environ.items() if not key.startswith("RAY_AUTH")}
    env.update(HOME=str(tmp_path / "home"), LMSEG_CACHE_DIR=str(tmp_path / "cache"))
    run = subprocess.run(
        [sys.executable, "-m", "pipelines.segment", str(ADE150 / "images"), "--model", MODEL, "--classes", "wall",
         "--output", str(tmp_path / "o"), "--executor", "ray", "--ray-address", ray_address],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
    )
    assert run.returncode == 2, run.stderr[-3000:]
    last = run.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: the Ray cluster at {ray_address} refused this driver: it uses token authentication")
    assert "copy ~/.ray/auth_token from the head node" in last and "RAY_AUTH_MODE=token" in last
    assert "Traceback" not in run.stderr
    assert "gcs_client.cc" not in run.stderr  # Ray's retry lines went to the log
    assert "InvalidAuthToken" in (tmp_path / "cache" / "logs" / "ray.log").read_text()
