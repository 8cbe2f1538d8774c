"""Train LMSeg: ``python -m pipelines.train --config configs/lmseg_vitb16_cocostuff.yaml``.

CAT-Seg's protocol by default (SEEDS.md): COCO-Stuff-171 (``lmseg.data``, layouts in
``lmseg/data/coco.py``: ``<root>/coco-stuff/images/train2017`` + ``annotations_detectron2/
train2017``, or the detectron2 / mmseg layouts), 80k steps, batch 4, AdamW lr 2e-4, weight
decay 1e-4, linear warm-up then cosine decay, 384 crops, CLIP image-tower attention at 0.01x
lr, the rest of CLIP and all of SAM frozen. Mixed precision (bfloat16 autocast) on GPU.

* The YAML file fills a frozen :class:`TrainConfig` (unknown keys are errors); the resolved
  config is written to ``<output_dir>/config.yaml``.
* Every ``checkpoint_every`` steps (and at the end) ``<output_dir>/checkpoints/step_XXXXXXX.pt``
  and ``last.pt`` are written atomically: model (a model checkpoint usable by the predictor,
  see :mod:`lmseg.models.lmseg.factory`), optimiser, scheduler, step, RNG states. Running the
  same command again resumes from ``last.pt``; ``--resume PATH`` resumes from a given one.
  Resumption is exact: the data of step ``t`` is a pure function of (seed, t) (sample order
  and augmentation are drawn from generators seeded by the global sample counter), so a
  resumed run sees the same batches and reproduces the same losses.
* Loss, learning rates and the fusion weight w are logged to stdout and
  ``<output_dir>/metrics.jsonl``.
* Under ``torchrun`` (``RANK`` set) it runs DDP: rank ``r`` takes the samples
  ``(t * world + r) * batch + j``; only rank 0 logs and writes checkpoints. ``batch_size`` is
  per process.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import math
import os
import random
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from lmseg.config_overrides import override_dataclass
from lmseg.errors import LmsegError

log = logging.getLogger("lmseg.pipelines.train")  # under "lmseg": shown at INFO by pipelines.cli


@dataclass(frozen=True)
class DataConfig:
    """Training data.

    Attributes:
        dataset: a name of :func:`lmseg.data.available_datasets` (``cocostuff171``).
        root: the datasets root (holding ``coco-stuff/`` etc.).
        split: the training split.
        layout: a layout name or ``auto``.
        base_short_side: images are resized so their short side is ``base_short_side * s``,
            ``s`` uniform in ``scale_range``; then a random crop of the model's input size
            (padded with ignore where the image is smaller) and a random horizontal flip.
        scale_range: see above.
        workers: data-loader worker processes.
        attribute_table: a stage-1 Parquet table for the dataset's vocabulary (None: templates).
    """

    dataset: str = "cocostuff171"
    root: str = "data"
    split: str = "train2017"
    layout: str = "auto"
    base_short_side: int = 512
    scale_range: tuple[float, float] = (0.5, 2.0)
    workers: int = 4
    attribute_table: str | None = None


@dataclass(frozen=True)
class OptimConfig:
    """Optimiser and schedule (CAT-Seg's values by default).

    ``batch_size`` is per process; ``grad_clip`` is a max global norm of the trained parameters
    (None: no clipping); ``amp`` enables bfloat16 autocast on CUDA (ignored on the CPU).
    """

    lr: float = 2e-4
    weight_decay: float = 1e-4
    clip_lr_mult: float = 0.01
    warmup_steps: int = 1500
    max_steps: int = 80_000
    batch_size: int = 4
    grad_clip: float | None = None
    amp: bool = True


@dataclass(frozen=True)
class TrainConfig:
    """A training run.

    Attributes:
        model: a preset of :data:`lmseg.models.lmseg.LMSEG_CONFIGS`.
        model_overrides: LMSegConfig fields to change (e.g. ``prompt_pooling: mean``).
        clip_weights: open_clip tag (``openai``) or CLIP checkpoint file; None = random.
        sam_weights: known SAM name (``sam_vit_b``) or file; None = random (must be None for tiny).
        output_dir: where config, metrics and checkpoints go.
        seed: seeds initialisation, sample order and augmentation.
        checkpoint_every / log_every: in steps.
        keep_checkpoints: how many ``step_*.pt`` files to keep (``last.pt`` is always kept).
        device: ``auto`` (CUDA if available), ``cpu`` or ``cuda``.
    """

    model: str = "lmseg_vitb16"
    model_overrides: tuple[tuple[str, Any], ...] = ()
    clip_weights: str | None = "openai"
    sam_weights: str | None = "sam_vit_b"
    output_dir: str = "runs/lmseg_vitb16"
    seed: int = 0
    checkpoint_every: int = 5000
    log_every: int = 20
    keep_checkpoints: int = 3
    device: str = "auto"
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["model_overrides"] = {k: list(v) if isinstance(v, tuple) else v for k, v in self.model_overrides}
        d["data"]["scale_range"] = list(self.data.scale_range)
        return d


def _config_from_data(data: Any, where: str) -> TrainConfig:
    """A :class:`TrainConfig` from the YAML data (unknown keys and bad values are errors)."""
    if data is not None and not isinstance(data, dict):
        raise LmsegError(f"{where}: expected a mapping, got {type(data).__name__}")
    data = dict(data or {})
    if "model_overrides" in data:
        overrides = data["model_overrides"]
        if not isinstance(overrides, dict):
            raise LmsegError(f"{where}.model_overrides must be a mapping")
        data["model_overrides"] = tuple(
            sorted((str(k), tuple(v) if isinstance(v, list) else v) for k, v in overrides.items())
        )
    return override_dataclass(TrainConfig(), data, where=where)


def load_config(path: str | Path, overrides: list[str] = ()) -> TrainConfig:
    """Read a YAML file into a :class:`TrainConfig`; ``overrides`` are ``a.b=value`` (YAML values)."""
    import yaml

    try:
        raw = yaml.safe_load(Path(path).read_text()) or {}
    except FileNotFoundError:
        raise LmsegError(f"config file {path} does not exist") from None
    except yaml.YAMLError as exc:
        raise LmsegError(f"config file {path} is not valid YAML: {exc}") from None
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep:
            raise LmsegError(f"override {item!r} must look like key=value (e.g. optim.max_steps=100)")
        node = raw
        *parents, leaf = key.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = yaml.safe_load(value)
    return _config_from_data(raw, str(path))


# ---------------------------------------------------------------- data


class TrainSamples:
    """Map-style dataset indexed by the global sample counter ``k`` (deterministic per ``k``).

    Sample ``k`` is image ``perm_e[k % L]`` of epoch ``e = k // L`` (``perm_e`` drawn from
    ``(seed, e)``), augmented with a generator seeded by ``(seed, k)``.
    """

    def __init__(self, dataset: Any, *, crop: int, base_short_side: int, scale_range: tuple[float, float],
                 seed: int, ignore_index: int) -> None:
        self.dataset = dataset
        self.crop = crop
        self.base = base_short_side
        self.scale_range = scale_range
        self.seed = seed
        self.ignore = ignore_index
        self._perm: dict[int, np.ndarray] = {}

    def __len__(self) -> int:  # nominal; the sampler is infinite
        return 2**62

    def index_of(self, k: int) -> int:
        n = len(self.dataset)
        epoch = k // n
        if epoch not in self._perm:
            self._perm = {epoch: np.random.default_rng([self.seed, 0, epoch]).permutation(n)}
        return int(self._perm[epoch][k % n])

    def __getitem__(self, k: int):
        import torch
        from PIL import Image

        sample = self.dataset[self.index_of(k)]
        rng = np.random.default_rng([self.seed, 1, k])
        image, label = sample.image, sample.label.astype(np.int64)
        h, w = label.shape
        short = self.base * rng.uniform(*self.scale_range)
        scale = short / min(h, w)
        nh, nw = max(1, int(round(h * scale))), max(1, int(round(w * scale)))
        image = np.asarray(Image.fromarray(image).resize((nw, nh), Image.BILINEAR))
        label = np.asarray(Image.fromarray(label.astype(np.int32)).resize((nw, nh), Image.NEAREST)).astype(np.int64)
        c = self.crop
        ph, pw = max(0, c - nh), max(0, c - nw)
        if ph or pw:
            image = np.pad(image, ((0, ph), (0, pw), (0, 0)))
            label = np.pad(label, ((0, ph), (0, pw)), constant_values=self.ignore)
        y0 = int(rng.integers(0, label.shape[0] - c + 1))
        x0 = int(rng.integers(0, label.shape[1] - c + 1))
        image, label = image[y0:y0 + c, x0:x0 + c], label[y0:y0 + c, x0:x0 + c]
        if rng.random() < 0.5:
            image, label = image[:, ::-1], label[:, ::-1]
        x = torch.from_numpy(np.array(image, copy=True)).permute(2, 0, 1).float() / 255.0
        return x, torch.from_numpy(np.array(label, copy=True))


class StepSampler:
    """Infinite sampler: for step ``t >= start``, rank ``r``, sample counters ``(t*world+r)*B + j``."""

    def __init__(self, start_step: int, batch: int, rank: int, world: int) -> None:
        self.start, self.batch, self.rank, self.world = start_step, batch, rank, world

    def __iter__(self) -> Iterator[int]:
        t = self.start
        while True:
            base = (t * self.world + self.rank) * self.batch
            yield from range(base, base + self.batch)
            t += 1


def lr_factor(step: int, warmup: int, total: int) -> float:
    """Linear warm-up from ~0 to 1 over ``warmup`` steps, then cosine decay to 0 at ``total``."""
    if warmup > 0 and step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return 0.5 * (1.0 + math.cos(math.pi * progress))


# ---------------------------------------------------------------- checkpoints


def _rng_state() -> dict[str, Any]:
    import torch

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


def _set_rng_state(state: dict[str, Any]) -> None:
    import torch

    torch.set_rng_state(state["torch"])
    name, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_training_checkpoint(path: Path, *, model, optimizer, scheduler, step: int, config: TrainConfig) -> None:
    """Write a training checkpoint atomically (temporary file, fsync, rename)."""
    import torch

    from lmseg.models.lmseg.factory import model_state

    state = {
        "format": "lmseg-train",
        "format_version": 1,
        "model": model_state(model),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "step": step,
        "rng": _rng_state(),
        "train_config": json.dumps(config.to_dict()),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        torch.save(state, tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def read_training_checkpoint(path: Path) -> dict[str, Any]:
    import torch

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001
        raise LmsegError(f"cannot read training checkpoint {path}: {exc!s:.300}") from None
    if not isinstance(state, dict) or state.get("format") != "lmseg-train":
        raise LmsegError(f"{path} is not an LMSeg training checkpoint (format 'lmseg-train')")
    return state


# ---------------------------------------------------------------- training


def _setup_distributed() -> tuple[int, int, int]:
    if "RANK" not in os.environ:
        return 0, 1, 0
    import torch
    import torch.distributed as dist

    backend = "nccl" if torch.cuda.is_available() else "gloo"
    dist.init_process_group(backend)
    local = int(os.environ.get("LOCAL_RANK", 0))
    if torch.cuda.is_available():
        torch.cuda.set_device(local)
    return dist.get_rank(), dist.get_world_size(), local


def train(config: TrainConfig, *, resume: str | Path | None = None) -> dict[str, Any]:
    """Run (or resume) training; returns a summary (last step, last loss, output paths)."""
    import torch
    from torch.utils.data import DataLoader

    from lmseg.attributes.reader import load_attributes
    from lmseg.data import open_dataset
    from lmseg.models.lmseg.config import config_from_dict, get_config
    from lmseg.models.lmseg.factory import build_model
    from lmseg.models.lmseg.model import segmentation_loss
    from lmseg.text.attributes import build_prompts
    from lmseg.text.cache import EmbeddingCache, clip_text_fingerprint, table_sha256

    rank, world, local = _setup_distributed()
    if config.device == "auto":
        device = torch.device(f"cuda:{local}" if torch.cuda.is_available() else "cpu")
    else:
        device = torch.device(config.device if config.device != "cuda" else f"cuda:{local}")
    model_cfg = config_from_dict(dict(config.model_overrides), base=get_config(config.model))
    out = Path(config.output_dir)
    ckpt_dir = out / "checkpoints"
    if rank == 0:
        out.mkdir(parents=True, exist_ok=True)
        import yaml

        (out / "config.yaml").write_text(yaml.safe_dump(config.to_dict(), sort_keys=False))

    dataset = open_dataset(config.data.dataset, config.data.root, split=config.data.split, layout=config.data.layout)
    torch.manual_seed(config.seed)
    model = build_model(model_cfg, clip=config.clip_weights, sam=config.sam_weights, device=device)

    attrs = None
    if config.data.attribute_table:
        attrs = load_attributes(dataset.vocabulary.name, "", path=config.data.attribute_table)
    prompts = build_prompts(dataset.vocabulary, attrs, pooling=model_cfg.prompt_pooling)
    text = EmbeddingCache().get_or_compute(
        prompts, model.clip.encode_text, model_name=model.clip.model_name,
        weights_id=clip_text_fingerprint(model.clip.model), table_id=table_sha256(attrs),
    ).to(device)

    head_params = [p for p in model.head.parameters() if p.requires_grad]
    clip_params = [p for p in model.clip_attention_parameters() if p.requires_grad]
    groups = [{"params": head_params, "lr": config.optim.lr, "name": "head"}]
    if clip_params:
        groups.append({"params": clip_params, "lr": config.optim.lr * config.optim.clip_lr_mult, "name": "clip_attn"})
    optimizer = torch.optim.AdamW(groups, lr=config.optim.lr, weight_decay=config.optim.weight_decay)
    total, warm = config.optim.max_steps, config.optim.warmup_steps
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_factor(s, warm, total))

    start = 0
    if resume is None and (ckpt_dir / "last.pt").exists():
        resume = ckpt_dir / "last.pt"
    if resume is not None:
        state = read_training_checkpoint(Path(resume))
        from lmseg.backbones.loading import load_strict

        load_strict(model.clip.model, state["model"]["clip"], source=str(resume), arch="CLIP")
        load_strict(model.head, state["model"]["head"], source=str(resume), arch="LMSeg head")
        if "sam" in state["model"]:
            load_strict(model.sam.sam, state["model"]["sam"], source=str(resume), arch="tiny SAM")
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        _set_rng_state(state["rng"])
        start = int(state["step"])
        if rank == 0:
            log.info("resumed from %s at step %d", resume, start)

    train_model = model
    if world > 1:
        from torch.nn.parallel import DistributedDataParallel as DDP

        train_model = DDP(model, device_ids=[local] if device.type == "cuda" else None)

    samples = TrainSamples(dataset, crop=model_cfg.input_size, base_short_side=config.data.base_short_side,
                           scale_range=config.data.scale_range, seed=config.seed, ignore_index=dataset.ignore_index)
    loader = DataLoader(samples, batch_size=config.optim.batch_size,
                        sampler=StepSampler(start, config.optim.batch_size, rank, world),
                        num_workers=config.data.workers, pin_memory=device.type == "cuda",
                        persistent_workers=config.data.workers > 0)
    use_amp = config.optim.amp and device.type == "cuda"
    metrics = (out / "metrics.jsonl").open("a") if rank == 0 else None
    model.train()
    last_loss = float("nan")
    step = start
    t0 = time.time()
    batches = iter(loader)
    try:
        while step < total:
            images, labels = next(batches)
            images, labels = images.to(device, non_blocking=True), labels.to(device, non_blocking=True)
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=use_amp):
                logits = train_model(images, text)
            loss = segmentation_loss(logits.float(), labels, ignore_index=dataset.ignore_index)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if config.optim.grad_clip:
                torch.nn.utils.clip_grad_norm_(head_params + clip_params, config.optim.grad_clip)
            optimizer.step()
            scheduler.step()
            step += 1
            logged = loss.detach()
            if world > 1:  # the mean over processes, so the log is the loss of the global batch
                import torch.distributed as dist

                dist.all_reduce(logged)
                logged = logged / world
            last_loss = float(logged)
            if not math.isfinite(last_loss):
                raise LmsegError(f"the loss became {last_loss} at step {step}; lower the learning rate")
            if rank == 0 and (step % config.log_every == 0 or step == total or step == start + 1):
                record = {"step": step, "loss": last_loss, "lr": optimizer.param_groups[0]["lr"],
                          "lr_clip": optimizer.param_groups[-1]["lr"], "w": model.fusion_weight,
                          "elapsed_s": round(time.time() - t0, 3)}
                metrics.write(json.dumps(record) + "\n")
                metrics.flush()
                log.info("step %d loss %.5f lr %.3g lr_clip %.3g w %.4f", step, last_loss, record["lr"],
                         record["lr_clip"], record["w"])
            if rank == 0 and (step % config.checkpoint_every == 0 or step == total):
                path = ckpt_dir / f"step_{step:07d}.pt"
                save_training_checkpoint(path, model=model, optimizer=optimizer, scheduler=scheduler, step=step,
                                         config=config)
                save_training_checkpoint(ckpt_dir / "last.pt", model=model, optimizer=optimizer,
                                         scheduler=scheduler, step=step, config=config)
                old = sorted(ckpt_dir.glob("step_*.pt"))[: -config.keep_checkpoints or None]
                for p in old if config.keep_checkpoints > 0 else []:
                    p.unlink(missing_ok=True)
    finally:
        if metrics is not None:
            metrics.close()
        if world > 1:
            import torch.distributed as dist

            dist.destroy_process_group()
    return {"step": step, "loss": last_loss, "output_dir": str(out), "w": model.fusion_weight}


def main(argv: list[str] | None = None) -> int:
    from pipelines.cli import run_command

    parser = argparse.ArgumentParser(prog="python -m pipelines.train", description=__doc__.split("\n")[0])
    parser.add_argument("--config", required=True, help="YAML file (see configs/)")
    parser.add_argument("--resume", default=None,
                        help="training checkpoint to resume from (default: <output_dir>/checkpoints/last.pt)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config value, e.g. --set optim.max_steps=100 (repeatable)")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logs of every library")

    def run(args: argparse.Namespace) -> int:
        summary = train(load_config(args.config, args.set), resume=args.resume)
        print(json.dumps(summary))
        return 0

    return run_command(parser, run, argv,
                       interrupted="the last checkpoint is kept; run the same command again to resume from it")


if __name__ == "__main__":
    sys.exit(main())
