"""Checks every method's training test makes through the shared trainer: the logged losses,
the loss falling on fixed batches, and a resumed run repeating the original bit for bit."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from lmseg.engine.config import TrainConfig, load_train_config
from lmseg.engine.trainer import Trainer
from lmseg.registry import create_train_task


def logged_losses(run: Path) -> dict[int, float]:
    """Step -> loss from a run's ``metrics.jsonl``."""
    return {r["step"]: r["loss"] for r in map(json.loads, (run / "metrics.jsonl").read_text().splitlines())}


def train(config: TrainConfig, resume: Path | None = None) -> dict[str, Any]:
    """Train the task ``config`` names (as ``pipelines.train`` does); the trainer's summary."""
    return Trainer(config, create_train_task(config)).fit(resume=resume)


def probe_loss(task: Any, model: torch.nn.Module, batch: Any) -> float:
    """The loss of ``model`` on a fixed batch with fixed random draws (matching, sampled points)."""
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        torch.manual_seed(123)
        return float(task.loss(model, batch)["loss"])


def probe_losses(task: Any, trained: torch.nn.Module, seed: int) -> tuple[list[float], list[float]]:
    """Losses of the initial model (built under ``seed``, as the trainer does) and of ``trained``
    on three fixed pairs of training samples: (before, after)."""
    torch.manual_seed(seed)
    initial = task.build_model()
    data = task.train_dataset()
    probes = [task.collate([data[k], data[k + 1]]) for k in (0, 2, 4)]
    before = [probe_loss(task, initial, p) for p in probes]
    after = [probe_loss(task, trained, p) for p in probes]
    print("probe losses before", before, "after", after)
    return before, after


def assert_resume_is_exact(config: Path, overrides: list[str], original: dict[int, float], run_dir: Path,
                           step: int, output_dir: Path) -> None:
    """A run resumed from ``run_dir``'s checkpoint of ``step`` into ``output_dir`` logs exactly
    the losses of ``original`` for every later step (to the last bit)."""
    checkpoint = run_dir / "checkpoints" / f"step_{step:07d}.pt"
    train(load_train_config(config, [*overrides, f"output_dir={output_dir}"]), resume=checkpoint)
    resumed = logged_losses(output_dir)
    later = [s for s in sorted(original) if s > step]
    assert sorted(resumed) == later
    assert [resumed[s] for s in later] == [original[s] for s in later]
