"""LMSeg's named segmenters: the variants table and the one builder behind them.

>>> import lmseg
>>> seg = lmseg.create_segmenter("lmseg_vitb16", checkpoint="lmseg_vitb16.pt", sam="sam_vit_b")
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from lmseg.errors import LmsegError
from lmseg.models.building import Variant, Weights, segmenters, variant_model, variant_settings
from lmseg.models.lmseg.config import InferenceConfig, get_config
from lmseg.models.lmseg.factory import FORMAT, model_for_checkpoint
from lmseg.models.lmseg.predictor import LMSegPredictor
from lmseg.models.presets import catseg_inference
from lmseg.text.table import TableInput, open_attribute_table

__all__ = ["SEGMENTERS", "VARIANTS"]

_TRAINED = """LMSeg with CLIP {clip} and {sam}.

Args:
    checkpoint: a trained LMSeg checkpoint (``pipelines.train`` output); required.
    clip: not used (the checkpoint holds the fine-tuned CLIP); passing it is an error.
    sam: {sam} weights: {sam_weights} or a file path.
    device: ``"cpu"`` or ``"cuda"``.
    attribute_table: a stage-1 attribute table of the vocabulary (:mod:`lmseg.text.table`; None:
        templates only).
    inference: the test protocol (default: short side 640, windows of the model's input size,
        overlap 1/3, plus a global view): an :class:`InferenceConfig`, or a mapping of its
        fields to replace (``{{"short_side": 512}}``).
    benchmark: start from CAT-Seg's published protocol and class list for this benchmark
        (``"ade150"``, ... see :mod:`lmseg.models.presets`); ``inference`` fields apply on top.
"""

_SAM1 = {"sam": "SAM ViT-B", "sam_weights": '``"sam_vit_b"`` (downloaded once, checksummed)'}
_SAM21 = {"sam": "SAM 2.1 Hiera-L", "sam_weights": '``"sam2.1_hiera_large"`` (the official file, downloaded once), '
                                                    '``"facebook/sam2.1-hiera-large"`` (the hub)'}

VARIANTS: dict[str, Variant] = {
    "lmseg_vitb16": Variant("lmseg_vitb16", weights=("checkpoint", "clip", "sam"),
                            train="configs/lmseg_vitb16_cocostuff.yaml",
                            doc=_TRAINED.format(clip="ViT-B/16 (384 input)", **_SAM1)),
    "lmseg_vitl14": Variant("lmseg_vitl14", weights=("checkpoint", "clip", "sam"),
                            train="configs/lmseg_vitl14_cocostuff.yaml",
                            doc=_TRAINED.format(clip="ViT-L/14 at 336", **_SAM1)),
    "lmseg_vitb16_sam21": Variant("lmseg_vitb16_sam21", weights=("checkpoint", "clip", "sam"),
                                  train="configs/lmseg_vitb16_sam21_cocostuff.yaml",
                                  doc=_TRAINED.format(clip="ViT-B/16 (384 input)", **_SAM21) + """
    Not published: SAM 2.1's image_embed (Hiera-L, 1024 square input) is fused instead of SAM's.
"""),
    "lmseg_tiny": Variant("lmseg_tiny", seeded=True, settings={"short_side": 96}, doc="""A tiny LMSeg
        (``lmseg-tiny-ViT`` CLIP, tiny SAM, 64-px windows) for tests and pipeline tests.

        With no checkpoint every weight is random (seeded by ``seed``): its outputs are
        MEANINGLESS. It exercises the real code paths in a fraction of a second. Default
        protocol: short side 96, windows of 64 with overlap 1/3 plus the global view."""),
    "lmseg_tiny_sam21": Variant("lmseg_tiny_sam21", seeded=True, settings={"short_side": 96}, doc="""lmseg_tiny
        fusing a reduced random SAM 2.1 (``sam2.1_test_tiny`` at 128 px) instead of the tiny SAM,
        for tests. With no checkpoint every weight is random (seeded by ``seed``): MEANINGLESS
        outputs."""),
}


def _build(name: str, variant: Variant, *, checkpoint: Weights = None, clip: Weights = None, sam: Weights = None,
           seed: int = 0, device: str | torch.device = "cpu",
           attribute_table: TableInput = None,
           inference: InferenceConfig | Mapping[str, Any] | None = None,
           benchmark: str | None = None) -> LMSegPredictor:
    settings = variant_settings(variant, InferenceConfig(), inference, benchmark, catseg_inference,
                                where="LMSeg inference config")
    settings.check_window(get_config(variant.config).input_size)  # bad settings fail before any model loads
    if clip is not None:
        raise LmsegError(f"{name}: the checkpoint already holds the fine-tuned CLIP weights; do not pass clip=")
    table = open_attribute_table(attribute_table)
    model = variant_model(name, variant, FORMAT, checkpoint, seed, device=device,
                          build=lambda config: model_for_checkpoint(config, sam=sam))
    return LMSegPredictor(model, inference=settings, attribute_table=table)


SEGMENTERS = segmenters(VARIANTS, _build)
