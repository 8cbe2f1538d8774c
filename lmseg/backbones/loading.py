"""Reading checkpoint files safely and loading them strictly into a model.

* :func:`load_torch_file` is the one reader of ``torch.save`` files (model, training and
  backbone checkpoints): ``weights_only=True`` always, and a file it cannot read is reported as
  corrupt or not a checkpoint (never with PyTorch's advice to turn ``weights_only`` off, which
  would let the file run code).
* :func:`read_state_dict` reads ``.safetensors`` files with safetensors and everything else with
  ``torch.load(map_location="cpu", weights_only=True)`` (no arbitrary code runs while loading).
  A ``{"state_dict": ...}`` or ``{"model": ...}`` wrapper and a DistributedDataParallel
  ``module.`` prefix are removed.
* :func:`load_strict` loads a state dict into a module only if it fits exactly: every missing
  key, unexpected key and shape mismatch is reported in one :class:`CheckpointMismatchError`
  that names the file, the architecture and the first offending keys, instead of PyTorch's
  long ``RuntimeError`` (or, worse, a silently half-loaded model).
"""

from __future__ import annotations

import os
import pickle
import zipfile
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn

from lmseg.errors import LmsegError

_WRAPPER_KEYS = ("state_dict", "model", "module")
_SHOW = 5


class CheckpointMismatchError(LmsegError):
    """A checkpoint's keys or shapes do not fit the model they are loaded into."""


def read_state_dict(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """Read a checkpoint file into a flat ``name -> tensor`` dict on the CPU.

    Args:
        path: a ``.safetensors`` file, or a file written by ``torch.save`` holding a state dict
            (possibly inside a ``state_dict``/``model`` entry).

    Raises:
        LmsegError: the file is missing, unreadable, a TorchScript archive, or holds no state dict.
    """
    path = Path(path)
    if not path.is_file():
        raise LmsegError(f"checkpoint file not found: {path}")
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            obj: object = load_file(str(path), device="cpu")
        except (SafetensorError, OSError, ValueError) as exc:
            raise LmsegError(f"cannot read {path} as a safetensors file: {exc}") from exc
    else:
        obj = load_torch_file(path, what="checkpoint")
    return _as_state_dict(obj, path)


def load_torch_file(path: str | os.PathLike[str], *, what: str = "checkpoint") -> object:
    """``torch.load(path, map_location="cpu", weights_only=True)`` with clear errors.

    Args:
        path: the file.
        what: what the file should be, for messages (``"LMSeg checkpoint"``).

    Raises:
        LmsegError: the file is missing, a folder, a TorchScript archive, holds Python objects
            other than tensors and plain containers, or is corrupt / not a PyTorch file at all.
    """
    path = Path(path)
    if not path.is_file():
        raise LmsegError(f"{what} not found: {path}" + (" (it is a folder)" if path.is_dir() else ""))
    if _is_torchscript(path):
        raise LmsegError(
            f"{path} is a TorchScript archive (like OpenAI's original CLIP .pt files), not a state dict; "
            "lmseg loads state dicts only (weights_only=True). Use the matching open_clip pretrained tag, "
            "or the same weights as a state dict (e.g. the open_clip_model.safetensors of its hub page)."
        )
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if "Weights only load failed" in str(exc) and "Unsupported global" in str(exc):
            raise LmsegError(
                f"{path} is not a plain {what}: it holds Python objects that lmseg does not load (only tensors, "
                "numbers, strings and containers are read, so that no code in the file can run); re-save it "
                "as a state dict"
            ) from None
        raise LmsegError(_corrupt(path, what)) from None
    except (RuntimeError, EOFError, OSError, ValueError, zipfile.BadZipFile, UnicodeDecodeError):
        raise LmsegError(_corrupt(path, what)) from None


def require_format(obj: object, path: str | os.PathLike[str], fmt: str, version: int, *, what: str,
                   otherwise: str) -> dict:
    """``obj`` if it is a dict of ``{"format": fmt, "format_version": version, ...}``.

    Raises:
        LmsegError: ``"<path> is not <what>: <otherwise>"`` for another format, or a message
            naming both versions for another format version.
    """
    if not isinstance(obj, dict) or obj.get("format") != fmt:
        raise LmsegError(f"{path} is not {what}: {otherwise}")
    if obj.get("format_version") != version:
        raise LmsegError(f"{path} is {what} of format version {obj.get('format_version')}; "
                         f"this lmseg reads version {version}")
    return obj


def _corrupt(path: Path, what: str) -> str:
    return (f"{path} is corrupt or not a {what} (PyTorch cannot read it: truncated, damaged, or another kind of "
            "file); download or copy it again, or pick the right file")


def load_strict(module: nn.Module, state_dict: dict[str, torch.Tensor], *, source: str, arch: str) -> None:
    """Load ``state_dict`` into ``module``, refusing anything that does not fit exactly.

    Args:
        module: the model, built with the intended architecture.
        state_dict: the weights, as from :func:`read_state_dict`.
        source: where the weights came from (a path), for the message.
        arch: the architecture's name (e.g. ``"SAM vit_b"``), for the message.

    Raises:
        CheckpointMismatchError: there are missing keys, unexpected keys or shape mismatches.
    """
    check_fit(module.state_dict(), state_dict, source=source, arch=arch)
    module.load_state_dict(state_dict, strict=True)


def check_fit(expected: Mapping[str, torch.Tensor], state_dict: Mapping[str, torch.Tensor], *, source: str,
              arch: str) -> None:
    """Raise :class:`CheckpointMismatchError` unless ``state_dict`` has exactly ``expected``'s keys and shapes."""
    missing = [k for k in expected if k not in state_dict]
    unexpected = [k for k in state_dict if k not in expected]
    mismatched = [
        f"{k}: checkpoint {tuple(state_dict[k].shape)} vs model {tuple(v.shape)}"
        for k, v in expected.items()
        if k in state_dict and tuple(state_dict[k].shape) != tuple(v.shape)
    ]
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing key(s) ({_first(missing)})")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected key(s) ({_first(unexpected)})")
    if mismatched:
        problems.append(f"{len(mismatched)} shape mismatch(es) ({_first(mismatched)})")
    if problems:
        raise CheckpointMismatchError(
            f"{source} does not fit {arch}: " + "; ".join(problems) + ". Is it a checkpoint of another model or "
            "size (for example ViT-H weights for a ViT-B model)? Pick the architecture that matches the file."
        )


def _first(items: list[str]) -> str:
    shown = ", ".join(items[:_SHOW])
    return shown + (", ..." if len(items) > _SHOW else "")


def _is_torchscript(path: Path) -> bool:
    try:
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
    except (zipfile.BadZipFile, OSError):
        return False
    return any(n.endswith("/constants.pkl") for n in names) and any("/code/" in n for n in names)


def _as_state_dict(obj: object, path: Path) -> dict[str, torch.Tensor]:
    if isinstance(obj, dict) and not any(isinstance(v, torch.Tensor) for v in obj.values()):
        for key in _WRAPPER_KEYS:
            if isinstance(obj.get(key), dict):
                obj = obj[key]
                break
    if not isinstance(obj, dict) or not obj:
        raise LmsegError(f"{path} holds no state dict (found {type(obj).__name__})")
    bad = [k for k, v in obj.items() if not isinstance(k, str) or not isinstance(v, torch.Tensor)]
    if bad:
        raise LmsegError(f"{path} is not a plain state dict: entries that are not tensors: {_first([str(b) for b in bad])}")
    if all(k.startswith("module.") for k in obj):
        obj = {k[len("module."):]: v for k, v in obj.items()}
    return obj
