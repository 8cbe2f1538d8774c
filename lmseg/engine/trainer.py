"""The one training loop every method uses, driven by a :class:`~lmseg.engine.task.TrainTask`.

>>> from lmseg.engine.config import load_train_config
>>> from lmseg.engine.trainer import Trainer
>>> from lmseg.registry import create_train_task
>>> config = load_train_config("configs/lmseg_tiny_samples.yaml")
>>> summary = Trainer(config, create_train_task(config)).fit()

What it does around the task (config fields in :mod:`lmseg.engine.config`):

* AdamW over the task's parameter groups (``lr * lr_scale`` each, optional per-group weight
  decay); every other parameter is frozen. Linear warm-up, then cosine or poly decay
  (:mod:`lmseg.engine.schedule`), one scheduler step per optimiser step.
* bfloat16 autocast on CUDA (``optim.amp``), gradient clipping (``optim.grad_clip``),
  gradient accumulation (``optim.grad_accum`` micro-batches per step).
* Under ``torchrun``: DDP, rank ``r`` reads its own samples (:mod:`lmseg.engine.sampler`), the
  logged loss is the mean over ranks, only rank 0 writes.
* ``<output_dir>/config.yaml`` (the resolved config), ``metrics.jsonl`` (a JSON line per
  logged step: step, loss terms, ``lr`` of the first group and ``lr_<name>`` of the others,
  the task's log values, elapsed seconds; the same on stderr), and checkpoints
  (:mod:`lmseg.engine.checkpoints`) every ``checkpoint_every`` steps and at the end.
* Resume: from ``--resume PATH`` or, by default, ``<output_dir>/checkpoints/last.pt``; exact
  (model, optimiser, scheduler, generators, and the data of step ``t`` is a function of ``t``).
  Changed settings are refused or applied as :mod:`lmseg.engine.checkpoints` says.

Model weights on resume: a task whose ``load_model_checkpoint`` hook is set (the inverse of
its ``model_checkpoint``, :class:`~lmseg.engine.task.TrainTask`) restores them from the
checkpoint's ``"model"`` entry; for any other task the Trainer also saves and restores its
trained parameters and all buffers under ``"trained"``.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Mapping
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import torch

from lmseg.engine import checkpoints as ckpt
from lmseg.engine.config import TrainConfig
from lmseg.engine.ddp import World, device_for, mean_over_ranks, setup_world, teardown_world
from lmseg.engine.sampler import StepSampler
from lmseg.engine.schedule import lr_factor
from lmseg.engine.task import ParamGroup, TrainTask
from lmseg.errors import LmsegError

__all__ = ["Trainer", "check_output_dir"]

log = logging.getLogger(__name__)


def check_output_dir(path: Path) -> None:
    """Refuse an output folder that is an existing file (before anything is built)."""
    if path.exists() and not path.is_dir():
        raise LmsegError(f"output_dir {path} is an existing file, not a folder; choose another output_dir")


def _to_device(batch: Any, device: torch.device) -> Any:
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, Mapping):
        return {k: _to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch)(_to_device(v, device) for v in batch)
    return batch


class Trainer:
    """Trains ``task`` as the config says.

    Args:
        config: the resolved training config.
        task: the method's task (:func:`lmseg.registry.create_train_task` builds the one the
            config names).
    """

    def __init__(self, config: TrainConfig, task: TrainTask) -> None:
        self.config = config
        self.out = Path(config.run.output_dir)
        check_output_dir(self.out)
        check_output_dir(self.out / "checkpoints")
        self.task = task

    # ---- set-up ---------------------------------------------------------------------------

    def resolved_config(self) -> TrainConfig:
        """The config with the task's sections completed (if the task can say them)."""
        from dataclasses import replace

        return replace(self.config, **self.task.resolved_sections())

    def _resume_state(self, resume: str | Path | None) -> dict[str, Any] | None:
        last = self.out / "checkpoints" / "last.pt"
        if resume is None and not last.exists():
            return None
        path = Path(resume) if resume is not None else last
        state = ckpt.read_training_checkpoint(path)
        free, refused = ckpt.changed_settings(ckpt.saved_config(state, path), self.resolved_config())
        if refused:
            raise LmsegError(
                f"cannot resume from {path}: these settings differ from the run that wrote it:\n  "
                + "\n  ".join(refused)
                + "\nput them back, or start a new run in another output_dir"
            )
        if free:
            log.info("resuming from %s with changed settings (applied): %s", path, "; ".join(free))
        state["path"] = str(path)
        return state

    def _optimizer(self, model: torch.nn.Module) -> tuple[list[ParamGroup], Any, Any]:
        optim = self.config.optim
        groups = self.task.param_groups(model)
        trained = {id(p) for g in groups for p in g.params}
        for p in model.parameters():
            if id(p) not in trained:
                p.requires_grad_(False)
        torch_groups = []
        for g in groups:
            entry = {"params": g.params, "lr": optim.lr * g.lr_scale, "name": g.name}
            if g.weight_decay is not None:
                entry["weight_decay"] = g.weight_decay
            torch_groups.append(entry)
        optimizer = torch.optim.AdamW(torch_groups, lr=optim.lr, weight_decay=optim.weight_decay)
        total, warm = self.config.run.max_steps, optim.warmup_steps
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda s: lr_factor(s, warm, total, schedule=optim.schedule, power=optim.poly_power))
        return groups, optimizer, scheduler

    def _restore(self, state: dict[str, Any], model: torch.nn.Module, optimizer: Any, scheduler: Any) -> int:
        if self.task.load_model_checkpoint is not None:
            self.task.load_model_checkpoint(model, state["model"], state["path"])
        elif "trained" in state:
            from lmseg.backbones.loading import check_fit

            expected = self._trained_state(model)
            check_fit(expected, state["trained"], source=state["path"], arch=f"the trained part of {self.task.name}")
            with torch.no_grad():
                for name, tensor in expected.items():
                    tensor.copy_(state["trained"][name])
        else:
            raise LmsegError(f"{state['path']} holds no trained weights this task can restore")
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        ckpt.restore_rng(state["rng"])
        return int(state["step"])

    @staticmethod
    def _trained_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
        tensors = {n: p for n, p in model.named_parameters() if p.requires_grad}
        tensors.update(model.named_buffers())
        return tensors

    def _loader(self, start: int, world: World, device: torch.device):
        from torch.utils.data import DataLoader

        batch, accum, workers = self.config.optim.batch_size, self.config.optim.grad_accum, self.config.run.workers
        # the loader's own generator: starting its iterator draws a worker base seed, which must not
        # come from the global generator (a resume restores that one after step t, and a task may
        # draw from it in its loss, e.g. MROVSeg's point sampling)
        return DataLoader(self.task.train_dataset(), batch_size=batch, collate_fn=self.task.collate,
                          sampler=StepSampler(start * accum, batch, world.rank, world.size),
                          num_workers=workers, pin_memory=device.type == "cuda", persistent_workers=workers > 0,
                          generator=torch.Generator().manual_seed(self.config.run.seed))

    # ---- the run --------------------------------------------------------------------------

    def fit(self, resume: str | Path | None = None) -> dict[str, Any]:
        """Run (or resume) training; returns ``{"step", <every loss term of the last step>, "output_dir",
        **log_values}``."""
        world = setup_world()
        try:
            return self._fit(resume, world)
        finally:
            teardown_world(world)

    def _fit(self, resume: str | Path | None, world: World) -> dict[str, Any]:
        device = device_for(self.config.run.device, world)
        state = self._resume_state(resume)
        if world.is_main:
            import yaml

            from lmseg.io.atomic import write_text

            write_text(self.out / "config.yaml", yaml.safe_dump(self.resolved_config().to_dict(), sort_keys=False))
        torch.manual_seed(self.config.run.seed)
        model = self.task.build_model().to(device)
        groups, optimizer, scheduler = self._optimizer(model)
        start = 0 if state is None else self._restore(state, model, optimizer, scheduler)
        if state is not None and world.is_main:
            log.info("resumed from %s at step %d", state["path"], start)
        del state
        wrapped = model
        if world.size > 1:
            from torch.nn.parallel import DistributedDataParallel

            wrapped = DistributedDataParallel(model, device_ids=[world.local] if device.type == "cuda" else None)
        model.train()
        loop = _Loop(self, model, wrapped, groups, optimizer, scheduler, world, device)
        return loop.run(start, self._loader(start, world, device))


