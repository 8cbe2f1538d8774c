"""Building LMSeg models, and saving/loading model checkpoints.

A model checkpoint is a ``torch.save`` dict readable with ``weights_only=True``::

    {"format": "lmseg", "format_version": 1, "config": {...LMSegConfig fields...},
     "clip": state dict of the CLIP model (its attention is fine-tuned),
     "head": state dict of LMSegHead,
     "sam": state dict of the SAM model, only for sam_model="tiny" (no official file exists)}

SAM is frozen, so the official SAM file is loaded separately and not copied into every
checkpoint. Training checkpoints (:mod:`lmseg.engine.checkpoints`) hold one of these under ``"model"``
and are accepted wherever a model checkpoint is.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from lmseg.backbones.clip_factory import create_dense_clip
from lmseg.backbones.loading import load_strict, load_torch_file, require_format
from lmseg.backbones.sam import SamEncoder, create_sam_encoder
from lmseg.errors import LmsegError
from lmseg.io.atomic import atomic_path
from lmseg.models.lmseg.config import LMSegConfig, config_from_dict
from lmseg.models.lmseg.model import LMSegModel

FORMAT = "lmseg"
FORMAT_VERSION = 1

WeightsSpec = str | os.PathLike[str] | None


def build_model(
    config: LMSegConfig, *, clip: WeightsSpec = None, sam: WeightsSpec = None, device: str | torch.device = "cpu"
) -> LMSegModel:
    """Build an LMSeg model with backbone weights (head randomly initialised; eval mode).

    Args:
        config: the architecture.
        clip: open_clip pretrained tag (``"openai"``), a CLIP checkpoint file, or None (random).
        sam: a SAM checkpoint file or known name (``"sam_vit_b"``), or None (random). Must be
            None for ``sam_model="tiny"``.
        device: where the model goes.

    Raises:
        LmsegError: unknown backbone, missing or mismatching weights.
    """
    is_file = clip is not None and Path(os.fspath(clip)).expanduser().is_file()
    dense = create_dense_clip(
        config.clip_model, pretrained=clip,
        quick_gelu=config.clip_quick_gelu if (clip is None or is_file) else None,
    )
    if config.sam_model == "tiny":
        if sam is not None:
            raise LmsegError("sam_model='tiny' is a random test encoder; it takes no SAM weights")
        from lmseg.backbones.sam_tiny import build_tiny_sam

        encoder = SamEncoder(build_tiny_sam(config.sam_tiny_size))
    else:
        encoder = create_sam_encoder(config.sam_model, weights=sam)
    return LMSegModel(config, dense, encoder).to(device).eval()


def model_state(model: LMSegModel) -> dict[str, Any]:
    """The checkpoint dict of ``model`` (see the module docstring); tensors on the CPU."""
    def cpu(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {k: v.detach().cpu() for k, v in sd.items()}

    state: dict[str, Any] = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "config": model.config.to_dict(),
        "clip": cpu(model.clip.model.state_dict()),
        "head": cpu(model.head.state_dict()),
    }
    if model.config.sam_model == "tiny":
        state["sam"] = cpu(model.sam.sam.state_dict())
    return state


def save_model(model: LMSegModel, path: str | os.PathLike[str]) -> Path:
    """Write a model checkpoint atomically (temporary file, then rename)."""
    path = Path(path)
    with atomic_path(path) as tmp:
        torch.save(model_state(model), tmp)
    return path


def read_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read an LMSeg model checkpoint (or the model part of a training checkpoint).

    Raises:
        LmsegError: missing/unreadable file, or a checkpoint of something else (the message
            says what it looks like).
    """
    path = Path(path).expanduser()
    obj = load_torch_file(path, what="checkpoint of LMSeg")
    if isinstance(obj, dict) and obj.get("format") == "lmseg-train" and isinstance(obj.get("model"), dict):
        obj = obj["model"]
    return require_format(obj, path, FORMAT, FORMAT_VERSION, what="an LMSeg checkpoint",
                          otherwise=f"it looks like {_describe(obj)}")


def load_model(
    checkpoint: str | os.PathLike[str],
    *,
    expected: str | None = None,
    sam: WeightsSpec = None,
    device: str | torch.device = "cpu",
) -> LMSegModel:
    """Build a trained LMSeg model from its checkpoint (strict loading; eval mode).

    Args:
        checkpoint: a model or training checkpoint file.
        expected: the config name the caller wants (e.g. ``"lmseg_vitb16"``); a checkpoint of
            another configuration is refused with a message naming the right one.
        sam: the SAM weights (file or known name); required unless the checkpoint's SAM is ``tiny``.
        device: where the model goes.
    """
    state = read_checkpoint(checkpoint)
    config = config_from_dict(state["config"])
    if expected is not None and config.name != expected:
        raise LmsegError(
            f"{checkpoint} is a checkpoint of {config.name!r} ({config.clip_model} + SAM {config.sam_model}), "
            f"not {expected!r}; use create_segmenter({config.name!r}, ...)"
        )
    if config.sam_model != "tiny" and sam is None:
        raise LmsegError(
            f"{config.name} needs the SAM {config.sam_model} weights: pass sam='sam_{config.sam_model}' (downloaded "
            "once with a checksum) or the path of the official checkpoint file"
        )
    model = build_model(config, clip=None, sam=sam if config.sam_model != "tiny" else None)
    load_weights(model, state, source=str(checkpoint))
    return model.to(device).eval()


def load_weights(model: LMSegModel, state: dict[str, Any], *, source: str) -> None:
    """Load a checkpoint dict's CLIP, head (and tiny SAM) weights into ``model``, strictly.

    Raises:
        LmsegError: a part is missing or does not fit the model's architecture.
    """
    config = model.config
    load_strict(model.clip.model, state["clip"], source=source, arch=f"open_clip {config.clip_model}")
    load_strict(model.head, state["head"], source=source, arch=f"LMSeg head of {config.name}")
    if config.sam_model == "tiny":
        if "sam" not in state:
            raise LmsegError(f"{source} ({config.name}) lacks the weights of its tiny SAM encoder")
        load_strict(model.sam.sam, state["sam"], source=source, arch="tiny SAM")


def _describe(obj: object) -> str:
    if not isinstance(obj, dict):
        return f"a {type(obj).__name__}, not a checkpoint dict"
    keys = [str(k) for k in obj]
    if "format" in obj:
        return f"a checkpoint of format {obj['format']!r}"
    flat = keys
    for wrapper in ("state_dict", "model"):
        if isinstance(obj.get(wrapper), dict):
            flat = [str(k) for k in obj[wrapper]]
    if any(k.startswith("image_encoder.") for k in flat):
        return "a SAM checkpoint (image_encoder.*); pass it as sam=..."
    if any(k.startswith(("visual.", "transformer.")) for k in flat):
        return "a CLIP checkpoint (visual.*); LMSeg needs its own trained checkpoint (train with pipelines.train)"
    if any(k.startswith(("sem_seg_head.", "backbone.")) for k in flat):
        return "a detectron2 model (e.g. CAT-Seg); its weights do not fit LMSeg's modules"
    return f"a dict with keys {', '.join(flat[:5])}{', ...' if len(flat) > 5 else ''}"
