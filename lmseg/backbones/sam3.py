"""SAM 3 through the ``sam3`` package: the image encoder, and text-prompted detection over one encoding.

:class:`Sam3Detector` wraps a stock ``Sam3Image`` (:func:`lmseg.backbones.sam3_build.build_sam3_image`)
and calls only the package's own functions:

* preprocessing: ``Sam3Processor``'s own transform (uint8, resize to the ``img_size`` square,
  [0, 1], mean = std = 0.5);
* :meth:`~Sam3Detector.encode_image`: ``backbone.forward_image`` once per image;
* :meth:`~Sam3Detector.encode_text`: ``backbone.forward_text`` for any number of prompts
  (in chunks);
* :meth:`~Sam3Detector.ground`: ``Sam3Image.forward_grounding`` for a batch of prompts
  against the one image encoding (``FindStage`` with ``text_ids`` selecting the prompts and
  ``img_ids`` all zero, and the package's empty geometric prompt), which is what
  ``Sam3Processor.set_text_prompt`` runs for one prompt.

**CPU.** ``sam3`` 0.1.4 calls ``Tensor.pin_memory()`` in ``SequenceGeometryEncoder._encode_boxes``
(``sam3/model/geometry_encoders.py``) on every forward, even for text-only prompts, and that
needs a CUDA driver. :meth:`Sam3Detector.ground` therefore runs, only on a CPU model in a
process without CUDA, inside :class:`PinMemoryOnCpu`: a ``torch.overrides.TorchFunctionMode``
(PyTorch's documented interception mechanism) under which ``pin_memory()`` of a CPU tensor
returns the tensor itself. It changes no function or object of ``sam3`` or torch, is active
only for the duration of that call, and does nothing else; pinning only speeds up host-to-GPU
copies, so the values are the same. The other two CUDA-only places of the released builder
are avoided by construction (see :mod:`~lmseg.backbones.sam3_build`).

**Weights.** :func:`create_sam3` reads the official ``sam3.pt`` (``{"model": ...}`` or flat;
keys ``detector.*`` for this model, ``tracker.*`` for the video tracker, which is not used
here and is skipped) and loads the detector's keys strictly against the package's own state
dict: any missing or unexpected key or other shape is refused, naming them. The ViT's RoPE
tables (``*.freqs_cis``) are buffers computed from ``img_size``; they are taken from the file
when their shape matches and recomputed otherwise (another input size). The weights are gated
on the Hugging Face hub (``facebook/sam3``): a missing access is one error saying how to get
it (:mod:`lmseg.backbones.hub`).
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from lmseg.backbones.loading import load_strict, read_state_dict
from lmseg.backbones.sam import SamFeatures
from lmseg.backbones.sam3_build import SAM3_ARCHS, Sam3Arch, build_sam3_image
from lmseg.backbones.weights import resolve_weights
from lmseg.errors import LmsegError

#: Keys of ``sam3.pt`` outside the image detector (the video tracker), skipped on load.
SKIPPED_PREFIXES = ("tracker.",)
#: Computed buffers: loaded when the shapes fit, recomputed for another input size.
COMPUTED_SUFFIXES = (".freqs_cis",)


class PinMemoryOnCpu(TorchFunctionMode):
    """``Tensor.pin_memory()`` of a CPU tensor returns the tensor (only within this mode).

    For CUDA-less processes: pinning page-locks host memory for faster copies to a GPU and
    needs a CUDA driver; without a GPU there is nothing to copy to.
    """

    def __torch_function__(self, func, types, args=(), kwargs=None):  # noqa: ANN001 - torch API
        if func is torch.Tensor.pin_memory and not args[0].is_cuda:
            return args[0]
        return func(*args, **(kwargs or {}))


def cpu_context(device: torch.device) -> contextlib.AbstractContextManager:
    """:class:`PinMemoryOnCpu` for a CPU model in a process without CUDA, else nothing."""
    if device.type == "cpu" and not torch.cuda.is_available():
        return PinMemoryOnCpu()
    return contextlib.nullcontext()


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """sam3 asks for CUDA autocast in places (a warning on a CPU) and scripts its transforms."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*CUDA is not available.*Disabling autocast.*")
        warnings.filterwarnings("ignore", message=".*torch.jit.script.*deprecated.*")
        yield


