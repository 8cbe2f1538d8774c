"""The training config: a YAML file with the sections every method shares, plus the method's own.

::

    task: lmseg                # which TRAIN_TASKS builder (missing: lmseg)
    run:                       # (these fields may also stand at the top level)
      max_steps: 80000
      seed: 0
      output_dir: runs/lmseg_vitb16
      checkpoint_every: 5000
      log_every: 20
      keep_checkpoints: 3      # step_*.pt files kept, at least 1 (last.pt always); null keeps every one
      device: auto             # auto | cpu | cuda | cuda:N
      workers: 4               # data-loader processes
    optim: {lr: 2e-4, weight_decay: 1e-4, warmup_steps: 1500, schedule: cosine, batch_size: 4,
            grad_clip: null, grad_accum: 1, amp: true}
    model: {...}               # read only by the task
    data: {...}                # read only by the task

The older LMSeg layout (``model: lmseg_vitb16`` as a string, top-level ``model_overrides``,
``clip_weights``, ``sam_weights``, ``optim.clip_lr_mult``, ``optim.max_steps``,
``data.workers``) is still read: :func:`translate_lmseg_layout` moves those keys into the
sections above (and says so in the log).

Every numeric setting is checked here, before any model is built.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from lmseg.config_overrides import merge_nested, override_dataclass, parse_overrides
from lmseg.errors import LmsegError

__all__ = ["OptimConfig", "RunConfig", "TrainConfig", "config_from_data", "load_train_config",
           "translate_lmseg_layout"]

log = logging.getLogger(__name__)


def _require(ok: bool, message: str) -> None:
    if not ok:
        raise ValueError(message)


@dataclass(frozen=True)
class OptimConfig:
    """AdamW and its schedule.

    Attributes:
        lr: base learning rate (each parameter group scales it by its ``lr_scale``).
        weight_decay: AdamW weight decay (a group may set its own).
        warmup_steps: linear warm-up from ``lr / warmup_steps`` to ``lr``.
        schedule: after warm-up, ``cosine`` decay to 0 at ``max_steps`` or ``poly``
            (``(1 - progress) ** poly_power``).
        poly_power: exponent of the poly schedule.
        batch_size: samples per process and micro-step.
        grad_clip: max global gradient norm of the trained parameters (None: no clipping).
        grad_accum: micro-batches per optimiser step (the effective batch is
            ``batch_size * grad_accum * world``).
        amp: bfloat16 autocast on CUDA (ignored on the CPU).
    """

    lr: float = 2e-4
    weight_decay: float = 1e-4
    warmup_steps: int = 1500
    schedule: Literal["cosine", "poly"] = "cosine"
    poly_power: float = 0.9
    batch_size: int = 4
    grad_clip: float | None = None
    grad_accum: int = 1
    amp: bool = True

    def __post_init__(self) -> None:
        _require(self.lr > 0, f"lr must be positive, got {self.lr}")
        _require(self.weight_decay >= 0, f"weight_decay must be >= 0, got {self.weight_decay}")
        _require(self.warmup_steps >= 0, f"warmup_steps must be >= 0, got {self.warmup_steps}")
        _require(self.poly_power > 0, f"poly_power must be positive, got {self.poly_power}")
        _require(self.batch_size >= 1, f"batch_size must be at least 1, got {self.batch_size}")
        _require(self.grad_clip is None or self.grad_clip > 0, f"grad_clip must be positive or null, got {self.grad_clip}")
        _require(self.grad_accum >= 1, f"grad_accum must be at least 1, got {self.grad_accum}")


@dataclass(frozen=True)
class RunConfig:
    """Length, seed, outputs and devices of a run (see the module docstring).

    ``keep_checkpoints``: how many ``step_*.pt`` files are kept (the newest; ``last.pt`` is
    always kept); null keeps every one. 0 is refused: it used to mean "keep every one", which
    reads as the opposite.
    """

    max_steps: int = 80_000
    seed: int = 0
    output_dir: str = "runs/train"
    checkpoint_every: int = 5000
    log_every: int = 20
    keep_checkpoints: int | None = 3
    device: str = "auto"
    workers: int = 4

    def __post_init__(self) -> None:
        _require(self.max_steps >= 1, f"max_steps must be at least 1, got {self.max_steps}")
        _require(self.checkpoint_every >= 1, f"checkpoint_every must be at least 1, got {self.checkpoint_every}")
        _require(self.log_every >= 1, f"log_every must be at least 1, got {self.log_every}")
        _require(self.keep_checkpoints is None or self.keep_checkpoints >= 1,
                 f"keep_checkpoints must be at least 1 (null keeps every step_*.pt), got {self.keep_checkpoints}")
        _require(self.workers >= 0, f"workers must be >= 0, got {self.workers}")
        _require(self.device == "auto" or self.device == "cpu" or self.device.split(":")[0] == "cuda",
                 f"device must be auto, cpu, cuda or cuda:N, got {self.device!r}")


@dataclass(frozen=True)
class TrainConfig:
    """A whole training config: the shared sections and the task's own (plain mappings)."""

    task: str = "lmseg"
    run: RunConfig = field(default_factory=RunConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    model: Mapping[str, Any] = field(default_factory=dict)
    data: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Plain data (the form of ``config.yaml`` and of the checkpoint's ``train_config``)."""
        return _plain(dataclasses.asdict(self))


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


# (section or None for the top level, key) in the older LMSeg layout -> (section, key) now
_MOVED: tuple[tuple[tuple[str | None, str], tuple[str | None, str]], ...] = (
    ((None, "model_overrides"), ("model", "overrides")),
    ((None, "clip_weights"), ("model", "clip_weights")),
    ((None, "sam_weights"), ("model", "sam_weights")),
    (("optim", "clip_lr_mult"), ("model", "clip_lr_mult")),
    (("optim", "max_steps"), (None, "max_steps")),
    (("data", "workers"), (None, "workers")),
)


def translate_lmseg_layout(raw: Mapping[str, Any], *, announce: bool = False) -> dict[str, Any]:
    """The older LMSeg layout (see the module docstring) in the current one; other data unchanged.

    ``announce``: log which keys were moved (for a user's file; saved configs are translated quietly).
    """
    raw = {k: dict(v) if isinstance(v, Mapping) else v for k, v in raw.items()}
    moved = []
    if isinstance(raw.get("model"), str):
        raw["model"] = {"preset": raw["model"]}
        moved.append("model -> model.preset")
    for (old_section, old_key), (new_section, new_key) in _MOVED:
        source = raw if old_section is None else raw.get(old_section)
        if not isinstance(source, dict) or old_key not in source:
            continue
        target = raw if new_section is None else raw.setdefault(new_section, {})
        if not isinstance(target, dict):
            raise LmsegError(f"{new_section} must be a mapping")
        target[new_key] = source.pop(old_key)
        moved.append(f"{old_section + '.' if old_section else ''}{old_key} -> {new_section or 'run'}.{new_key}")
    if moved and announce:
        log.info("older LMSeg config layout read as: %s", ", ".join(moved))
    return raw


def config_from_data(raw: Any, *, where: str) -> TrainConfig:
    """A :class:`TrainConfig` from plain data (unknown keys, wrong types and bad values are errors)."""
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        raise LmsegError(f"{where}: expected a mapping, got {type(raw).__name__}")
    raw = translate_lmseg_layout(raw)
    run_fields = {f.name for f in dataclasses.fields(RunConfig)}
    top_run = {k: raw.pop(k) for k in list(raw) if k in run_fields}
    section = raw.pop("run", None) or {}
    if not isinstance(section, Mapping):
        raise LmsegError(f"{where}: run must be a mapping")
    twice = sorted(set(top_run) & set(section))
    if twice:
        raise LmsegError(f"{where}: {', '.join(twice)} given both at the top level and in run:")
    for name in ("model", "data"):
        if not isinstance(raw.get(name, {}), Mapping):
            raise LmsegError(f"{where}: {name} must be a mapping of the task's settings")
    return override_dataclass(TrainConfig(), {**raw, "run": {**top_run, **section}}, where=where)


def load_train_config(path: str | Path, overrides: Sequence[str] = ()) -> TrainConfig:
    """Read a YAML file; ``overrides`` are ``--set`` items (``optim.lr=1e-4``, ``max_steps=100``).

    Raises:
        LmsegError: missing, empty or invalid file, a config that names neither a ``task`` nor
            a ``model`` (it would train the default task's default model on its default data),
            bad override, unknown key, wrong type or value.
    """
    import yaml

    try:
        raw = yaml.safe_load(Path(path).read_text())
    except FileNotFoundError:
        raise LmsegError(f"config file {path} does not exist") from None
    except IsADirectoryError:
        raise LmsegError(f"config file {path} is a folder, not a YAML file") from None
    except yaml.YAMLError as exc:
        raise LmsegError(f"config file {path} is not valid YAML: {exc}") from None
    if raw is None:
        raise LmsegError(f"{path} is empty; a training config names its task and model (see configs/)")
    if not isinstance(raw, Mapping):
        raise LmsegError(f"{path}: expected a mapping, got {type(raw).__name__}")
    changes = parse_overrides(overrides, flag="--set")
    merged = merge_nested(translate_lmseg_layout(raw, announce=True), translate_lmseg_layout(changes))
    if "task" not in merged and "model" not in merged:
        raise LmsegError(f"{path} names no task and no model; give task: (lmseg, mrovseg, mgca, ...) and its model: "
                         "and data: sections, as the files in configs/ do")
    return config_from_data(merged, where=str(path))
