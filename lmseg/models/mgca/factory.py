"""Building MGCA models, and their model checkpoints.

A model checkpoint is a ``torch.save`` dict readable with ``weights_only=True``::

    {"format": "mgca", "format_version": 1, "config": {...MGCAConfig fields...},
     "state_dict": the MGCAModel's state dict (CLIP towers, dense head, group tokens)}

A training checkpoint of the shared trainer holds one under ``"model"``; it is accepted
wherever a model checkpoint is.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from lmseg.backbones.clip_factory import create_dense_clip
from lmseg.backbones.loading import load_strict, load_torch_file
from lmseg.errors import LmsegError
from lmseg.models.mgca.config import MGCAConfig, config_from_dict
from lmseg.models.mgca.model import MGCAModel

FORMAT = "mgca"
FORMAT_VERSION = 1


def build_model(
    config: MGCAConfig, *, clip: str | os.PathLike[str] | None = None, device: str | torch.device = "cpu"
) -> MGCAModel:
    """Build an MGCA model from CLIP weights (new parts initialised; eval mode).

    Args:
        config: the architecture.
        clip: open_clip pretrained tag (``"openai"``), a CLIP checkpoint file, or None (random
            weights: tests and the tiny model only).
        device: where the model goes.
    """
    is_file = clip is not None and Path(os.fspath(clip)).expanduser().is_file()
    dense = create_dense_clip(
        config.clip_model, pretrained=clip, quick_gelu=config.clip_quick_gelu if (clip is None or is_file) else None
    )
    return MGCAModel(config, dense).to(device).eval()


def model_checkpoint(model: MGCAModel) -> dict[str, Any]:
    """The checkpoint dict of ``model`` (tensors on the CPU)."""
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "config": model.config.to_dict(),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
    }


def read_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read an MGCA model checkpoint (or the ``"model"`` part of a training checkpoint).

    Raises:
        LmsegError: missing or unreadable file, or a checkpoint of something else.
    """
    path = Path(path).expanduser()
    obj = load_torch_file(path, what="MGCA checkpoint")
    if isinstance(obj, dict) and isinstance(obj.get("model"), dict) and obj.get("format") != FORMAT:
        obj = obj["model"]
    if not isinstance(obj, dict) or obj.get("format") != FORMAT:
        found = obj.get("format") if isinstance(obj, dict) else type(obj).__name__
        raise LmsegError(f"{path} is not an MGCA checkpoint (format {found!r}); train one with "
                         "`python -m pipelines.train --config configs/mgca_tiny_captions.yaml`")
    if obj.get("format_version") != FORMAT_VERSION:
        raise LmsegError(f"{path} is an MGCA checkpoint of format version {obj.get('format_version')}; "
                         f"this lmseg reads version {FORMAT_VERSION}")
    return obj


def load_model(
    checkpoint: str | os.PathLike[str], *, expected: str | None = None, device: str | torch.device = "cpu"
) -> MGCAModel:
    """A trained MGCA model from its checkpoint (strict loading; eval mode).

    Raises:
        LmsegError: see :func:`read_checkpoint`; a checkpoint of another preset than
            ``expected`` (the message names the right one); weights that do not fit.
    """
    state = read_checkpoint(checkpoint)
    config = config_from_dict(state["config"])
    if expected is not None and config.name != expected:
        raise LmsegError(f"{checkpoint} is a checkpoint of {config.name!r}, not {expected!r}; "
                         f"use create_segmenter({config.name!r}, ...)")
    model = build_model(config)
    load_strict(model, state["state_dict"], source=str(checkpoint), arch=f"MGCA {config.name}")
    return model.to(device).eval()
