"""Building LMSeg models, and their model checkpoints.

A model checkpoint (:class:`~lmseg.models.building.CheckpointFormat` ``"lmseg"``, version 1)::

    {"format": "lmseg", "format_version": 1, "config": {...LMSegConfig fields...},
     "clip": state dict of the CLIP model (its attention is fine-tuned),
     "head": state dict of LMSegHead,
     "sam": state dict of the SAM model, only for sam_model="tiny" (no official file exists)}

SAM is frozen, so the official SAM file is loaded separately and not copied into every
checkpoint. Training checkpoints (:mod:`lmseg.engine.checkpoints`) hold one of these under ``"model"``
and are accepted wherever a model checkpoint is.
"""

from __future__ import annotations

import torch
from torch import nn

from lmseg.backbones.sam import SamEncoder, create_sam_encoder
from lmseg.errors import LmsegError
from lmseg.models.building import CheckpointFormat, Weights, dense_clip
from lmseg.models.lmseg.config import LMSegConfig, config_from_dict
from lmseg.models.lmseg.model import LMSegModel


def build_model(
    config: LMSegConfig, *, clip: Weights = None, sam: Weights = None, device: str | torch.device = "cpu"
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
    dense = dense_clip(config.clip_model, clip, file_quick_gelu=config.clip_quick_gelu)
    if config.sam_model == "tiny":
        if sam is not None:
            raise LmsegError("sam_model='tiny' is a random test encoder; it takes no SAM weights")
        from lmseg.backbones.sam_tiny import build_tiny_sam

        encoder = SamEncoder(build_tiny_sam(config.sam_tiny_size))
    else:
        encoder = create_sam_encoder(config.sam_model, weights=sam)
    return LMSegModel(config, dense, encoder).to(device).eval()


def _parts(model: LMSegModel) -> dict[str, nn.Module]:
    parts = {"clip": model.clip.model, "head": model.head}
    if model.config.sam_model == "tiny":
        parts["sam"] = model.sam.sam
    return parts


FORMAT = CheckpointFormat("lmseg", 1, "LMSeg", read_config=config_from_dict, parts=_parts)
save_model = FORMAT.save  #: write a model checkpoint atomically


def model_for_checkpoint(config: LMSegConfig, *, sam: Weights) -> LMSegModel:
    """The model an LMSeg checkpoint of ``config`` loads into (:meth:`FORMAT.load
    <lmseg.models.building.CheckpointFormat.load>`): the official SAM weights ``sam`` (a file or
    known name; a tiny SAM's weights are in the checkpoint), CLIP and the head to be loaded.

    Raises:
        LmsegError: ``sam`` missing for a model with an official SAM.
    """
    if config.sam_model == "tiny":
        return build_model(config)
    if sam is None:
        raise LmsegError(
            f"{config.name} needs the SAM {config.sam_model} weights: pass sam='sam_{config.sam_model}' "
            "(downloaded once with a checksum) or the path of the official checkpoint file"
        )
    return build_model(config, sam=sam)
