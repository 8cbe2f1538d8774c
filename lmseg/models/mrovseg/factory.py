"""Building MROVSeg models, and saving/loading model checkpoints.

A model checkpoint is a ``torch.save`` dict readable with ``weights_only=True``::

    {"format": "mrovseg", "format_version": 1, "architecture": "mrovseg_vitb16",
     "config": {...MROVSegConfig fields...}, "state_dict": the whole model's state dict}

(the whole model: CLIP, frozen or not, travels with the head so a checkpoint is self-contained).
A training checkpoint holding one under ``"model"`` is accepted wherever a model checkpoint is.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from lmseg.backbones.clip_factory import create_dense_clip
from lmseg.backbones.loading import load_strict, load_torch_file, require_format
from lmseg.errors import LmsegError
from lmseg.io.atomic import atomic_path
from lmseg.models.mrovseg.config import MROVSegConfig, config_from_dict
from lmseg.models.mrovseg.model import MROVSegModel

FORMAT = "mrovseg"
FORMAT_VERSION = 1

WeightsSpec = str | os.PathLike[str] | None


def build_model(config: MROVSegConfig, *, clip: WeightsSpec = None, device: str | torch.device = "cpu"
                ) -> MROVSegModel:
    """An MROVSeg model with CLIP weights ``clip`` (open_clip tag, file, or None: random) and a
    randomly initialised adapter and decoder (eval mode).

    Raises:
        LmsegError: unknown CLIP model or tag, missing or mismatching weights.
    """
    is_file = clip is not None and Path(os.fspath(clip)).expanduser().is_file()
    dense = create_dense_clip(config.clip_model, pretrained=clip,
                              quick_gelu=config.clip_quick_gelu if (clip is None or is_file) else None)
    if max(config.taps) > dense.num_layers:
        raise LmsegError(f"{config.name}: tap {max(config.taps)} is deeper than the {dense.num_layers} blocks of "
                         f"{config.clip_model}")
    return MROVSegModel(config, dense).to(device).eval()


def model_state(model: MROVSegModel) -> dict[str, Any]:
    """The checkpoint dict of ``model`` (see the module docstring); tensors on the CPU."""
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "architecture": model.config.name,
        "config": model.config.to_dict(),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
    }


def save_model(model: MROVSegModel, path: str | os.PathLike[str]) -> Path:
    """Write a model checkpoint atomically (:func:`lmseg.io.atomic.atomic_path`)."""
    with atomic_path(path) as tmp:
        torch.save(model_state(model), tmp)
    return Path(path)


def read_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read an MROVSeg model checkpoint (or the ``"model"`` part of a training checkpoint)
    through the project's one safe reader (:func:`lmseg.backbones.loading.load_torch_file`).

    Raises:
        LmsegError: missing/unreadable file, or a checkpoint of another architecture (the
            message says which one and what to use instead).
    """
    path = Path(path).expanduser()
    obj = load_torch_file(path, what="MROVSeg checkpoint")
    if isinstance(obj, dict) and isinstance(obj.get("model"), dict) and "format" in obj["model"]:
        obj = obj["model"]
    return require_format(obj, path, FORMAT, FORMAT_VERSION, what="an MROVSeg checkpoint",
                          otherwise=f"it looks like {_describe(obj)}")


def load_model(checkpoint: str | os.PathLike[str], *, expected: str | None = None,
               device: str | torch.device = "cpu") -> MROVSegModel:
    """Build a trained MROVSeg model from its checkpoint (strict loading; eval mode).

    Args:
        checkpoint: a model or training checkpoint file.
        expected: the preset the caller wants (``"mrovseg_vitb16"``); a checkpoint of another
            one is refused with a message naming the right segmenter.
        device: where the model goes.
    """
    state = read_checkpoint(checkpoint)
    config = config_from_dict(state["config"])
    if expected is not None and config.name != expected:
        raise LmsegError(f"{checkpoint} is a checkpoint of {config.name!r} ({config.clip_model}), not {expected!r}; "
                         f"use create_segmenter({config.name!r}, ...)")
    model = build_model(config, clip=None)
    load_strict(model, state["state_dict"], source=str(checkpoint), arch=f"MROVSeg {config.name}")
    return model.to(device).eval()


def _describe(obj: object) -> str:
    if not isinstance(obj, dict):
        return f"a {type(obj).__name__}, not a checkpoint dict"
    inner = obj.get("model") if isinstance(obj.get("model"), dict) else obj
    if "format" in inner:
        fmt = inner["format"]
        name = (inner.get("config") or {}).get("name") if isinstance(inner.get("config"), dict) else None
        hint = f"; use create_segmenter({name!r}, checkpoint=...)" if name else ""
        return f"a checkpoint of format {fmt!r}{hint}"
    keys = [str(k) for k in inner]
    if any(k.startswith(("visual.", "transformer.")) for k in keys):
        return "a CLIP checkpoint (visual.*); MROVSeg needs its own trained checkpoint (train with pipelines.train)"
    return f"a dict with keys {', '.join(keys[:5])}{', ...' if len(keys) > 5 else ''}"
