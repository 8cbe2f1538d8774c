"""A real short training run of mrovseg_tiny on the real COCO-Object sample images through the
shared :class:`~lmseg.engine.trainer.Trainer` (``task: mrovseg``): the loss falls, checkpoints are
written, the final one loads as a segmenter, and a run resumed from step 4 reproduces steps 5-8
bit for bit (Hungarian matching and point sampling draw from torch's global generator, which
the trainer's checkpoints restore)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import yaml

import lmseg
from lmseg.engine.config import load_train_config
from lmseg.models.mrovseg import TRAIN_TASKS
from pipelines.train import main
from tests.engine.training_checks import assert_resume_is_exact, logged_losses, probe_losses, train
from tests.models.lmseg.conftest import build_coco_object_root

CONFIG = Path(__file__).resolve().parents[3] / "configs" / "mrovseg_tiny_samples.yaml"


def test_train_checkpoint_and_exact_resume(tmp_path) -> None:
    root = build_coco_object_root(tmp_path / "data")
    common = [f"data.root={root}", "max_steps=8", "checkpoint_every=4", "log_every=1"]
    run_a = tmp_path / "a"
    summary = train(load_train_config(CONFIG, common + [f"output_dir={run_a}"]))
    assert summary["step"] == 8 and set(summary) >= {"loss", "logit_scale"}
    losses = logged_losses(run_a)
    assert sorted(losses) == list(range(1, 9)) and all(np.isfinite(list(losses.values())))
    ckpts = run_a / "checkpoints"
    assert sorted(p.name for p in ckpts.iterdir()) == ["last.pt", "step_0000004.pt", "step_0000008.pt"]
    saved = yaml.safe_load((run_a / "config.yaml").read_text())
    assert saved["task"] == "mrovseg" and saved["model"]["architecture"]["name"] == "mrovseg_tiny"

    # the loss falls: on the training images (batches of the first epoch), before vs after
    config = load_train_config(CONFIG, common)
    task = TRAIN_TASKS["mrovseg"](config.model, config.data, config.run.seed)
    trained = lmseg.create_segmenter("mrovseg_tiny", checkpoint=ckpts / "step_0000008.pt").model.train()
    before, after = probe_losses(task, trained, config.run.seed)
    assert all(a < b - 1.0 for a, b in zip(after, before)), (before, after)

    # resume from step 4 in another folder: steps 5..8 give the very same losses
    assert_resume_is_exact(CONFIG, common, losses, run_a, 4, tmp_path / "b")

    # the training checkpoint's model entry is what the segmenter loads; CLIP stayed frozen
    seg = lmseg.create_segmenter("mrovseg_tiny", checkpoint=ckpts / "last.pt")
    assert seg.predict(np.zeros((64, 80, 3), np.uint8), ["cat", "dog"]).label_map.shape == (64, 80)
    final = seg.model.state_dict()
    torch.manual_seed(config.run.seed)
    start = task.build_model().state_dict()
    assert torch.equal(final["clip.model.visual.conv1.weight"], start["clip.model.visual.conv1.weight"])
    assert not torch.equal(final["decoder.query_feat.weight"], start["decoder.query_feat.weight"])


def test_cli_runs_the_config(tmp_path) -> None:
    root = build_coco_object_root(tmp_path / "data")
    out = tmp_path / "run"
    code = main(["--config", str(CONFIG), "--set", "max_steps=2", "--set", f"data.root={root}",
                 "--set", f"output_dir={out}"])
    assert code == 0
    assert sorted(logged_losses(out)) == [1, 2]
    assert (out / "checkpoints" / "last.pt").is_file()


def test_samples_and_batches_are_a_function_of_the_counter(tmp_path) -> None:
    root = build_coco_object_root(tmp_path / "data")
    raw = yaml.safe_load(CONFIG.read_text())
    task = TRAIN_TASKS["mrovseg"](raw["model"], {**raw["data"], "root": str(root)}, 3)
    a, b = task.train_dataset(), task.train_dataset()
    for k in (0, 7):
        (x1, y1), (x2, y2) = a[k], b[k]
        assert x1.shape == (3, 96, 96) and y1.shape == (96, 96) and torch.equal(x1, x2) and torch.equal(y1, y2)
    images, labels = task.collate([a[0], a[1]])
    assert images.shape == (2, 3, 96, 96) and labels.dtype == torch.int64
