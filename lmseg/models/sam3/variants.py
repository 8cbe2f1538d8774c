"""sam3's named segmenters: the variants table and the one builder behind them.

>>> import lmseg
>>> seg = lmseg.create_segmenter("sam3", weights="facebook/sam3")   # gated: accept the licence on the hub first
>>> seg.predict("photo.jpg", ["person", "dog", "sky"]).label_map
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import torch

from lmseg.errors import LmsegError
from lmseg.models.building import Variant, Weights, seeded, segmenters, variant_settings
from lmseg.models.presets import sam3_inference
from lmseg.models.sam3.config import SAM3_MODELS, Sam3Config
from lmseg.models.sam3.model import Sam3Semantic
from lmseg.models.sam3.predictor import Sam3Predictor

__all__ = ["SEGMENTERS", "VARIANTS"]

VARIANTS: dict[str, Variant] = {
    "sam3": Variant("sam3", weights=("weights", "download"), doc="""SAM 3 as a training-free semantic segmenter.

    Every class name (each synonym; attribute phrases with ``attribute_table``) is a text
    prompt; the image is encoded once and the prompts are batched; the masks, scores and
    semantic maps become one label map by the rule of :mod:`lmseg.models.sam3.config`.

    Args:
        weights: ``"sam3"`` or ``"facebook/sam3"`` (the official checkpoint, gated on the
            Hugging Face hub: accept its licence there, then ``hf auth login`` or ``HF_TOKEN``;
            the local Hugging Face cache is used first) or the path of ``sam3.pt``. Required.
        image_size: SAM 3's square input side (default 1008, as released; a multiple of 14).
        config: the rule's settings: a :class:`~lmseg.models.sam3.config.Sam3Config` or a
            mapping of fields to replace (``{"prompt_pooling": "mean"}``).
        benchmark: a preset (``"ade150"``, ``"voc21"``, ... :func:`lmseg.models.presets.sam3_inference`).
        device: default CUDA if available, else CPU.
        attribute_table: a stage-1 attribute table of the vocabulary (or None).
        download: allow the download (None: unless ``LMSEG_OFFLINE`` / ``HF_HUB_OFFLINE``).

    Raises:
        LmsegError: no weights, no access to them (one message saying how to get it), a
            checkpoint that does not fit, bad settings.
    """),
    "sam3_tiny": Variant("sam3_tiny", weights=(), seeded=True, doc="""sam3 on a tiny RANDOM SAM 3 (112-pixel
        input, 2-block ViT and text encoder, 1-layer DETR encoder and decoder, 16 queries;
        21M parameters), for tests and plumbing demos. Its outputs are meaningless.

        Every step of the real method runs (the ``sam3`` package's own model and forward);
        only the sizes differ. Weights are random from ``seed`` (the same seed gives the
        same model). CPU unless ``device`` says otherwise."""),
}


def _build(name: str, variant: Variant, *, weights: Weights = None, image_size: int | None = None,
           config: Sam3Config | Mapping[str, Any] | None = None, benchmark: str | None = None, seed: int = 0,
           device: str | torch.device | None = None, attribute_table: str | os.PathLike[str] | Mapping | None = None,
           download: bool | None = None) -> Sam3Predictor:
    from lmseg.backbones.sam3 import create_sam3

    settings = variant_settings(variant, Sam3Config(), config, benchmark, sam3_inference, where="sam3 config")
    spec = SAM3_MODELS[variant.config]
    size = spec.image_size if image_size is None else image_size
    if variant.seeded:
        dev = torch.device(device if device is not None else "cpu")
        detector = seeded(seed, lambda: create_sam3(spec.model, weights=None, image_size=size))
    else:
        if weights is None:
            raise LmsegError(f"{name} needs the SAM 3 weights: pass weights='facebook/sam3' (gated on the Hugging "
                             "Face hub: request access at https://huggingface.co/facebook/sam3, then `hf auth login` "
                             "or HF_TOKEN) or the path of sam3.pt")
        dev = torch.device(device if device is not None else "cuda" if torch.cuda.is_available() else "cpu")
        detector = create_sam3(spec.model, weights=weights, image_size=size, download=download)
    model = Sam3Semantic(detector.to(dev), settings).eval()
    return Sam3Predictor(model, device=dev, attribute_table=attribute_table, variant=name)


SEGMENTERS = segmenters(VARIANTS, _build)
