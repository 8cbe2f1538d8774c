"""A real short training run of mrovseg_tiny on the real COCO-Object sample images through the
``TrainTask`` protocol: the loss falls, a checkpoint is written and loads as a segmenter, and a
resumed run reproduces the same losses bit for bit.

The shared trainer (``lmseg.engine.trainer``) is not merged yet, so :func:`drive` below is a
minimal stand-in that uses ONLY the protocol's methods (build_model, train_dataset, collate,
loss, param_groups, model_checkpoint, log_values) in the trainer's way (sample ``k = step *
batch + j``, AdamW over the task's parameter groups, checkpoint = model entry + optimiser +
step + RNG state). At merge, the integrator replaces ``drive`` by the engine's trainer.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import yaml

import lmseg
from lmseg.models.mrovseg import TRAIN_TASKS
from tests.models.lmseg.conftest import build_coco_object_root

CONFIG = Path(__file__).resolve().parents[3] / "configs" / "mrovseg_tiny_samples.yaml"


def drive(task, *, steps: int, batch: int, lr: float, out: Path, every: int, resume: Path | None = None):
    """Train ``task`` to ``steps``; returns ``(model, {step: loss})``.

    Writes ``out/step_XXXX.pt`` every ``every`` steps; ``resume`` continues from such a file.
    """
    torch.manual_seed(task.seed)
    model = task.build_model()
    groups = task.param_groups(model)
    opt = torch.optim.AdamW([{"params": g.params, "lr": lr * g.lr_scale} for g in groups], lr=lr, weight_decay=1e-4)
    data = task.train_dataset()
    start = 0
    if resume is not None:
        state = torch.load(resume, map_location="cpu", weights_only=True)
        model.load_state_dict(state["model"]["state_dict"])
        opt.load_state_dict(state["optimizer"])
        torch.set_rng_state(state["rng"])
        start = state["step"]
    losses = {}
    for step in range(start, steps):
        terms = task.loss(model, task.collate([data[step * batch + j] for j in range(batch)]))
        opt.zero_grad(set_to_none=True)
        terms["loss"].backward()
        opt.step()
        losses[step + 1] = float(terms["loss"].detach())
        assert set(task.log_values(model)) == {"logit_scale"}
        if (step + 1) % every == 0:
            torch.save({"format": "test-driver", "model": task.model_checkpoint(model), "optimizer": opt.state_dict(),
                        "step": step + 1, "rng": torch.get_rng_state()}, out / f"step_{step + 1:04d}.pt")
    return model, losses


def probe_loss(task, model, batch) -> float:
    """The loss of ``model`` on a fixed batch with fixed random draws (matching/sampling points)."""
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        torch.manual_seed(123)
        return float(task.loss(model, batch)["loss"])


def test_train_checkpoint_and_exact_resume(tmp_path) -> None:
    root = build_coco_object_root(tmp_path / "data")
    raw = yaml.safe_load(CONFIG.read_text())
    assert raw["task"] == "mrovseg"
    task = TRAIN_TASKS["mrovseg"](raw["model"], {**raw["data"], "root": str(root)}, raw["seed"])
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    model, losses = drive(task, steps=8, batch=2, lr=1e-3, out=tmp_path / "a", every=4)
    assert sorted(losses) == list(range(1, 9)) and all(np.isfinite(list(losses.values())))
    # the loss falls: on the training images (batches of the first epoch), before vs after
    torch.manual_seed(task.seed)
    initial = task.build_model()
    data = task.train_dataset()
    probes = [task.collate([data[k], data[k + 1]]) for k in (0, 2, 4)]
    before = [probe_loss(task, initial, p) for p in probes]
    after = [probe_loss(task, model, p) for p in probes]
    print("probe losses before", before, "after", after, "training", losses)
    assert all(a < b - 1.0 for a, b in zip(after, before)), (before, after)
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["step_0004.pt", "step_0008.pt"]

    _, resumed = drive(task, steps=8, batch=2, lr=1e-3, out=tmp_path / "b", every=4,
                       resume=tmp_path / "a" / "step_0004.pt")
    assert [resumed[s] for s in (5, 6, 7, 8)] == [losses[s] for s in (5, 6, 7, 8)]

    # the training checkpoint's model entry is what the segmenter loads
    seg = lmseg.create_segmenter("mrovseg_tiny", checkpoint=tmp_path / "a" / "step_0008.pt")
    assert seg.predict(np.zeros((64, 80, 3), np.uint8), ["cat", "dog"]).label_map.shape == (64, 80)
    trained = torch.load(tmp_path / "a" / "step_0008.pt", weights_only=True)["model"]["state_dict"]
    initial = torch.load(tmp_path / "a" / "step_0004.pt", weights_only=True)["model"]["state_dict"]
    assert torch.equal(trained["clip.model.visual.conv1.weight"], initial["clip.model.visual.conv1.weight"])  # frozen
    assert not torch.equal(trained["decoder.query_feat.weight"], initial["decoder.query_feat.weight"])


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
