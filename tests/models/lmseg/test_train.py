"""A real short training run of lmseg_tiny (the LMSeg task in the shared Trainer) on the real
COCO-Object sample images: loss falls, checkpoints are written atomically, and a resumed run
reproduces the same losses exactly."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

import lmseg
from lmseg.data.train_samples import TrainSamples
from lmseg.engine.config import load_train_config as load_config
from lmseg.engine.schedule import lr_factor
from lmseg.errors import LmsegError
from pipelines.train import main
from tests.engine.training_checks import assert_resume_is_exact, logged_losses, train

from .conftest import build_coco_object_root

CONFIG = Path(__file__).resolve().parents[3] / "configs" / "lmseg_tiny_samples.yaml"


def test_train_checkpoint_and_exact_resume(tmp_path) -> None:
    root = build_coco_object_root(tmp_path / "data")
    common = [f"data.root={root}", "optim.max_steps=8", "optim.warmup_steps=2", "checkpoint_every=4", "log_every=1",
              "data.base_short_side=72"]
    run_a = tmp_path / "a"
    summary = train(load_config(CONFIG, common + [f"output_dir={run_a}"]))
    assert summary["step"] == 8
    losses = logged_losses(run_a)
    assert sorted(losses) == list(range(1, 9))
    assert np.mean([losses[7], losses[8]]) < losses[1] - 0.02, losses  # the loss falls
    ckpts = run_a / "checkpoints"
    assert sorted(p.name for p in ckpts.iterdir()) == ["last.pt", "step_0000004.pt", "step_0000008.pt"]
    saved = yaml.safe_load((run_a / "config.yaml").read_text())
    assert saved["run"]["max_steps"] == 8 and saved["model"]["preset"] == "lmseg_tiny"

    # resume from step 4 in another folder: steps 5..8 give the very same losses
    assert_resume_is_exact(CONFIG, common, losses, run_a, 4, tmp_path / "b")

    # the final checkpoint is a model checkpoint the predictor loads; w moved during training
    seg = lmseg.create_segmenter("lmseg_tiny", checkpoint=ckpts / "last.pt")
    assert seg.model.fusion_weight != 0.5
    assert seg.predict(np.zeros((64, 80, 3), np.uint8), ["cat", "dog"]).label_map.shape == (64, 80)

    # running the same command again continues from last.pt (already finished: no new steps)
    assert train(load_config(CONFIG, common + [f"output_dir={run_a}"]))["step"] == 8
    assert sorted(logged_losses(run_a)) == list(range(1, 9))


def test_samples_are_a_function_of_the_counter(tmp_path) -> None:
    from lmseg.data import open_dataset

    ds = open_dataset("coco_object", build_coco_object_root(tmp_path / "d"), split="train2017")
    s1 = TrainSamples(ds, crop=64, base_short_side=72, scale_range=(0.5, 2.0), seed=3, ignore_index=255)
    s2 = TrainSamples(ds, crop=64, base_short_side=72, scale_range=(0.5, 2.0), seed=3, ignore_index=255)
    for k in (0, 5, 13):
        (x1, y1), (x2, y2) = s1[k], s2[k]
        assert x1.shape == (3, 64, 64) and y1.shape == (64, 64)
        assert (x1 == x2).all() and (y1 == y2).all()
    # one epoch visits every image once
    assert sorted(s1.index_of(k) for k in range(len(ds))) == list(range(len(ds)))


def test_schedule_and_config_errors(tmp_path, capsys) -> None:
    assert lr_factor(0, 10, 100) == pytest.approx(0.1)
    assert lr_factor(10, 10, 100) == pytest.approx(1.0)
    assert lr_factor(100, 10, 100) == pytest.approx(0.0)
    assert lr_factor(55, 10, 100, schedule="poly", power=1.0) == pytest.approx(0.5)
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: lmseg_tiny\noptim: {learning_rate: 1}\n")
    with pytest.raises(LmsegError, match="optim: unknown field.*learning_rate"):
        load_config(bad)
    assert main(["--config", str(bad)]) == 2
    assert "unknown field(s) learning_rate" in capsys.readouterr().err
    with pytest.raises(LmsegError, match="does not exist"):
        load_config(tmp_path / "missing.yaml")
    other = tmp_path / "other.yaml"
    other.write_text("model: lmseg_tiny\nmodel_overrides: {hidden_size: 3}\n")
    cfg = load_config(other)
    with pytest.raises(LmsegError, match="LMSeg config: unknown field.*hidden_size"):
        train(cfg)  # refused when the task is built, before any model


def test_ddp_with_torchrun_on_cpu(tmp_path) -> None:
    """Two processes (gloo) under torchrun: the run finishes, rank 0 alone logs and checkpoints."""
    import os
    import subprocess
    import sys

    root = build_coco_object_root(tmp_path / "data")
    run = tmp_path / "ddp"
    repo = Path(__file__).resolve().parents[3]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "pipelines.train",
           "--config", str(CONFIG), "--set", f"data.root={root}", "--set", f"output_dir={run}",
           "--set", "optim.max_steps=2", "--set", "checkpoint_every=2", "--set", "log_every=1",
           "--set", "optim.batch_size=1"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(cmd, cwd=repo, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    summaries = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert len(summaries) == 2 and summaries[0]["w"] == summaries[1]["w"]  # both ranks hold the same model
    assert summaries[0]["loss"] == summaries[1]["loss"]  # the logged loss is the mean over ranks
    assert sorted(logged_losses(run)) == [1, 2]  # one metrics writer
    assert (run / "checkpoints" / "last.pt").exists()
