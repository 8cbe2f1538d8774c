"""Trident's named segmenters: the variants table and the one builder behind them.

>>> import lmseg
>>> seg = lmseg.create_segmenter("trident_vitb16", clip="openai", dino="dino_vitb16", sam="sam_vit_b")
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from lmseg.models.building import Variant, Weights, seeded, segmenters, variant_settings
from lmseg.models.presets import trident_inference
from lmseg.models.trident.config import TridentConfig, get_backbones
from lmseg.models.trident.factory import build_model, build_tiny_model
from lmseg.models.trident.predictor import TridentPredictor

__all__ = ["SEGMENTERS", "VARIANTS"]

#: The weight arguments of the published variants (the tiny one takes none).
_PUBLISHED = ("clip", "dino", "sam", "sam_model", "half", "clip_quick_gelu", "download")

_DOC = """Trident with {clip}, DINO ViT-B/16 and SAM (ViT-B by default).

Args:
    clip: {tag!r} (open_clip fetches it) or a CLIP checkpoint file ({activation}, see
        ``clip_quick_gelu``).
    dino: ``"dino_vitb16"`` (official file), ``"timm"`` (timm's hub weights) or a file.
    sam: ``"sam_vit_b"`` (official file, checksummed) or a file; must fit ``sam_model``.
    sam_model: ``"vit_b"``, ``"vit_l"`` or ``"vit_h"``.
    config: the constants: a :class:`TridentConfig`, or a mapping of fields to replace in
        the base config or in the ``benchmark`` preset (``{{"stride": 112}}``; nested
        ``{{"refinement": {{"enabled": True}}}}``). Default: the base config.
    benchmark: a preset name (``"ade150"``, ``"voc21"``, ... see
        :func:`lmseg.models.presets.trident_inference`).
    device: default CUDA if available, else CPU.
    half: fp16 encoders (default: on CUDA only, as the public runs).
    clip_quick_gelu: the activation of a CLIP checkpoint file (default: {activation}).
    download: allow downloads of known files (None: unless ``LMSEG_OFFLINE``).

Raises:
    LmsegError: weights not given, not found, not downloadable or not fitting (one error
        naming every problem), or a bad preset.
"""

VARIANTS: dict[str, Variant] = {
    "trident_vitb16": Variant("trident_vitb16", weights=_PUBLISHED,
                              doc=_DOC.format(clip="OpenAI CLIP ViT-B/16", tag="openai", activation="QuickGELU")),
    "trident_vith14": Variant("trident_vith14", weights=_PUBLISHED,
                              doc=_DOC.format(clip="OpenCLIP ViT-H/14 (LAION-2B)", tag="laion2b_s32b_b79k",
                                              activation="GELU")),
    "trident_tiny": Variant("trident_tiny", weights=(), seeded=True,
                            settings={"short_side": 96, "window": 64, "stride": 32, "window_batch": 8},
                            doc="""Trident on tiny RANDOM backbones, for tests and plumbing demos.
        Its outputs are meaningless.

        All weights are random from ``seed`` (the same seed gives the same model); every step
        of the real method runs, only the sizes differ (default settings: short side 96,
        64-pixel windows with stride 32; a ``config`` mapping replaces fields of them). CPU
        and fp32 unless ``device`` says otherwise."""),
}


def _build(name: str, variant: Variant, *, clip: Weights = None, dino: Weights = None, sam: Weights = None,
           sam_model: str = "vit_b", config: TridentConfig | Mapping[str, Any] | None = None,
           benchmark: str | None = None, seed: int = 0, device: str | torch.device | None = None,
           half: bool | None = None, clip_quick_gelu: bool | None = None,
           download: bool | None = None) -> TridentPredictor:
    settings = variant_settings(variant, TridentConfig(), config, benchmark, trident_inference, where="Trident config")
    backbones = get_backbones(variant.config)
    if variant.seeded:
        dev = torch.device(device if device is not None else "cpu")
        model = seeded(seed, lambda: build_tiny_model(backbones, settings, device=dev))
    else:
        dev = torch.device(device if device is not None else "cuda" if torch.cuda.is_available() else "cpu")
        model = build_model(backbones, settings, clip=clip, dino=dino, sam=sam, sam_model=sam_model, device=dev,
                            half=dev.type == "cuda" if half is None else half, clip_quick_gelu=clip_quick_gelu,
                            download=download)
    return TridentPredictor(model, device=dev)


SEGMENTERS = segmenters(VARIANTS, _build)
