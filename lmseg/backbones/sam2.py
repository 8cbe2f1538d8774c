"""The SAM 2.1 image encoder and prompt predictor, through the ``sam2`` package's own API.

:class:`Sam2Encoder` wraps a stock ``sam2`` ``SAM2Base`` (built by ``sam2.build_sam.build_sam2``
from the package's own Hydra configs; weights loaded strictly by :func:`create_sam2_encoder`):

* SAM 2's preprocessing, the predictor's own ``SAM2Transforms``: the image is resized to the
  ``image_size`` square (1024; no aspect ratio kept, unlike SAM 1), then ImageNet mean/std on
  the [0, 1] scale;
* ``SAM2Base.forward_image`` and ``_prepare_backbone_features``, plus ``no_mem_embed`` on the
  coarsest level, exactly as ``SAM2ImagePredictor.set_image`` computes its ``image_embed``
  ``(B, 256, S/16, S/16)`` and ``high_res_feats`` (``(B, 32, S/4, S/4)``, ``(B, 64, S/8, S/8)``),
  for any batch and any ``image_size`` (the predictor hard-codes the 1024 sizes);
* :meth:`Sam2Encoder.predictor`: a stock ``SAM2ImagePredictor`` whose image is already
  encoded, for box / point / mask prompts (Trident's refinement).

The whole square is image (no padding), so :class:`Sam2Features` reports the full grid as
valid. The tests check the features against ``SAM2ImagePredictor.set_image`` on the same
weights and image, and the strict loading against the package's own state dict.

Note: the PyPI ``sam2`` 1.1.0 is an upload by a third party; its ``sam2/`` code is identical
to facebookresearch/sam2 at commit 2b90b9f (Apache-2.0). It also installs a top-level package
named ``training`` (SAM 2's training code).
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from lmseg.backbones.loading import load_strict, read_state_dict
from lmseg.backbones.sam import SamFeatures
from lmseg.backbones.weights import resolve_weights
from lmseg.errors import LmsegError


@dataclass(frozen=True)
class Sam2Model:
    """A SAM 2 architecture: the package's Hydra config plus overrides.

    Attributes:
        name: lmseg's name (``"sam2.1_hiera_tiny"``).
        config: the Hydra config name inside the ``sam2`` package.
        weights: the known weights name of its official checkpoint ("" for test models).
        overrides: Hydra overrides applied on top of ``config``.
    """

    name: str
    config: str
    weights: str = ""
    overrides: tuple[str, ...] = ()


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """SAM 2's transforms call ``torch.jit.script``, which warns that it is deprecated."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*torch.jit.script.*deprecated.*")
        yield


_TINY_D = 64
#: A reduced SAM 2.1 (Hiera 16-wide, 5 blocks; 64-channel neck and decoder; 1.4M parameters):
#: every code path of the real model, for tests only (random weights).
_TINY_OVERRIDES = (
    "model.image_encoder.trunk.embed_dim=16",
    "model.image_encoder.trunk.stages=[1,1,2,1]",  # a global-attention block must not start a stage
    "model.image_encoder.trunk.global_att_blocks=[3]",
    "model.image_encoder.trunk.window_pos_embed_bkg_spatial_size=[4,4]",
    "model.image_encoder.neck.backbone_channel_list=[128,64,32,16]",
    f"model.image_encoder.neck.d_model={_TINY_D}",
    f"model.image_encoder.neck.position_encoding.num_pos_feats={_TINY_D}",
    f"model.memory_attention.d_model={_TINY_D}",
    f"model.memory_attention.layer.d_model={_TINY_D}",
    "model.memory_attention.layer.dim_feedforward=64",
    f"model.memory_attention.layer.self_attention.embedding_dim={_TINY_D}",
    f"model.memory_attention.layer.cross_attention.embedding_dim={_TINY_D}",
    "model.memory_attention.layer.cross_attention.kv_in_dim=32",
    "model.memory_attention.num_layers=1",
    "model.memory_encoder.out_dim=32",
    "model.memory_encoder.position_encoding.num_pos_feats=32",
    f"+model.memory_encoder.in_dim={_TINY_D}",
    f"model.memory_encoder.fuser.layer.dim={_TINY_D}",
    "model.memory_encoder.fuser.num_layers=1",
)

