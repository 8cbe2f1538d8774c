"""Building Trident models from their backbones (:data:`~lmseg.models.trident.config.TRIDENT_BACKBONES`).

* :func:`build_model`: the published backbones with their weights;
* :func:`build_tiny_model`: tiny random backbones (outputs meaningless);
* :func:`assemble`: three backbones -> a :class:`~lmseg.models.trident.model.TridentModel` on
  a device, in half precision if asked.

Weights are given explicitly: ``clip`` is an open_clip pretrained tag (open_clip downloads it)
or a checkpoint file; ``dino`` and ``sam`` are known names (downloaded once into lmseg's weights
cache with size/checksum checks where known) or files. All three problems are reported in one
:class:`~lmseg.errors.LmsegError`. Trident is training-free: it has no checkpoint of its own.
"""

from __future__ import annotations

import torch
from torch import nn

from lmseg.errors import LmsegError
from lmseg.models.building import Weights, dense_clip
from lmseg.models.trident.config import TridentBackbones, TridentConfig
from lmseg.models.trident.model import TridentModel


def build_model(backbones: TridentBackbones, config: TridentConfig, *, clip: Weights, dino: Weights, sam: Weights,
                sam_model: str = "vit_b", device: torch.device, half: bool, clip_quick_gelu: bool | None = None,
                download: bool | None = None) -> TridentModel:
    """A Trident model with the published backbones and the given weights (see the module docstring).

    Raises:
        LmsegError: weights not given, not found, not downloadable or not fitting (one error
            naming every problem).
    """
    from lmseg.backbones.dino import create_dense_dino
    from lmseg.backbones.sam import create_sam_encoder

    name, tag = backbones.name, backbones.clip_tag
    missing = [
        f"{arg}= (e.g. {example})"
        for arg, spec, example in (
            ("clip", clip, f"{tag!r}: open_clip downloads {backbones.clip_model}/{tag}; or a checkpoint file"),
            ("dino", dino, "'dino_vitb16' (downloaded into lmseg's weights cache), 'timm', or a file"),
            ("sam", sam, "'sam_vit_b' (downloaded and checksummed into lmseg's weights cache), or a file"),
        )
        if spec is None
    ]
    if missing:
        raise LmsegError(f"{name} needs weights for all three backbones; pass " + ", ".join(missing))
    problems: list[str] = []
    parts: dict[str, nn.Module] = {}
    for part, build in (
        ("sam", lambda: create_sam_encoder(sam_model, weights=sam, download=download)),
        ("dino", lambda: create_dense_dino(backbones.dino_model, weights=dino, interpolation_offset=0.1,
                                           download=download)),
        ("clip", lambda: dense_clip(backbones.clip_model, clip, file_quick_gelu=backbones.clip_quick_gelu,
                                    quick_gelu=clip_quick_gelu, interpolation_offset=0.1)),
    ):
        try:
            parts[part] = build()
        except LmsegError as exc:
            problems.append(f"{part}: {exc}")
    if problems:
        raise LmsegError(f"{name}: could not load its weights:\n  " + "\n  ".join(problems))
    return assemble(parts["clip"], parts["dino"], parts["sam"], config, device, half)


def build_tiny_model(backbones: TridentBackbones, config: TridentConfig, *, device: torch.device) -> TridentModel:
    """Trident on tiny RANDOM backbones, for tests and plumbing demos (fp32). Its outputs are meaningless.

    CLIP is open_clip's ``lmseg-tiny-ViT`` (patch 16, width 48, 3 blocks, D=32), DINO a 2-block
    width-32 timm ViT with patch 16, SAM a 256-pixel 2-block encoder with a width-32 prompt side;
    the weights come from torch's global generator (seed it for a reproducible model).
    """
    import timm

    from lmseg.backbones.clip_factory import create_dense_clip
    from lmseg.backbones.dino import DenseDINO
    from lmseg.backbones.sam import SamEncoder
    from lmseg.backbones.sam_tiny import build_tiny_sam

    clip = create_dense_clip(backbones.clip_model, pretrained=None, interpolation_offset=0.1)
    vit = timm.create_model(
        backbones.dino_model, pretrained=False, img_size=64, embed_dim=32, depth=2, num_heads=2, num_classes=0,
        dynamic_img_size=True,
    )
    dino = DenseDINO(vit, interpolation_offset=0.1).eval()
    sam = SamEncoder(build_tiny_sam(256, window_size=4, neck_channels=32, decoder_heads=2, iou_hidden=16,
                                    random_positions=True)).eval()
    return assemble(clip, dino, sam, config, device, False)


def assemble(clip, dino, sam, config: TridentConfig, device: torch.device, half: bool) -> TridentModel:
    """The model on ``device`` (eval mode); in half precision the encoders go fp16, SAM's prompt side stays fp32."""
    clip, dino, sam = clip.to(device), dino.to(device), sam.to(device)
    if half:
        if device.type != "cuda":
            raise LmsegError("half precision needs a CUDA device")
        clip.model.visual.half()
        dino.half()
        sam.sam.image_encoder.half()
    return TridentModel(clip, dino, sam, config).eval()
