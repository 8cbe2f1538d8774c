"""Building MROVSeg models, and their model checkpoints.

A model checkpoint (:class:`~lmseg.models.building.CheckpointFormat` ``"mrovseg"``, version 1)::

    {"format": "mrovseg", "format_version": 1, "config": {...MROVSegConfig fields...},
     "state_dict": the whole model's state dict}

(the whole model: CLIP, frozen or not, travels with the head so a checkpoint is self-contained).
A training checkpoint holding one under ``"model"`` is accepted wherever a model checkpoint is.
"""

from __future__ import annotations

import torch

from lmseg.errors import LmsegError
from lmseg.models.building import CheckpointFormat, Weights, dense_clip
from lmseg.models.mrovseg.config import MROVSegConfig, config_from_dict
from lmseg.models.mrovseg.model import MROVSegModel


def build_model(config: MROVSegConfig, *, clip: Weights = None, device: str | torch.device = "cpu") -> MROVSegModel:
    """An MROVSeg model with CLIP weights ``clip`` (open_clip tag, file, or None: random) and a
    randomly initialised adapter and decoder (eval mode).

    Raises:
        LmsegError: unknown CLIP model or tag, missing or mismatching weights.
    """
    dense = dense_clip(config.clip_model, clip, file_quick_gelu=config.clip_quick_gelu)
    if max(config.taps) > dense.num_layers:
        raise LmsegError(f"{config.name}: tap {max(config.taps)} is deeper than the {dense.num_layers} blocks of "
                         f"{config.clip_model}")
    return MROVSegModel(config, dense).to(device).eval()


FORMAT = CheckpointFormat("mrovseg", 1, "MROVSeg", read_config=config_from_dict)
save_model = FORMAT.save  #: write a model checkpoint atomically
