"""The shared Trainer on a toy task (seconds): logging, frozen parameters, checkpoints, exact
resume through the generic "trained" entry, gradient accumulation, the poly schedule, the
refusal of changed settings on resume, a finished run run again, and a run extended by raising
max_steps. LMSeg's own run: tests/models/lmseg/test_train.py."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from lmseg.engine.checkpoints import changed_settings
from lmseg.engine.config import config_from_data
from lmseg.engine.schedule import lr_factor
from lmseg.engine.task import ParamGroup, TrainTask
from lmseg.engine.trainer import Trainer
from lmseg.errors import LmsegError
from tests.tolerances import fp32_tolerance


class ToyData(torch.utils.data.Dataset):
    """Item ``k``: ``x`` (4,) and ``y = x . (1, -2, 3, 0.5)`` + noise, drawn from ``(seed, k)``."""

    def __init__(self, seed: int) -> None:
        self.seed = seed

    def __len__(self) -> int:
        return 2**31

    def __getitem__(self, k: int):
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + k)
        x = torch.randn(4, generator=g)
        return x, (x * torch.tensor([1.0, -2.0, 3.0, 0.5])).sum(0, keepdim=True) + 0.01 * torch.randn(1, generator=g)


class ToyTask(TrainTask):
    """A TrainTask without ``load_model_checkpoint``: the Trainer keeps its trained weights itself."""

    name = "toy"

    def __init__(self, seed: int = 0, norm: bool = True) -> None:
        self.seed, self.norm = seed, norm

    def build_model(self) -> torch.nn.Module:
        middle = torch.nn.BatchNorm1d(8) if self.norm else torch.nn.Identity()
        return torch.nn.Sequential(torch.nn.Linear(4, 8), middle, torch.nn.Linear(8, 1)).train()

    def train_dataset(self):
        return ToyData(self.seed)

    def collate(self, items):
        return torch.utils.data.default_collate(items)

    def loss(self, model, batch):
        x, y = batch
        error = model(x) - y
        return {"loss": (error**2).mean(), "mae": error.abs().mean()}

    def param_groups(self, model):
        return [ParamGroup("first", list(model[0].parameters())),
                ParamGroup("last", list(model[2].parameters()), lr_scale=0.5, weight_decay=0.0)]

    def model_checkpoint(self, model):
        return {"format": "toy", "state_dict": {k: v.detach().clone() for k, v in model.state_dict().items()}}

    def log_values(self, model):
        return {"bias": float(model[2].bias.detach())}


def _config(out: Path, **changes):
    run = {"max_steps": 6, "output_dir": str(out), "checkpoint_every": 3, "log_every": 1, "device": "cpu",
           "workers": 0, **changes.pop("run", {})}
    optim = {"lr": 0.05, "warmup_steps": 2, "batch_size": 4, "amp": False, **changes.pop("optim", {})}
    return config_from_data({"task": "toy", "run": run, "optim": optim}, where="test")


def _metrics(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def test_fit_logs_freezes_checkpoints_and_resumes_exactly(tmp_path) -> None:
    summary = Trainer(_config(tmp_path / "a", optim={"warmup_steps": 4}), ToyTask()).fit()
    records = _metrics(tmp_path / "a")
    assert [r["step"] for r in records] == [1, 2, 3, 4, 5, 6] and summary["step"] == 6
    assert list(records[0]) == ["step", "loss", "mae", "lr", "lr_last", "bias", "elapsed_s"]
    # the rate logged after step t is the one of the next step: 2/4 of lr during the warm-up
    assert records[0]["lr"] == pytest.approx(0.025) and records[0]["lr_last"] == pytest.approx(0.0125)
    assert records[-1]["lr"] == pytest.approx(0.0)  # cosine reaches 0 at max_steps
    assert records[-1]["loss"] < records[0]["loss"]
    state = torch.load(tmp_path / "a" / "checkpoints" / "last.pt", weights_only=True)
    assert state["model"]["format"] == "toy" and state["step"] == 6
    assert "1.weight" not in state["trained"]  # BatchNorm's affine weight is in no group: frozen, not saved
    assert "1.running_mean" in state["trained"]  # buffers are kept for an exact resume
    assert sorted(p.name for p in (tmp_path / "a" / "checkpoints").iterdir()) == [
        "last.pt", "step_0000003.pt", "step_0000006.pt"]

    Trainer(_config(tmp_path / "b", optim={"warmup_steps": 4}), ToyTask()).fit(resume=tmp_path / "a" / "checkpoints" / "step_0000003.pt")
    assert [(r["step"], r["loss"], r["bias"]) for r in _metrics(tmp_path / "b")] == [
        (r["step"], r["loss"], r["bias"]) for r in records[3:]]


class RandomLossTask(ToyTask):
    """A loss that draws from torch's global generator (as MROVSeg's matching point sampling does)."""

    def loss(self, model, batch):
        x, y = batch
        weights = torch.rand(x.shape[0])
        return {"loss": (weights * ((model(x) - y) ** 2).squeeze(1)).mean()}


def test_resume_is_exact_when_the_loss_draws_from_the_global_generator(tmp_path) -> None:
    Trainer(_config(tmp_path / "a"), RandomLossTask()).fit()
    Trainer(_config(tmp_path / "b"), RandomLossTask()).fit(resume=tmp_path / "a" / "checkpoints" / "step_0000003.pt")
    assert [(r["step"], r["loss"]) for r in _metrics(tmp_path / "b")] == [
        (r["step"], r["loss"]) for r in _metrics(tmp_path / "a")[3:]]


def test_gradient_accumulation_matches_one_large_batch(tmp_path) -> None:
    Trainer(_config(tmp_path / "one", optim={"batch_size": 4}), ToyTask(norm=False)).fit()
    Trainer(_config(tmp_path / "two", optim={"batch_size": 2, "grad_accum": 2}), ToyTask(norm=False)).fit()
    one, two = _metrics(tmp_path / "one"), _metrics(tmp_path / "two")
    # the batch mean in two halves: per step the forward pass (2 linear maps of up to 8 terms), the loss's mean,
    # the backward pass (3 products and the batch sums of the gradients): 6 reductions, over 6 steps (errors of
    # earlier steps carry into the weights): 8 terms, depth 36
    rel = fp32_tolerance(terms=8, depth=36)["rtol"]
    for a, b in zip(one, two):
        assert b["loss"] == pytest.approx(a["loss"], rel=rel) and b["bias"] == pytest.approx(a["bias"], rel=rel)


def test_poly_schedule(tmp_path) -> None:
    cfg = _config(tmp_path / "p", optim={"schedule": "poly", "poly_power": 1.0, "warmup_steps": 0})
    Trainer(cfg, ToyTask()).fit()
    assert [r["lr"] for r in _metrics(tmp_path / "p")] == pytest.approx(
        [0.05 * (1 - s / 6) for s in range(1, 7)])


def test_resume_refuses_changed_settings_and_applies_harmless_ones(tmp_path, caplog) -> None:
    out = tmp_path / "r"
    Trainer(_config(out, run={"max_steps": 3}), ToyTask()).fit()
    with pytest.raises(LmsegError, match=r"cannot resume .*\n  optim.lr: 0.05 -> 0.01\n.*another output_dir"):
        Trainer(_config(out, run={"max_steps": 3}, optim={"lr": 0.01}), ToyTask()).fit()
    assert json.loads(json.dumps(_metrics(out)))[-1]["step"] == 3  # nothing was run or rewritten
    with caplog.at_level("INFO", logger="lmseg.engine.trainer"):
        summary = Trainer(_config(out, run={"max_steps": 3, "log_every": 2}), ToyTask()).fit()
    assert summary["step"] == 3
    assert "changed settings (applied): run.log_every: 1 -> 2" in caplog.text


def test_a_finished_run_says_so_and_reports_its_last_loss(tmp_path, caplog) -> None:
    out = tmp_path / "f"
    first = Trainer(_config(out), ToyTask()).fit()
    with caplog.at_level("INFO", logger="lmseg.engine.trainer"):
        again = Trainer(_config(out), ToyTask()).fit()
    assert again == {"step": 6, "loss": first["loss"], "output_dir": str(out), "already_finished": True}
    assert "nothing to train (raise max_steps" in caplog.text
    assert len(_metrics(out)) == 6  # nothing was run or logged


def test_raising_max_steps_extends_a_finished_run_on_the_new_schedule(tmp_path, caplog) -> None:
    out = tmp_path / "e"
    Trainer(_config(out), ToyTask()).fit()
    assert _metrics(out)[-1]["lr"] == 0.0  # the cosine schedule ended at max_steps 6
    with caplog.at_level("INFO", logger="lmseg.engine.trainer"):
        summary = Trainer(_config(out, run={"max_steps": 10}), ToyTask()).fit()
    assert summary["step"] == 10 and "run.max_steps: 6 -> 10 (the schedule now runs to step 10)" in caplog.text
    records = _metrics(out)
    assert [r["step"] for r in records] == list(range(1, 11))
    # steps 7-10 run at the rates of a 10-step run: the rate logged after step t is lr_factor(t, 2, 10)
    assert [r["lr"] for r in records[6:]] == pytest.approx([0.05 * lr_factor(t, 2, 10) for t in range(7, 11)])
    assert records[6]["bias"] != records[5]["bias"]  # step 7 trained: its rate was not the old schedule's 0
    with pytest.raises(LmsegError, match=r"run.max_steps: 10 -> 4 \(the checkpoint is at step 10"):
        Trainer(_config(out, run={"max_steps": 4}), ToyTask()).fit()


def test_a_checkpoint_of_another_task_is_named_first(tmp_path) -> None:
    out = tmp_path / "t"
    Trainer(_config(out, run={"max_steps": 3}), ToyTask()).fit()
    other = replace(_config(out, run={"max_steps": 3}, optim={"lr": 0.01}), task="other")
    with pytest.raises(LmsegError) as info:
        Trainer(other, ToyTask()).fit()
    assert str(info.value) == (f"cannot resume from {out / 'checkpoints' / 'last.pt'}: it is a checkpoint of a 'toy' "
                               "run and this config trains 'other'; start the run in another output_dir")


def test_defaults_a_task_fills_in_later_are_no_change_on_resume() -> None:
    """A checkpoint whose config lacks the task's filled-in defaults (MGCA's before they were
    recorded) resumes; a value the user now states is still compared."""
    saved = config_from_data({"task": "toy", "model": {"name": "a"}}, where="saved")
    given = config_from_data({"task": "toy", "model": {"name": "a"}}, where="given")
    resolved = config_from_data({"task": "toy", "model": {"name": "a", "depth": 2}}, where="resolved")
    assert changed_settings(saved, resolved, step=3, given=given) == ([], [])
    stated = config_from_data({"task": "toy", "model": {"name": "a", "depth": 2}}, where="given")
    assert changed_settings(saved, resolved, step=3, given=stated) == ([], ["model.depth: '<unset>' -> 2"])


def test_output_dir_that_is_a_file_is_refused_before_anything_runs(tmp_path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(LmsegError, match="is an existing file"):
        Trainer(_config(tmp_path / "file"), ToyTask())
