"""Building MGCA models, and their model checkpoints.

A model checkpoint (:class:`~lmseg.models.building.CheckpointFormat` ``"mgca"``, version 1)::

    {"format": "mgca", "format_version": 1, "config": {...MGCAConfig fields...},
     "state_dict": the MGCAModel's state dict (CLIP towers, dense head, group tokens)}

A training checkpoint of the shared trainer holds one under ``"model"``; it is accepted
wherever a model checkpoint is.
"""

from __future__ import annotations

import torch

from lmseg.models.building import CheckpointFormat, Weights, dense_clip
from lmseg.models.mgca.config import MGCAConfig, config_from_dict
from lmseg.models.mgca.model import MGCAModel


def build_model(config: MGCAConfig, *, clip: Weights = None, device: str | torch.device = "cpu") -> MGCAModel:
    """Build an MGCA model from CLIP weights (new parts initialised; eval mode).

    Args:
        config: the architecture.
        clip: open_clip pretrained tag (``"openai"``), a CLIP checkpoint file, or None (random
            weights: tests and the tiny model only).
        device: where the model goes.
    """
    dense = dense_clip(config.clip_model, clip, file_quick_gelu=config.clip_quick_gelu)
    return MGCAModel(config, dense).to(device).eval()


FORMAT = CheckpointFormat("mgca", 1, "MGCA", read_config=config_from_dict)
save_model = FORMAT.save  #: write a model checkpoint atomically