SAM2_MODELS: dict[str, Sam2Model] = {
    m.name: m
    for m in (
        Sam2Model("sam2.1_hiera_tiny", "configs/sam2.1/sam2.1_hiera_t.yaml", "sam2.1_hiera_tiny"),
        Sam2Model("sam2.1_hiera_small", "configs/sam2.1/sam2.1_hiera_s.yaml", "sam2.1_hiera_small"),
        Sam2Model("sam2.1_hiera_base_plus", "configs/sam2.1/sam2.1_hiera_b+.yaml", "sam2.1_hiera_base_plus"),
        Sam2Model("sam2.1_hiera_large", "configs/sam2.1/sam2.1_hiera_l.yaml", "sam2.1_hiera_large"),
        Sam2Model("sam2.1_test_tiny", "configs/sam2.1/sam2.1_hiera_t.yaml", "", _TINY_OVERRIDES),
    )
}
DEFAULT_SAM2 = "sam2.1_hiera_tiny"


@dataclass
class Sam2Features(SamFeatures):
    """SAM 2's image features (:class:`~lmseg.backbones.sam.SamFeatures` plus the fine levels).

    Attributes:
        features: ``(B, C, S/16, S/16)`` ``image_embed`` (C = 256 for the official models),
            ``no_mem_embed`` included, as ``SAM2ImagePredictor`` stores it.
        input_hw: ``(S, S)``: SAM 2 squeezes the whole image into the square, so every token
            is valid.
        high_res: ``[(B, C/8, S/4, S/4), (B, C/4, S/8, S/8)]`` (``high_res_feats``).
    """

    high_res: list[torch.Tensor] = field(default_factory=list)


class Sam2Encoder(nn.Module):
    """SAM 2's image encoder with the predictor's preprocessing.

    Args:
        model: a stock ``SAM2Base`` (e.g. from ``build_sam2``).
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        from sam2.utils.transforms import SAM2Transforms

        self.model = model
        with _quiet():
            self.transforms = SAM2Transforms(resolution=int(model.image_size), mask_threshold=0.0)

    @property
    def img_size(self) -> int:
        """Side of the square input (1024 for the official models)."""
        return int(self.model.image_size)

    @property
    def patch_size(self) -> int:
        """Pixels per token of ``image_embed`` (16)."""
        return int(self.model.backbone_stride)

    @property
    def out_channels(self) -> int:
        """Channels of ``image_embed`` (256)."""
        return int(self.model.hidden_dim)

    @property
    def dtype(self) -> torch.dtype:
        return self.model.no_mem_embed.dtype

    def preprocess(self, images: torch.Tensor) -> torch.Tensor:
        """``(B, 3, H, W)`` RGB in [0, 255] -> ``(B, 3, S, S)`` resized and normalised.

        The resize and normalisation are the predictor's own (``SAM2Transforms``: torchvision
        ``Resize`` to the square, antialiased, then ``Normalize``), applied to the batch.
        """
        if images.dim() != 4 or images.shape[1] != 3:
            raise ValueError(f"images must be (B, 3, H, W) RGB, got {tuple(images.shape)}")
        return self.transforms.transforms(images.float() / 255.0).to(self.dtype)

    def preprocess_numpy(self, image: np.ndarray) -> torch.Tensor:
        """SAM 2's reference preprocessing of one ``(H, W, 3)`` uint8 image, as ``set_image``."""
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"image must be (H, W, 3) uint8 RGB, got {image.shape} {image.dtype}")
        if not image.flags.writeable:  # torchvision's ToTensor warns about read-only arrays
            image = image.copy()
        return self.transforms(image)[None].to(self.model.no_mem_embed.device, self.dtype)

    def encode(self, canvas: torch.Tensor) -> Sam2Features:
        """Run the stock encoder on preprocessed ``(B, 3, S, S)`` inputs."""
        backbone_out = self.model.forward_image(canvas)
        _, vision_feats, _, feat_sizes = self.model._prepare_backbone_features(backbone_out)
        if self.model.directly_add_no_mem_embed:
            vision_feats[-1] = vision_feats[-1] + self.model.no_mem_embed
        batch = canvas.shape[0]
        maps = [f.permute(1, 2, 0).reshape(batch, -1, *size) for f, size in zip(vision_feats, feat_sizes)]
        side = int(canvas.shape[-1])
        return Sam2Features(maps[-1], (int(canvas.shape[-2]), side), self.patch_size, high_res=maps[:-1])

    def forward(self, images: torch.Tensor) -> Sam2Features:
        """Preprocess and encode a batch of ``(B, 3, H, W)`` RGB images in [0, 255]."""
        return self.encode(self.preprocess(images))

    def predictor(self, features: Sam2Features, original_size: tuple[int, int], index: int = 0):
        """A stock ``SAM2ImagePredictor`` whose image (``features[index]``) is already set.

        ``set_image`` would run the encoder again; this sets exactly the state it sets
        (``_features``, ``_orig_hw``, ``_is_image_set``, ``_is_batch``) and the feature sizes
        of this model's ``image_size`` (the predictor hard-codes 1024's).

        Args:
            features: from :meth:`encode`.
            original_size: ``(H, W)`` of the image the masks are for.
            index: which image of the batch.
        """
        from sam2.sam2_image_predictor import SAM2ImagePredictor

        with _quiet():
            predictor = SAM2ImagePredictor(self.model)
        levels = [*features.high_res, features.features]
        predictor._bb_feat_sizes = [tuple(int(s) for s in f.shape[-2:]) for f in levels]
        predictor._features = {
            "image_embed": features.features[index:index + 1].float(),
            "high_res_feats": [f[index:index + 1].float() for f in features.high_res],
        }
        predictor._orig_hw = [tuple(int(s) for s in original_size)]
        predictor._is_batch = False
        predictor._is_image_set = True
        return predictor


