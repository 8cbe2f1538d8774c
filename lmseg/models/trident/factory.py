"""Building Trident models from their backbones (:data:`~lmseg.models.trident.config.TRIDENT_BACKBONES`).

* :func:`build_model`: the published backbones with their weights;
* :func:`build_tiny_model`: tiny random backbones (outputs meaningless);
* :func:`assemble`: three backbones -> a :class:`~lmseg.models.trident.model.TridentModel` on
  a device, in half precision if asked.

Weights are given explicitly: ``clip`` is an open_clip pretrained tag (open_clip downloads it)
or a checkpoint file; ``dino`` (the spatial backbone's: DINO, DINOv2, DINOv3 or C-RADIO) and
``sam`` are known names (downloaded once into lmseg's weights cache with size/checksum checks
where known; the 2026 backbones from the Hugging Face hub) or files; ``sam2`` the SAM 2.1
weights when the refinement uses SAM 2.1. All problems are reported in one
:class:`~lmseg.errors.LmsegError`. Trident is training-free: it has no checkpoint of its own.
"""

from __future__ import annotations

import torch
from torch import nn

from lmseg.errors import LmsegError
from lmseg.models.building import Weights, dense_clip
from lmseg.models.trident.config import TridentBackbones, TridentConfig
from lmseg.models.trident.model import TridentModel


def check_backbone_names(backbones: TridentBackbones, *, tiny: bool = False) -> None:
    """Refuse unknown spatial or refinement backbones before any model loads.

    Raises:
        LmsegError: naming the known ones.
    """
    from lmseg.backbones.dense_vit import VIT_BACKBONES
    from lmseg.backbones.sam2 import SAM2_MODELS

    spatial = ("dino", *VIT_BACKBONES)
    refine = ("sam", "sam2.1_test_tiny") if tiny else ("sam", *(m for m in SAM2_MODELS if m != "sam2.1_test_tiny"))
    if backbones.spatial_model not in spatial:
        raise LmsegError(f"{backbones.name}: unknown spatial_model {backbones.spatial_model!r}; choose one of "
                         + ", ".join(spatial))
    if backbones.refine_model not in refine:
        raise LmsegError(f"{backbones.name}: unknown refine_model {backbones.refine_model!r}; choose one of "
                         + ", ".join(refine))


def build_model(backbones: TridentBackbones, config: TridentConfig, *, clip: Weights, dino: Weights, sam: Weights,
                sam_model: str = "vit_b", sam2: Weights = None, device: torch.device, half: bool,
                clip_quick_gelu: bool | None = None, download: bool | None = None) -> TridentModel:
    """A Trident model with the variant's backbones and the given weights (see the module docstring).

    Raises:
        LmsegError: weights not given, not found, not downloadable or not fitting (one error
            naming every problem).
    """
    from lmseg.backbones.sam import create_sam_encoder

    check_backbone_names(backbones)
    name, tag = backbones.name, backbones.clip_tag
    spatial = backbones.spatial_model
    spatial_example = ("'dino_vitb16' (downloaded into lmseg's weights cache), 'timm', or a file" if spatial == "dino"
                       else f"'hub' (the {spatial} weights from the Hugging Face hub), or a file")
    wanted = [
        ("clip", clip, f"{tag!r}: open_clip downloads {backbones.clip_model}/{tag}; or a checkpoint file"),
        ("dino", dino, spatial_example),
        ("sam", sam, "'sam_vit_b' (downloaded and checksummed into lmseg's weights cache), or a file"),
    ]
    refine = backbones.refine_model
    if refine != "sam":
        wanted.append(("sam2", sam2, f"'{refine}' (the official file, downloaded once), or a file"))
    elif sam2 is not None:
        raise LmsegError(f"{name}: sam2= is for refine_model='sam2.1_...'; this model refines with its own SAM")
    missing = [f"{arg}= (e.g. {example})" for arg, spec, example in wanted if spec is None]
    if missing:
        raise LmsegError(f"{name} needs weights for all its backbones; pass " + ", ".join(missing))
    problems: list[str] = []
    parts: dict[str, nn.Module] = {}
    builds = [
        ("sam", lambda: create_sam_encoder(sam_model, weights=sam, download=download)),
        ("dino", lambda: _spatial(backbones, dino, download)),
        ("clip", lambda: dense_clip(backbones.clip_model, clip, file_quick_gelu=backbones.clip_quick_gelu,
                                    quick_gelu=clip_quick_gelu, interpolation_offset=0.1)),
    ]
    if refine != "sam":
        from lmseg.backbones.sam2 import create_sam2_encoder

        builds.append(("sam2", lambda: create_sam2_encoder(refine, weights=sam2, download=download)))
    for part, build in builds:
        try:
            parts[part] = build()
        except LmsegError as exc:
            problems.append(f"{part}: {exc}")
    if problems:
        raise LmsegError(f"{name}: could not load its weights:\n  " + "\n  ".join(problems))
    return assemble(parts["clip"], parts["dino"], parts["sam"], config, device, half, refiner=parts.get("sam2"))


