"""Reading checkpoint files safely and loading them strictly into a model.

* :func:`load_torch_file` is the one reader of ``torch.save`` files (model, training and
  backbone checkpoints): ``weights_only=True`` always; a file that names Python objects (a
  pickled module, a function to call) is refused as such, and any other file it cannot read
  is reported as corrupt or not a checkpoint, in one line (never with PyTorch's advice to turn
  ``weights_only`` off, which would let the file run code). How ``torch.load`` fails on damaged
  bytes is not a stable set of exceptions (``IndexError``, ``KeyError``, ``UnicodeDecodeError``,
  ``SafetensorError`` for a ``.safetensors`` name in torch 2.15, ...), so every failure of the
  read is caught, and torch's warnings about the file are silenced.
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
import pickletools
import re
import warnings
import zipfile
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn

from lmseg.errors import LmsegError

_WRAPPER_KEYS = ("state_dict", "model", "module")
#: The Python object a refused pickle names, in torch's "Weights only load failed" message
#: ("Unsupported global: GLOBAL torch.nn.Linear ...", "unsupported GLOBAL posix.system ...").
_GLOBAL = re.compile(r"GLOBAL ([\w.]+)", re.IGNORECASE)
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
        except (SafetensorError, OSError, ValueError, MemoryError, OverflowError) as exc:
            raise LmsegError(f"cannot read {path} as a safetensors file ({_first_line(exc)}); it is damaged or "
                             "not a safetensors file: download or copy it again") from None
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
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. "Detected pickle protocol 54": about the file, said below
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        named = _GLOBAL.search(str(exc))
        found = named.group(1) if named else _pickled_global(path) if "Weights only load failed" in str(exc) else None
        if found:
            raise LmsegError(
                f"{path} is not a plain {what}: it holds Python objects ({found}) that lmseg does not load (only "
                "tensors, numbers, strings and containers are read, so that no code in the file can run); if you "
                "trust it, re-save it as a state dict"
            ) from None
        raise LmsegError(_corrupt(path, what)) from None
    except Exception:  # noqa: BLE001 - any failure to read damaged bytes (see the module docstring)
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


def _pickled_global(path: Path) -> str | None:
    """The first Python object (``module.name``) the pickle of a file names other than torch's
    own tensor machinery, read with :func:`pickletools.genops` (which parses opcodes and runs
    nothing); None for anything else.

    For pickles that torch's safe loader refuses before reaching their first global (a newer
    protocol's opcode: ``pickle.dump(obj, f)`` or ``torch.save(obj, f, pickle_protocol=4)``).
    The pickle is the file itself or, in a ``torch.save`` zip archive, its ``data.pkl``.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            member = next(n for n in archive.namelist() if n.endswith("data.pkl"))
            with archive.open(member) as file:
                return _first_global(file)
    except Exception:  # noqa: BLE001 - not a readable zip: the file itself is the pickle
        pass
    try:
        with open(path, "rb") as file:
            return _first_global(file)
    except OSError:
        return None


def _first_global(file) -> str | None:
    strings: list[str] = []
    try:
        for opcode, arg, _ in pickletools.genops(file):
            if opcode.name in ("GLOBAL", "INST", "STACK_GLOBAL"):
                name = str(arg).replace(" ", ".") if arg is not None else ".".join(strings[-2:])
                if not name.startswith(("torch.", "collections.OrderedDict")):
                    return name
            if isinstance(arg, str):
                strings.append(arg)
    except Exception:  # noqa: BLE001 - not a valid pickle: damaged bytes
        return None
    return None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _first(items: list[str]) -> str:
    shown = ", ".join(items[:_SHOW])
    return shown + (", ..." if len(items) > _SHOW else "")


def _is_torchscript(path: Path) -> bool:
    try:
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
    except Exception:  # noqa: BLE001 - not a readable zip (damaged names raise UnicodeDecodeError, ...)
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
