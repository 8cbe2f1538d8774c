"""Building Trident segmenters: the published ViT-B/16 and ViT-H/14 variants, and a tiny one for tests.

* :func:`create_trident` (``"trident_vitb16"``): OpenAI CLIP ViT-B/16, DINO ViT-B/16, SAM ViT-B.
* :func:`create_trident_vith14` (``"trident_vith14"``): OpenCLIP ViT-H/14 (LAION-2B), same DINO and SAM.
* :func:`create_trident_tiny` (``"trident_tiny"``): tiny random backbones; outputs are meaningless.

Weights are given explicitly: ``clip`` is an open_clip pretrained tag (open_clip downloads it)
or a checkpoint file; ``dino`` and ``sam`` are known names (downloaded once into lmseg's weights
cache with size/checksum checks where known) or files. All three problems are reported in one
:class:`~lmseg.errors.LmsegError`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from lmseg.config_overrides import override_dataclass
from lmseg.errors import LmsegError
from lmseg.models.trident.config import TridentConfig
from lmseg.models.trident.model import TridentModel
from lmseg.models.trident.predictor import TridentSegmenter
from lmseg.models.trident.presets import preset
from lmseg.text.table import TableInput, open_attribute_table

WeightSpec = str | os.PathLike[str] | None

#: What each variant needs: open_clip model, its default tag, QuickGELU for a weights file.
VARIANTS: dict[str, tuple[str, str, bool]] = {
    "trident_vitb16": ("ViT-B-16", "openai", True),
    "trident_vith14": ("ViT-H-14", "laion2b_s32b_b79k", False),
}
DINO_MODEL = "vit_base_patch16_224.dino"


def _default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


ConfigSpec = TridentConfig | Mapping[str, Any] | None


def _config(config: ConfigSpec, benchmark: str | None, default: TridentConfig) -> TridentConfig:
    """The settings: ``config`` itself, or ``default`` / the ``benchmark`` preset with the
    fields of a ``config`` mapping replaced (``{"stride": 112, "refinement": {"enabled": True}}``)."""
    if isinstance(config, TridentConfig) and benchmark is not None:
        raise LmsegError("pass either a TridentConfig or benchmark= (a mapping of overrides may go with benchmark=)")
    base = default
    if benchmark is not None:
        try:
            base = preset(benchmark)
        except KeyError as exc:
            raise LmsegError(str(exc.args[0])) from None
    return override_dataclass(base, config, where="Trident config")


def _build(
    variant: str,
    *,
    clip: WeightSpec,
    dino: WeightSpec,
    sam: WeightSpec,
    sam_model: str,
    config: ConfigSpec,
    benchmark: str | None,
    device: str | torch.device | None,
    half: bool | None,
    clip_quick_gelu: bool | None,
    download: bool | None,
    attribute_table: TableInput,
) -> TridentSegmenter:
    from lmseg.backbones.clip_factory import create_dense_clip
    from lmseg.backbones.dino import create_dense_dino
    from lmseg.backbones.sam import create_sam_encoder

    model_name, tag, file_quick = VARIANTS[variant]
    cfg = _config(config, benchmark, TridentConfig())
    table = open_attribute_table(attribute_table)  # a bad table fails before any weights load
    dev = torch.device(device) if device is not None else _default_device()
    use_half = (dev.type == "cuda") if half is None else half
    missing = [
        f"{arg}= (e.g. {example})"
        for arg, spec, example in (
            ("clip", clip, f"{tag!r}: open_clip downloads {model_name}/{tag}; or a checkpoint file"),
            ("dino", dino, "'dino_vitb16' (downloaded into lmseg's weights cache), 'timm', or a file"),
            ("sam", sam, "'sam_vit_b' (downloaded and checksummed into lmseg's weights cache), or a file"),
        )
        if spec is None
    ]
    if missing:
        raise LmsegError(f"{variant} needs weights for all three backbones; pass " + ", ".join(missing))
    problems: list[str] = []
    parts: dict[str, nn.Module] = {}
    is_file = Path(os.fspath(clip)).expanduser().is_file()
    quick = (clip_quick_gelu if clip_quick_gelu is not None else file_quick) if is_file else clip_quick_gelu
    for name, build in (
        ("sam", lambda: create_sam_encoder(sam_model, weights=sam, download=download)),
        ("dino", lambda: create_dense_dino(DINO_MODEL, weights=dino, interpolation_offset=0.1, download=download)),
        ("clip", lambda: create_dense_clip(model_name, pretrained=clip, quick_gelu=quick, interpolation_offset=0.1)),
    ):
        try:
            parts[name] = build()
        except LmsegError as exc:
            problems.append(f"{name}: {exc}")
    if problems:
        raise LmsegError(f"{variant}: could not load its weights:\n  " + "\n  ".join(problems))
    return _assemble(parts["clip"], parts["dino"], parts["sam"], cfg, dev, use_half, table)


def _assemble(clip, dino, sam, cfg: TridentConfig, device: torch.device, half: bool,
              attribute_table: TableInput) -> TridentSegmenter:
    """Move to ``device``; in half precision the encoders go fp16, SAM's prompt side stays fp32."""
    clip, dino, sam = clip.to(device), dino.to(device), sam.to(device)
    if half:
        if device.type != "cuda":
            raise LmsegError("half precision needs a CUDA device")
        clip.model.visual.half()
        dino.half()
        sam.sam.image_encoder.half()
    model = TridentModel(clip, dino, sam, cfg).eval()
    return TridentSegmenter(model, device=device, attribute_table=attribute_table)


