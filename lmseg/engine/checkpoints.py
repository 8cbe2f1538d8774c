"""Training checkpoints: what a run saves to resume exactly, and the check on resuming.

A training checkpoint is a ``torch.save`` dict readable with ``weights_only=True``::

    {"format": "lmseg-train", "format_version": 1,
     "model": the task's model checkpoint (what the method's predictor loads),
     "optimizer": AdamW state, "scheduler": LambdaLR state, "step": optimiser steps done,
     "rng": torch / numpy / python (/ cuda) generator states,
     "train_config": the resolved TrainConfig as JSON}

Files are ``<output_dir>/checkpoints/step_XXXXXXX.pt`` and ``last.pt``, written atomically.
On resume, settings that do not change the computation (:data:`FREE_ON_RESUME`: output
folder, logging and checkpoint frequency, device, loader processes) may differ and are
applied with a log line; so may ``run.max_steps``, to any value not below the checkpoint's
step (a finished run is extended by raising it; the learning-rate schedule is then defined
over the new ``max_steps`` from the resumed step on, see :mod:`lmseg.engine.trainer`). Any
other difference is refused, naming each setting.
"""

from __future__ import annotations

import json
import random
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lmseg.backbones.loading import load_torch_file, require_format
from lmseg.engine.config import TrainConfig, config_from_data
from lmseg.errors import LmsegError
from lmseg.io.atomic import atomic_path

__all__ = ["FREE_ON_RESUME", "changed_settings", "read_training_checkpoint", "restore_rng", "rng_state",
           "save_training_checkpoint"]

FORMAT = "lmseg-train"
FORMAT_VERSION = 1

FREE_ON_RESUME = frozenset({"run.output_dir", "run.checkpoint_every", "run.log_every", "run.keep_checkpoints",
                            "run.device", "run.workers"})


def rng_state() -> dict[str, Any]:
    """The states of torch's, numpy's and Python's global generators (and CUDA's), as plain data."""
    np_state = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": (np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), int(np_state[2]), int(np_state[3]),
                  float(np_state[4])),
        "python": random.getstate(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: Mapping[str, Any]) -> None:
    """Set the global generators from :func:`rng_state`'s result."""
    torch.set_rng_state(state["torch"])
    name, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_training_checkpoint(path: Path, *, model_state: dict[str, Any], optimizer: torch.optim.Optimizer,
                             scheduler: Any, step: int, config: TrainConfig,
                             extra: Mapping[str, Any] | None = None) -> None:
    """Write a training checkpoint atomically (``extra``: more top-level entries)."""
    state = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "model": model_state,
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "step": step,
        "rng": rng_state(),
        "train_config": json.dumps(config.to_dict()),
        **(extra or {}),
    }
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def read_training_checkpoint(path: Path) -> dict[str, Any]:
    """Read a training checkpoint (of this trainer or of the earlier LMSeg trainer).

    Raises:
        LmsegError: missing, corrupt, or not a training checkpoint.
    """
    return require_format(load_torch_file(path, what="training checkpoint"), path, FORMAT, FORMAT_VERSION,
                          what="a training checkpoint", otherwise="give a checkpoints/step_*.pt or last.pt file")


def changed_settings(saved: TrainConfig, current: TrainConfig, *, step: int,
                     given: TrainConfig | None = None) -> tuple[list[str], list[str]]:
    """``(free, refused)``: ``"key: old -> new"`` lines of the settings that differ.

    Args:
        saved: the config the checkpoint was trained with.
        current: this run's resolved config (the task's defaults filled in).
        step: the checkpoint's step; ``run.max_steps`` may change to any value not below it.
        given: this run's config as given (before the task filled in its defaults). A key that
            neither the saved config nor the given one holds is a default on both sides (a
            checkpoint written before its task recorded its defaults), not a change.
    """
    old, new = _flat(saved.to_dict()), _flat(current.to_dict())
    stated = set(_flat(given.to_dict())) if given is not None else set(new)
    free, refused = [], []
    for key in sorted(set(old) | set(new)):
        if key not in old and key not in stated:
            continue
        if old.get(key, "<unset>") != new.get(key, "<unset>"):
            line = f"{key}: {old.get(key, '<unset>')!r} -> {new.get(key, '<unset>')!r}"
            if key == "run.max_steps":
                extended = new[key] >= step
                line += (f" (the schedule now runs to step {new[key]})" if extended else
                         f" (the checkpoint is at step {step}: max_steps may not be lower)")
                (free if extended else refused).append(line)
            else:
                (free if key in FREE_ON_RESUME else refused).append(line)
    return free, refused


def saved_config(state: Mapping[str, Any], path: Path) -> TrainConfig:
    """The config a checkpoint was trained with (older LMSeg layouts are translated)."""
    try:
        data = json.loads(state["train_config"])
        run = data.get("run", data)  # the earlier LMSeg trainer saved the run fields at the top level
        if run.get("keep_checkpoints") == 0:  # "keep every one" before null said so (0 is refused now)
            run["keep_checkpoints"] = None
        return config_from_data(data, where=f"{path} (its saved config)")
    except (KeyError, TypeError, ValueError, AttributeError):
        raise LmsegError(f"{path} holds no readable training config; it cannot be resumed") from None


def _flat(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, Mapping) and value:
            flat.update(_flat(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat
