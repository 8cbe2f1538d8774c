"""The one autocast rule of the predictors: which dtype the model runs in, on which device.

``amp`` (a predictor argument, recorded in its settings):

* ``True`` (the default): bfloat16 autocast on CUDA, none (float32) on the CPU;
* ``"bf16"`` / ``"fp16"``: that dtype on any device, the CPU included (what the precision
  test runs, ``tests/inference/test_precision.py``);
* ``False``: float32 everywhere.

Under autocast, matrix products and convolutions run in the low dtype. On CUDA, PyTorch keeps
softmax, normalisations and reductions in float32; its CPU autocast does not (given low-dtype
inputs they return the low dtype there). The predictors compute their own precision-sensitive
steps in float32 explicitly, outside autocast or with it disabled: LMSeg's linear class
attention (autocast would run its einsums in the low dtype), the logits before upsampling and
sigmoids, score maps, the softmax of class early rejection and every chunked softmax, Trident's
SAM affinity, every loss. ``tests/inference/test_precision.py`` lists where and bounds the
bfloat16 error of LMSeg and MROVSeg on the CPU.
"""

from __future__ import annotations

from contextlib import nullcontext
from typing import ContextManager

import torch

from lmseg.errors import LmsegError

__all__ = ["Amp", "autocast", "autocast_dtype"]

Amp = bool | str

_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def autocast_dtype(device: torch.device | str, amp: Amp) -> torch.dtype | None:
    """The autocast dtype of ``amp`` on ``device`` (None: float32).

    Raises:
        LmsegError: ``amp`` is not True, False, ``"bf16"`` or ``"fp16"``.
    """
    if isinstance(amp, bool):
        return torch.bfloat16 if amp and torch.device(device).type == "cuda" else None
    if amp not in _DTYPES:
        raise LmsegError(f"amp must be true, false, 'bf16' or 'fp16', got {amp!r}")
    return _DTYPES[amp]


def autocast(device: torch.device | str, amp: Amp) -> ContextManager[object]:
    """``torch.autocast`` for ``amp`` on ``device`` (a no-op context for float32)."""
    dtype = autocast_dtype(device, amp)
    if dtype is None:
        return nullcontext()
    return torch.autocast(torch.device(device).type, dtype=dtype)