def build_sam2_model(name: str = DEFAULT_SAM2, *, image_size: int | None = None) -> nn.Module:
    """A ``SAM2Base`` of the named architecture with random weights (``build_sam2``, eval mode, CPU).

    Args:
        name: a key of :data:`SAM2_MODELS`.
        image_size: the square input side (default: the config's, 1024; 256 for the test
            model); a multiple of 32. The official weights fit any size (positions resample).
    """
    if name not in SAM2_MODELS:
        raise LmsegError(f"unknown SAM 2 model {name!r}; choose one of {', '.join(SAM2_MODELS)}")
    from sam2.build_sam import build_sam2

    arch = SAM2_MODELS[name]
    size = image_size if image_size is not None else (256 if not arch.weights else None)
    overrides = list(arch.overrides)
    if size is not None:
        if size <= 0 or size % 32:
            raise LmsegError(f"SAM 2 image_size must be a positive multiple of 32, got {size}")
        overrides.append(f"model.image_size={size}")
    return build_sam2(arch.config, ckpt_path=None, device="cpu", hydra_overrides_extra=overrides)


def create_sam2_encoder(
    name: str = DEFAULT_SAM2,
    *,
    weights: str | os.PathLike[str] | None,
    image_size: int | None = None,
    device: str | torch.device = "cpu",
    download: bool | None = None,
) -> Sam2Encoder:
    """Build SAM 2.1 and load its weights strictly (eval mode).

    Args:
        name: ``"sam2.1_hiera_tiny"`` (default), ``..._small``, ``..._base_plus``,
            ``..._large``, or ``"sam2.1_test_tiny"`` (reduced, random weights only).
        weights: a checkpoint path (the official ``{"model": state_dict}`` ``.pt``), a known
            name (``"sam2.1_hiera_tiny"``: the official file, downloaded once) or its hub id
            (``"facebook/sam2.1-hiera-tiny"``), ``"official"`` for the model's own known
            name, or None for random weights. Required, so random weights are never used by
            accident.
        image_size: see :func:`build_sam2_model`.
        device: where the model goes.
        download: allow downloading (None: unless ``LMSEG_OFFLINE`` is set).

    Raises:
        LmsegError: unknown name, weights for the test model, missing weights, or a checkpoint
            whose keys or shapes differ from the package's model (one message naming them).
    """
    model = build_sam2_model(name, image_size=image_size)
    arch = SAM2_MODELS[name]
    if weights is not None:
        if not arch.weights:
            raise LmsegError(f"{name} is a reduced random test model; it takes no weights")
        spec = arch.weights if weights == "official" else weights
        path = resolve_weights(spec, download=download)
        load_strict(model, read_state_dict(path), source=str(path), arch=f"SAM 2.1 {name}")
    return Sam2Encoder(model.to(device)).eval()
