"""Building LMSeg models, and their model checkpoints.

A model checkpoint (:class:`~lmseg.models.building.CheckpointFormat` ``"lmseg"``, version 1)::

    {"format": "lmseg", "format_version": 1, "config": {...LMSegConfig fields...},
     "clip": state dict of the CLIP model (its attention is fine-tuned),
     "head": state dict of LMSegHead,
     "sam": state dict of the SAM side, only for the random test encoders (sam_model "tiny",
            "sam2.1_test_tiny", "sam3_test_tiny": no official file exists)}

SAM is frozen, so the official SAM file (SAM, SAM 2.1 or SAM 3) is loaded separately and not
copied into every checkpoint. Training checkpoints (:mod:`lmseg.engine.checkpoints`) hold one of these under ``"model"``
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
    return LMSegModel(config, dense, sam_side(config, sam)).to(device).eval()


#: The random SAM-side encoders of the tests (their weights live in LMSeg's checkpoints).
TEST_SAMS = ("tiny", "sam2.1_test_tiny", "sam3_test_tiny")


def sam_side(config: LMSegConfig, weights: Weights) -> nn.Module:
    """The SAM-side encoder of ``config.sam_model`` with ``weights`` (None: random).

    Raises:
        LmsegError: an unknown model, weights for a test encoder, missing or unfit weights.
    """
    name, size = config.sam_model, config.sam_image_size or None
    if name in TEST_SAMS and weights is not None:
        raise LmsegError(f"sam_model={name!r} is a random test encoder; it takes no SAM weights")
    if name == "tiny":
        from lmseg.backbones.sam_tiny import build_tiny_sam

        return SamEncoder(build_tiny_sam(config.sam_tiny_size))
    if name.startswith("sam2"):
        from lmseg.backbones.sam2 import create_sam2_encoder

        return create_sam2_encoder(name, weights=weights, image_size=size)
    if name.startswith("sam3"):
        from lmseg.backbones.sam3 import create_sam3_image_encoder

        return create_sam3_image_encoder(name, weights=weights, image_size=size)
    return create_sam_encoder(name, weights=weights)


def _parts(model: LMSegModel) -> dict[str, nn.Module]:
    parts = {"clip": model.clip.model, "head": model.head}
    name = model.config.sam_model
    if name in TEST_SAMS:
        parts["sam"] = {"tiny": lambda: model.sam.sam, "sam2.1_test_tiny": lambda: model.sam.model,
                        "sam3_test_tiny": lambda: model.sam.backbone}[name]()
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
    if config.sam_model in TEST_SAMS:
        return build_model(config)
    if sam is None:
        known = config.sam_model if config.sam_model.startswith("sam") else f"sam_{config.sam_model}"
        raise LmsegError(
            f"{config.name} needs the SAM {config.sam_model} weights: pass sam={known!r} "
            "(downloaded once) or the path of the official checkpoint file"
        )
    return build_model(config, sam=sam)