@torch.no_grad()
def init_untrained_text_(model: nn.Module, generator: torch.Generator | None = None) -> nn.Module:
    """Initialise the two text-encoder parameters sam3 leaves uninitialised (random-weight models only).

    ``sam3``'s ``TextTransformer`` creates ``positional_embedding`` and ``text_projection``
    with ``torch.empty`` and sets them only from a checkpoint, so a model with random weights
    computes with whatever memory held (NaN outputs). They are drawn here as open_clip
    initialises the same parameters (normal, std 0.01 and ``width ** -0.5``).
    """
    encoder = model.backbone.language_backbone.encoder
    encoder.positional_embedding.normal_(std=0.01, generator=generator)
    projection = getattr(encoder, "text_projection", None)
    if isinstance(projection, nn.Parameter):
        projection.normal_(std=encoder.width ** -0.5, generator=generator)
    return model


def _processor_transform(img_size: int) -> nn.Module:
    """``Sam3Processor``'s own transform for a square input of side ``img_size``: the reference
    preprocessing (uint8 ``(3, H, W)`` -> float ``(3, S, S)``, [0, 1], mean = std = 0.5)."""
    from sam3.model.sam3_image_processor import Sam3Processor

    with _quiet():  # the processor's other state is unused (and needs no model)
        return Sam3Processor(None, resolution=img_size, device="cpu").transform


class _Sizes:
    """The sizes of a SAM 3 module, read from its ``arch``."""

    arch: Sam3Arch

    @property
    def img_size(self) -> int:
        """Side of the square input (1008 for the released model)."""
        return self.arch.img_size

    @property
    def patch_size(self) -> int:
        """Pixels per token of the ViT (14)."""
        return self.arch.patch_size

    @property
    def out_channels(self) -> int:
        """Channels of the image features, ``vision_features`` (256)."""
        return self.arch.d_model


class Sam3Detector(_Sizes, nn.Module):
    """SAM 3's image model: one image encoding, any number of text prompts.

    Args:
        model: a stock ``Sam3Image``.
        arch: its sizes.
    """

    def __init__(self, model: nn.Module, arch: Sam3Arch) -> None:
        super().__init__()
        self.model = model
        self.arch = arch
        self.transform = _processor_transform(arch.img_size)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def preprocess(self, image: np.ndarray | torch.Tensor) -> torch.Tensor:
        """One image -> ``(1, 3, S, S)``, exactly as ``Sam3Processor.set_image``.

        Args:
            image: ``(H, W, 3)`` uint8 RGB array, or a ``(3, H, W)`` tensor (uint8, or float in
                [0, 1]).
        """
        from torchvision.transforms import v2

        if isinstance(image, np.ndarray):
            if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
                raise ValueError(f"image must be (H, W, 3) uint8 RGB, got {image.shape} {image.dtype}")
            if not image.flags.writeable:  # torch warns about read-only arrays
                image = image.copy()
            tensor = v2.functional.to_image(image)
        else:
            if image.dim() != 3 or image.shape[0] != 3:
                raise ValueError(f"image must be (3, H, W), got {tuple(image.shape)}")
            tensor = v2.functional.to_image(image)
        return self.transform(tensor.to(self.device)).unsqueeze(0)

    def encode_image(self, canvas: torch.Tensor) -> dict[str, Any]:
        """``backbone.forward_image``: ``{"vision_features": (B, 256, S/14, S/14), "backbone_fpn":
        [(B, 256, 4S/14, ...), (B, 256, 2S/14, ...), (B, 256, S/14, ...)], "vision_pos_enc": ...}``."""
        with _quiet():
            return self.model.backbone.forward_image(canvas)

    def encode_text(self, prompts: Sequence[str], *, chunk: int = 64) -> dict[str, torch.Tensor]:
        """``backbone.forward_text`` for all prompts, ``chunk`` at a time.

        Returns:
            ``{"language_features": (T, P, 256), "language_mask": (P, T), "language_embeds":
            (T, P, 256)}`` (sequence first, as the package), ``T`` the text context (32).
        """
        if not prompts:
            raise ValueError("no prompts")
        parts = [self.model.backbone.forward_text(list(prompts[i:i + chunk]), device=self.device)
                 for i in range(0, len(prompts), chunk)]
        return {
            "language_features": torch.cat([p["language_features"] for p in parts], dim=1),
            "language_mask": torch.cat([p["language_mask"] for p in parts], dim=0),
            "language_embeds": torch.cat([p["language_embeds"] for p in parts], dim=1),
        }

    def ground(self, image: dict[str, Any], text: dict[str, torch.Tensor], prompts: Sequence[int] | range,
               image_index: int = 0) -> dict[str, torch.Tensor]:
        """``forward_grounding`` for a batch of prompts against one encoded image.

        Args:
            image: :meth:`encode_image`'s output.
            text: :meth:`encode_text`'s output.
            prompts: indices into ``text`` of the prompts to run (one batch).
            image_index: which image of ``image``.

        Returns:
            The package's outputs for the ``N`` prompts: ``pred_logits (N, Q, 1)`` detection
            logits, ``presence_logit_dec (N, 1)``, ``pred_boxes (N, Q, 4)`` normalised cxcywh,
            ``pred_masks (N, Q, h, w)`` mask logits and ``semantic_seg (N, 1, h, w)`` logits at
            4/14 of the input side, among others.
        """
        from sam3.model.data_misc import FindStage

        device = self.device
        text_ids = torch.as_tensor(list(prompts), dtype=torch.long, device=device)
        count = int(text_ids.numel())
        find = FindStage(img_ids=torch.full((count,), image_index, dtype=torch.long, device=device),
                         text_ids=text_ids, input_boxes=None, input_boxes_mask=None, input_boxes_label=None,
                         input_points=None, input_points_mask=None)
        backbone_out = {**image, **text}
        with _quiet(), cpu_context(device):
            return self.model.forward_grounding(backbone_out=backbone_out, find_input=find, find_target=None,
                                                geometric_prompt=self.model._get_dummy_prompt(num_prompts=count))


