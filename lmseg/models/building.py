"""What every model package's builders share: named presets, layered inference settings, and
the tiny models that are either loaded from a checkpoint or built with seeded random weights."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import torch

from lmseg.config_overrides import override_dataclass
from lmseg.errors import LmsegError

T = TypeVar("T")
M = TypeVar("M", bound=torch.nn.Module)


def named_preset(presets: Mapping[str, T], name: str, *, what: str) -> T:
    """``presets[name]``.

    Raises:
        LmsegError: unknown name; the message says ``what`` it is and lists the known ones.
    """
    if name not in presets:
        raise LmsegError(f"unknown {what} {name!r}; known: {', '.join(presets)}")
    return presets[name]


def layered_settings(base: T, preset: Mapping[str, Any] | None, settings: T | Mapping[str, Any] | None, *,
                     preset_where: str, where: str) -> T:
    """``base``, then a benchmark ``preset``'s fields, then the caller's ``settings`` on top
    (each checked by :func:`~lmseg.config_overrides.override_dataclass`, before any model loads)."""
    return override_dataclass(override_dataclass(base, preset, where=preset_where), settings, where=where)


def loaded_or_seeded(checkpoint: object | None, seed: int, load: Callable[[], M], build: Callable[[], M]) -> M:
    """``load()`` when a checkpoint is given, else ``build()`` under ``torch.manual_seed(seed)``
    without touching the caller's random state (the tiny models' random weights)."""
    if checkpoint is not None:
        return load()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build()
