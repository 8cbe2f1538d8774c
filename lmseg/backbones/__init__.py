"""Vision backbones: dense CLIP features, the SAM image encoder, DINO; weights and loading.

Modules (import what you need; this package imports none of them eagerly, so that
``lmseg.backbones.weights`` works without loading open_clip or segment-anything):

* :mod:`~lmseg.backbones.clip`: :class:`DenseCLIP` (open_clip).
* :mod:`~lmseg.backbones.clip_factory`: :func:`create_dense_clip` (weights, QuickGELU).
* :mod:`~lmseg.backbones.sam`: :class:`SamEncoder`, :func:`create_sam_encoder` (segment-anything).
* :mod:`~lmseg.backbones.dino`: :class:`DenseDINO`, :func:`create_dense_dino` (timm).
* :mod:`~lmseg.backbones.dense_vit`: :class:`DenseViT`, :func:`create_dense_vit`: DINOv2, DINOv3,
  C-RADIO (timm).
* :mod:`~lmseg.backbones.sam2`: :class:`Sam2Encoder`, :func:`create_sam2_encoder` (SAM 2.1, sam2).
* :mod:`~lmseg.backbones.sam3`: :class:`Sam3Detector`, :func:`create_sam3` (SAM 3, sam3), built by
  :mod:`~lmseg.backbones.sam3_build`.
* :mod:`~lmseg.backbones.hub`: files from the Hugging Face hub (cache first, fast failures).
* :mod:`~lmseg.backbones.weights`: weight names, download with checksum, the weights cache.
* :mod:`~lmseg.backbones.loading`: reading checkpoints (``weights_only``) and strict loading.
* :mod:`~lmseg.backbones.pos_embed`: resizing positional embeddings.

The names above are also available from this package directly (loaded on first use).
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "DenseCLIP": "clip",
    "DenseCLIPOutput": "clip",
    "create_dense_clip": "clip_factory",
    "SamEncoder": "sam",
    "SamFeatures": "sam",
    "create_sam_encoder": "sam",
    "DenseDINO": "dino",
    "create_dense_dino": "dino",
    "DenseViT": "dense_vit",
    "create_dense_vit": "dense_vit",
    "Sam2Encoder": "sam2",
    "create_sam2_encoder": "sam2",
    "Sam3Detector": "sam3",
    "create_sam3": "sam3",
    "KNOWN_WEIGHTS": "weights",
    "KnownWeights": "weights",
    "resolve_weights": "weights",
    "read_state_dict": "loading",
    "load_strict": "loading",
    "CheckpointMismatchError": "loading",
    "interpolate_pos_embed": "pos_embed",
}

__all__ = tuple(sorted(_EXPORTS))


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value