class _Loop:
    """The steps of one :meth:`Trainer.fit` call (state shared by the step, logging and saving)."""

    def __init__(self, trainer: Trainer, model, wrapped, groups: list[ParamGroup], optimizer, scheduler,
                 world: World, device: torch.device) -> None:
        self.trainer, self.task, self.config = trainer, trainer.task, trainer.config
        self.model, self.wrapped, self.groups = model, wrapped, groups
        self.optimizer, self.scheduler, self.world, self.device = optimizer, scheduler, world, device
        self.params = [p for g in groups for p in g.params]
        self.use_amp = self.config.optim.amp and device.type == "cuda"

    def run(self, start: int, loader) -> dict[str, Any]:
        total, step, last = self.config.run.max_steps, start, {"loss": float("nan")}
        metrics = (self.trainer.out / "metrics.jsonl").open("a") if self.world.is_main else None
        started = time.time()
        batches = iter(loader)
        try:
            while step < total:
                last = self.step(batches)
                step += 1
                if not math.isfinite(last["loss"]):
                    raise LmsegError(f"the loss became {last['loss']} at step {step}; lower the learning rate")
                if metrics is not None and (step % self.config.run.log_every == 0 or step in (total, start + 1)):
                    self.log(metrics, step, last, time.time() - started)
                if self.world.is_main and (step % self.config.run.checkpoint_every == 0 or step == total):
                    self.save(step)
        finally:
            if metrics is not None:
                metrics.close()
        return {"step": step, **last, "output_dir": str(self.trainer.out), **self.task.log_values(self.model)}

    def step(self, batches) -> dict[str, float]:
        """One optimiser step over ``grad_accum`` micro-batches; the logged terms (mean over ranks)."""
        accum = self.config.optim.grad_accum
        self.optimizer.zero_grad(set_to_none=True)
        sums: dict[str, torch.Tensor] = {}
        for micro in range(accum):
            batch = _to_device(next(batches), self.device)
            sync = nullcontext() if micro == accum - 1 or self.world.size == 1 else self.wrapped.no_sync()
            with sync:
                with torch.autocast("cuda", dtype=torch.bfloat16, enabled=self.use_amp):
                    terms = self.task.loss(self.wrapped, batch)
                loss = terms["loss"]
                (loss / accum if accum > 1 else loss).backward()
            for key, value in terms.items():
                value = value.detach().float()
                sums[key] = sums[key] + value if key in sums else value
        if self.config.optim.grad_clip:
            torch.nn.utils.clip_grad_norm_(self.params, self.config.optim.grad_clip)
        self.optimizer.step()
        self.scheduler.step()
        return {k: float(mean_over_ranks(v / accum if accum > 1 else v, self.world)) for k, v in sums.items()}

    def log(self, metrics, step: int, terms: dict[str, float], elapsed: float) -> None:
        record: dict[str, Any] = {"step": step, **terms}
        for i, group in enumerate(self.groups):
            record["lr" if i == 0 else f"lr_{group.name}"] = self.optimizer.param_groups[i]["lr"]
        record.update(self.task.log_values(self.model))
        record["elapsed_s"] = round(elapsed, 3)
        metrics.write(json.dumps(record) + "\n")
        metrics.flush()
        log.info("step %d %s", step, " ".join(f"{k} {v:.5g}" for k, v in record.items() if k not in ("step",)))

    def save(self, step: int) -> None:
        run = self.config.run
        folder = self.trainer.out / "checkpoints"
        model_state = self.task.model_checkpoint(self.model)
        extra = {} if self.task.load_model_checkpoint is not None else {
            "trained": {k: v.detach().cpu() for k, v in Trainer._trained_state(self.model).items()}}
        for path in (folder / f"step_{step:07d}.pt", folder / "last.pt"):
            ckpt.save_training_checkpoint(path, model_state=model_state, optimizer=self.optimizer,
                                          scheduler=self.scheduler, step=step,
                                          config=self.trainer.resolved_config(), extra=extra)
        if run.keep_checkpoints > 0:
            for old in sorted(folder.glob("step_*.pt"))[: -run.keep_checkpoints]:
                old.unlink(missing_ok=True)