class Sam3ImageEncoder(_Sizes, nn.Module):
    """SAM 3's image encoder alone (ViT + neck, 454M of the 840M parameters), for methods that fuse its features.

    It is the package's own vision-only backbone, ``SAM3VLBackbone(visual=..., text=None)`` (as
    ``sam3.model_builder.build_tracker`` builds it), with ``Sam3Processor``'s preprocessing.
    Its state dict is the ``backbone.vision_backbone.*`` part of the image model's.

    Args:
        backbone: the ``SAM3VLBackbone`` without text encoder.
        arch: its sizes.
    """

    def __init__(self, backbone: nn.Module, arch: Sam3Arch) -> None:
        super().__init__()
        self.backbone = backbone
        self.arch = arch
        self.transform = _processor_transform(arch.img_size)

    @property
    def dtype(self) -> torch.dtype:
        return next(self.backbone.parameters()).dtype

    def preprocess(self, images: torch.Tensor) -> torch.Tensor:
        """``(B, 3, H, W)`` RGB in [0, 255] -> ``(B, 3, S, S)`` as ``Sam3Processor.set_image`` (via uint8)."""
        if images.dim() != 4 or images.shape[1] != 3:
            raise ValueError(f"images must be (B, 3, H, W) RGB, got {tuple(images.shape)}")
        pixels = images.round().clamp(0, 255).to(torch.uint8)
        return torch.stack([self.transform(image) for image in pixels]).to(self.dtype)

    def forward(self, images: torch.Tensor) -> SamFeatures:
        """``vision_features`` ``(B, 256, S/14, S/14)`` of ``(B, 3, H, W)`` RGB in [0, 255] (the whole square is valid)."""
        with _quiet():
            features = self.backbone.forward_image(self.preprocess(images))["vision_features"]
        return SamFeatures(features, (self.img_size, self.img_size), self.patch_size)


def load_sam3_encoder_checkpoint(backbone: nn.Module, path: str | os.PathLike[str], *, arch: str) -> None:
    """Load the ``backbone.vision_backbone.*`` part of ``sam3.pt`` strictly into a vision-only ``SAM3VLBackbone``.

    Raises:
        CheckpointMismatchError: a missing, unexpected or mis-shaped key of that part.
    """
    state = read_state_dict(path)
    prefix = "detector.backbone." if any(k.startswith("detector.") for k in state) else "backbone."
    part = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix + "vision_backbone.")}
    _load_with_computed(backbone, part, path, arch)


def _load_with_computed(module: nn.Module, state: dict[str, torch.Tensor], path: str | os.PathLike[str],
                        arch: str) -> None:
    """:func:`~lmseg.backbones.loading.load_strict` of ``state`` into ``module``, where the computed
    buffers that ``state`` lacks or has in another shape (another input size) keep the module's values."""
    for key, value in module.state_dict().items():
        if key.endswith(COMPUTED_SUFFIXES) and (key not in state or tuple(state[key].shape) != tuple(value.shape)):
            state[key] = value
    load_strict(module, state, source=str(path), arch=arch)