def _spatial(backbones: TridentBackbones, weights: Weights, download: bool | None) -> nn.Module:
    """DINO as published (positional embedding by DINO's hub convention), or a 2026 backbone (timm's own sizing)."""
    if backbones.spatial_model == "dino":
        from lmseg.backbones.dino import create_dense_dino

        return create_dense_dino(backbones.dino_model, weights=weights, interpolation_offset=0.1, download=download)
    from lmseg.backbones.dense_vit import create_dense_vit

    return create_dense_vit(backbones.spatial_model, weights=weights, download=download)


def build_tiny_model(backbones: TridentBackbones, config: TridentConfig, *, device: torch.device) -> TridentModel:
    """Trident on tiny RANDOM backbones, for tests and plumbing demos (fp32). Its outputs are meaningless.

    CLIP is open_clip's ``lmseg-tiny-ViT`` (patch 16, width 48, 3 blocks, D=32), DINO a 2-block
    width-32 timm ViT with patch 16, SAM a 256-pixel 2-block encoder with a width-32 prompt side;
    the weights come from torch's global generator (seed it for a reproducible model). With
    another ``spatial_model`` the spatial backbone is that timm architecture reduced to 2 blocks
    of width 32 (a real DINOv2 / DINOv3 / C-RADIO forward); with ``refine_model=
    "sam2.1_test_tiny"`` the refinement prompts go to a reduced SAM 2.1 (1.4M parameters).
    """
    check_backbone_names(backbones, tiny=True)
    import timm

    from lmseg.backbones.clip_factory import create_dense_clip
    from lmseg.backbones.dino import DenseDINO
    from lmseg.backbones.sam import SamEncoder
    from lmseg.backbones.sam_tiny import build_tiny_sam

    clip = create_dense_clip(backbones.clip_model, pretrained=None, interpolation_offset=0.1)
    if backbones.spatial_model == "dino":
        vit = timm.create_model(
            backbones.dino_model, pretrained=False, img_size=64, embed_dim=32, depth=2, num_heads=2, num_classes=0,
            dynamic_img_size=True,
        )
        dino = DenseDINO(vit, interpolation_offset=0.1).eval()
    else:
        from lmseg.backbones.dense_vit import create_dense_vit

        dino = create_dense_vit(backbones.spatial_model, weights=None, embed_dim=32, depth=2, num_heads=2)
    sam = SamEncoder(build_tiny_sam(256, window_size=4, neck_channels=32, decoder_heads=2, iou_hidden=16,
                                    random_positions=True)).eval()
    refiner = None
    if backbones.refine_model != "sam":
        from lmseg.backbones.sam2 import create_sam2_encoder

        refiner = create_sam2_encoder(backbones.refine_model, weights=None)
    return assemble(clip, dino, sam, config, device, False, refiner=refiner)


def assemble(clip, dino, sam, config: TridentConfig, device: torch.device, half: bool,
             refiner: nn.Module | None = None) -> TridentModel:
    """The model on ``device`` (eval mode); in half precision the encoders go fp16, SAM's prompt side stays fp32
    (a SAM 2.1 refiner stays fp32: its prompts run with the features it encodes)."""
    clip, dino, sam = clip.to(device), dino.to(device), sam.to(device)
    if half:
        if device.type != "cuda":
            raise LmsegError("half precision needs a CUDA device")
        clip.model.visual.half()
        dino.half()
        sam.sam.image_encoder.half()
    if refiner is not None:
        refiner = refiner.to(device)
    return TridentModel(clip, dino, sam, config, refiner=refiner).eval()