def create_trident(
    *,
    clip: WeightSpec = None,
    dino: WeightSpec = None,
    sam: WeightSpec = None,
    sam_model: str = "vit_b",
    config: ConfigSpec = None,
    benchmark: str | None = None,
    device: str | torch.device | None = None,
    half: bool | None = None,
    clip_quick_gelu: bool | None = None,
    download: bool | None = None,
    attribute_table: TableInput = None,
) -> TridentSegmenter:
    """Trident with OpenAI CLIP ViT-B/16, DINO ViT-B/16 and SAM (ViT-B by default).

    Args:
        clip: ``"openai"`` (open_clip fetches it) or a CLIP ViT-B/16 checkpoint file (OpenAI
            weights: QuickGELU, see ``clip_quick_gelu``).
        dino: ``"dino_vitb16"`` (official file), ``"timm"`` (timm's hub weights) or a file.
        sam: ``"sam_vit_b"`` (official file, checksummed) or a file; must fit ``sam_model``.
        sam_model: ``"vit_b"``, ``"vit_l"`` or ``"vit_h"``.
        config: the constants: a :class:`TridentConfig`, or a mapping of fields to replace in
            the base config or in the ``benchmark`` preset (``{"stride": 112}``; nested
            ``{"refinement": {"enabled": True}}``). Default: the base config.
        benchmark: a preset name (``"ade150"``, ``"voc21"``, ... see :mod:`.presets`).
        device: default CUDA if available, else CPU.
        half: fp16 encoders (default: on CUDA only, as the public runs).
        clip_quick_gelu: the activation of a CLIP checkpoint file (default True for ViT-B/16).
        download: allow downloads of known files (None: unless ``LMSEG_OFFLINE``).
        attribute_table: a stage-1 attribute table (Parquet file or rows) of the vocabulary to
            segment: its sentences are blended into the queries (``config.attribute_weight``).

    Raises:
        LmsegError: weights not given, not found, not downloadable or not fitting (one error
            naming every problem), a bad preset, or an unreadable attribute table.
    """
    return _build(
        "trident_vitb16", clip=clip, dino=dino, sam=sam, sam_model=sam_model, config=config, benchmark=benchmark,
        device=device, half=half, clip_quick_gelu=clip_quick_gelu, download=download, attribute_table=attribute_table,
    )


def create_trident_vith14(
    *,
    clip: WeightSpec = None,
    dino: WeightSpec = None,
    sam: WeightSpec = None,
    sam_model: str = "vit_b",
    config: ConfigSpec = None,
    benchmark: str | None = None,
    device: str | torch.device | None = None,
    half: bool | None = None,
    clip_quick_gelu: bool | None = None,
    download: bool | None = None,
    attribute_table: TableInput = None,
) -> TridentSegmenter:
    """Trident with OpenCLIP ViT-H/14 (``clip="laion2b_s32b_b79k"`` or a file); otherwise as :func:`create_trident`.

    A ViT-H/14 file defaults to GELU (``clip_quick_gelu=False``), as the LAION weights.
    """
    return _build(
        "trident_vith14", clip=clip, dino=dino, sam=sam, sam_model=sam_model, config=config, benchmark=benchmark,
        device=device, half=half, clip_quick_gelu=clip_quick_gelu, download=download, attribute_table=attribute_table,
    )


#: The settings of :func:`create_trident_tiny`: small windows so that tiny inputs have several.
TINY_CONFIG = TridentConfig(short_side=96, window=64, stride=32, window_batch=8)


def create_trident_tiny(
    *,
    config: ConfigSpec = None,
    seed: int = 0,
    device: str | torch.device = "cpu",
    attribute_table: TableInput = None,
) -> TridentSegmenter:
    """Trident on tiny RANDOM backbones, for tests and plumbing demos. Its outputs are meaningless.

    CLIP is open_clip's ``lmseg-tiny-ViT`` (patch 16, width 48, 3 blocks, D=32), DINO a 2-block
    width-32 timm ViT with patch 16, SAM a 256-pixel 2-block encoder with a width-32 prompt side;
    all weights random from ``seed`` (the same seed gives the same model). Every step of the
    real method runs; only the sizes differ (default :data:`TINY_CONFIG`: short side 96,
    64-pixel windows with stride 32; a ``config`` mapping replaces fields of it). ``attribute_table``:
    as for :func:`create_trident`.
    """
    import timm

    from lmseg.backbones.clip_factory import create_dense_clip
    from lmseg.backbones.dino import DenseDINO
    from lmseg.backbones.sam import SamEncoder
    from lmseg.backbones.sam_tiny import build_tiny_sam

    cfg = _config(config, None, TINY_CONFIG)
    table = open_attribute_table(attribute_table)
    torch.manual_seed(seed)
    clip = create_dense_clip("lmseg-tiny-ViT", pretrained=None, interpolation_offset=0.1)
    vit = timm.create_model(
        "vit_base_patch16_224", pretrained=False, img_size=64, embed_dim=32, depth=2, num_heads=2, num_classes=0,
        dynamic_img_size=True,
    )
    dino = DenseDINO(vit, interpolation_offset=0.1).eval()
    sam = SamEncoder(build_tiny_sam(256, window_size=4, neck_channels=32, decoder_heads=2, iou_hidden=16,
                                    random_positions=True)).eval()
    return _assemble(clip, dino, sam, cfg, torch.device(device), False, table)