def load_sam3_checkpoint(model: nn.Module, path: str | os.PathLike[str], *, arch: str) -> None:
    """Load ``sam3.pt`` (or the detector's own state dict) strictly into a ``Sam3Image``.

    Raises:
        CheckpointMismatchError: a missing, unexpected or mis-shaped key of the detector.
    """
    state = read_state_dict(path)
    if any(k.startswith("detector.") for k in state):
        state = {k[len("detector."):]: v for k, v in state.items() if k.startswith("detector.")}
    else:
        state = {k: v for k, v in state.items() if not k.startswith(SKIPPED_PREFIXES)}
    _load_with_computed(model, state, path, arch)


def _arch_and_weights(name: str, image_size: int | None, weights: str | os.PathLike[str] | None,
                      download: bool | None) -> tuple[Sam3Arch, Path | None]:
    """The sizes of model ``name`` at ``image_size``, and the resolved weights file (None: random).

    Raises:
        LmsegError: as :func:`create_sam3`.
    """
    if name not in SAM3_ARCHS:
        raise LmsegError(f"unknown SAM 3 model {name!r}; choose one of {', '.join(SAM3_ARCHS)}")
    arch = SAM3_ARCHS[name]
    if image_size is not None:
        if image_size <= 0 or image_size % arch.patch_size:
            raise LmsegError(f"SAM 3 image_size must be a positive multiple of {arch.patch_size}, got {image_size}")
        arch = replace(arch, img_size=int(image_size))
    if weights is not None and name != "sam3":
        raise LmsegError(f"{name} is a reduced random test model; it takes no weights")
    return arch, resolve_weights(weights, download=download) if weights is not None else None


def create_sam3_image_encoder(
    name: str = "sam3",
    *,
    weights: str | os.PathLike[str] | None,
    image_size: int | None = None,
    device: str | torch.device = "cpu",
    download: bool | None = None,
) -> Sam3ImageEncoder:
    """SAM 3's image encoder with the ``backbone.vision_backbone`` weights of ``sam3.pt``, loaded strictly.

    Args: as :func:`create_sam3`.

    Raises:
        LmsegError: as :func:`create_sam3`.
    """
    from sam3.model.vl_combiner import SAM3VLBackbone

    from lmseg.backbones.sam3_build import vision_backbone

    arch, path = _arch_and_weights(name, image_size, weights, download)
    with _quiet():
        backbone = SAM3VLBackbone(visual=vision_backbone(arch), text=None, scalp=1)
    if path is not None:
        load_sam3_encoder_checkpoint(backbone, path, arch=f"SAM 3 image encoder ({arch.name})")
    return Sam3ImageEncoder(backbone.to(device).eval(), arch)


def create_sam3(
    name: str = "sam3",
    *,
    weights: str | os.PathLike[str] | None,
    image_size: int | None = None,
    device: str | torch.device = "cpu",
    download: bool | None = None,
) -> Sam3Detector:
    """Build SAM 3's image model and load its weights strictly (eval mode).

    Args:
        name: ``"sam3"`` (the released architecture) or ``"sam3_test_tiny"`` (reduced, random
            weights only).
        weights: ``"sam3"`` / ``"facebook/sam3"`` (the gated hub file, from the local Hugging
            Face cache or downloaded with a token), a ``sam3.pt`` path, or None for random
            weights (drawn from torch's global generator, including the two parameters sam3
            leaves uninitialised: seed it first for a reproducible model).
        image_size: the square input side (default 1008; a multiple of 14). The released
            weights fit any size (the RoPE tables are recomputed).
        device: where the model goes.
        download: allow downloading (None: unless ``LMSEG_OFFLINE``/``HF_HUB_OFFLINE``).

    Raises:
        LmsegError: unknown name, weights for the test model, a bad size, missing weights or
            access, or a checkpoint that does not fit (naming the keys).
    """
    arch, path = _arch_and_weights(name, image_size, weights, download)
    with _quiet():
        model = build_sam3_image(arch)
    if path is None:
        init_untrained_text_(model)
    else:
        load_sam3_checkpoint(model, path, arch=f"SAM 3 ({arch.name})")
    return Sam3Detector(model.to(device).eval(), arch)
