"""The SAM image encoder (segment-anything), with its valid region and last-block attention.

:class:`SamEncoder` wraps a stock ``segment_anything`` ``Sam`` model (built by
``sam_model_registry``, weights loaded strictly by :func:`create_sam_encoder`) and gives:

* SAM's preprocessing: resize so the longest side is ``img_size`` (1024), normalise with SAM's
  pixel mean/std on the 0-255 scale, pad bottom/right to a square;
* the image embedding ``(B, 256, 64, 64)`` of the padded canvas, and the size of the resized
  image inside it, from which the valid (unpadded) token region follows;
* optionally the last encoder block's attention weights (softmax over all keys, padding
  included, relative positions included) and its per-head values, which Trident needs. They are
  taken without patching the library: a forward hook on the last block's stock ``Attention``
  module captures its input, and the attention is recomputed from that module's own weights
  (``qkv``, ``scale``, ``rel_pos_h/w``, with segment-anything's ``add_decomposed_rel_pos``).
  The tests check that ``proj(weights @ values)`` equals the stock module's output.

The full ``Sam`` model stays available as :attr:`SamEncoder.sam` (for ``SamPredictor`` prompts).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from segment_anything import SamPredictor, sam_model_registry
from segment_anything.modeling import Sam
from segment_anything.modeling.image_encoder import add_decomposed_rel_pos
from segment_anything.utils.transforms import ResizeLongestSide
from torch import nn

from lmseg.backbones.loading import load_strict, read_state_dict
from lmseg.backbones.weights import resolve_weights
from lmseg.errors import LmsegError

#: SAM architectures and the known names of their official checkpoints (see weights.py).
SAM_CHECKPOINTS: dict[str, str] = {"vit_b": "sam_vit_b", "vit_l": "sam_vit_l", "vit_h": "sam_vit_h"}
DEFAULT_SAM = "vit_b"

Rounding = Literal["ceil", "floor"]


@dataclass
class SamFeatures:
    """What :meth:`SamEncoder.forward` returns.

    Attributes:
        features: ``(B, 256, G, G)`` image embedding of the padded square canvas (``G = 64``
            for SAM's 1024-pixel input), model dtype.
        input_hw: ``(h, w)`` pixels of the resized image inside the canvas (its longest side is
            the canvas size); the rest of the canvas is zero padding at the bottom/right.
        patch_size: pixels per token (16).
        attention: ``(B, heads, G*G, G*G)`` last-block attention weights, or None if not asked
            for. Rows are queries, columns keys, both over the full canvas grid in row-major
            order; each row sums to 1 over all keys (padding included).
        values: ``(B, heads, G*G, head_dim)`` the last block's per-head values, or None.
    """

    features: torch.Tensor
    input_hw: tuple[int, int]
    patch_size: int
    attention: torch.Tensor | None = None
    values: torch.Tensor | None = None

    @property
    def grid(self) -> tuple[int, int]:
        """``(G, G)``, the full token grid of the canvas."""
        return int(self.features.shape[-2]), int(self.features.shape[-1])

    def valid_grid(self, rounding: Rounding = "ceil") -> tuple[int, int]:
        """The token rows and columns that cover the image (not padding).

        Args:
            rounding: "ceil" keeps tokens that cover any image pixel; "floor" keeps only tokens
                entirely inside the image (Trident's ``input_size // 16``).
        """
        h, w = self.input_hw
        p = self.patch_size
        if rounding == "ceil":
            return math.ceil(h / p), math.ceil(w / p)
        if rounding == "floor":
            return h // p, w // p
        raise ValueError(f"rounding must be 'ceil' or 'floor', got {rounding!r}")

    def valid_features(self, rounding: Rounding = "ceil") -> torch.Tensor:
        """``(B, 256, gh, gw)``: :attr:`features` cropped to :meth:`valid_grid`."""
        gh, gw = self.valid_grid(rounding)
        return self.features[:, :, :gh, :gw]

    def valid_attention(self, rounding: Rounding = "ceil") -> torch.Tensor:
        """``(B, heads, gh*gw, gh*gw)``: attention rows and columns of valid tokens (not renormalised)."""
        if self.attention is None:
            raise ValueError("attention was not computed; call the encoder with last_attention=True")
        gh, gw = self.valid_grid(rounding)
        b, heads = self.attention.shape[:2]
        g_h, g_w = self.grid
        attn = self.attention.view(b, heads, g_h, g_w, g_h, g_w)[:, :, :gh, :gw, :gh, :gw]
        return attn.reshape(b, heads, gh * gw, gh * gw)

    def valid_values(self, rounding: Rounding = "ceil") -> torch.Tensor:
        """``(B, heads, gh*gw, head_dim)``: the values of valid tokens."""
        if self.values is None:
            raise ValueError("values were not computed; call the encoder with last_attention=True")
        gh, gw = self.valid_grid(rounding)
        b, heads, _, dim = self.values.shape
        g_h, g_w = self.grid
        return self.values.view(b, heads, g_h, g_w, dim)[:, :, :gh, :gw].reshape(b, heads, gh * gw, dim)


def last_block_attention(attn: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Attention weights and values of a SAM ``Attention`` module for its input ``x``.

    Args:
        attn: a stock ``segment_anything.modeling.image_encoder.Attention`` (global attention).
        x: ``(B, H, W, C)`` the module's input (the block's ``norm1`` output).

    Returns:
        ``(weights, values)``: ``(B, heads, H*W, H*W)`` softmax attention (with the decomposed
        relative-position term when the module uses it) and ``(B, heads, H*W, C // heads)``.
    """
    b, h, w, _ = x.shape
    heads = attn.num_heads
    qkv = attn.qkv(x).reshape(b, h * w, 3, heads, -1).permute(2, 0, 3, 1, 4)  # (3, B, heads, HW, hd)
    q, k, v = qkv.unbind(0)
    scores = (q * attn.scale) @ k.transpose(-2, -1)  # (B, heads, HW, HW)
    if attn.use_rel_pos:
        flat = add_decomposed_rel_pos(
            scores.reshape(b * heads, h * w, h * w), q.reshape(b * heads, h * w, -1),
            attn.rel_pos_h, attn.rel_pos_w, (h, w), (h, w),
        )
        scores = flat.view(b, heads, h * w, h * w)
    return scores.softmax(dim=-1), v


class SamEncoder(nn.Module):
    """SAM's image encoder with preprocessing, valid region and last-block attention.

    Args:
        sam: a stock ``Sam`` model (any ``ImageEncoderViT`` size; official ones use 1024 px,
            patch 16, 256 output channels, and a global-attention last block).
    """

    def __init__(self, sam: Sam) -> None:
        super().__init__()
        self.sam = sam
        self.resizer = ResizeLongestSide(self.img_size)

    @property
    def encoder(self) -> nn.Module:
        """The stock ``ImageEncoderViT``."""
        return self.sam.image_encoder

    @property
    def img_size(self) -> int:
        """Side of the square canvas (1024)."""
        return int(self.sam.image_encoder.img_size)

    @property
    def patch_size(self) -> int:
        """Pixels per token (16)."""
        return int(self.sam.image_encoder.patch_embed.proj.kernel_size[0])

    @property
    def out_channels(self) -> int:
        """Channels of the image embedding (256)."""
        return int(self.encoder.neck[-2].weight.shape[0])

    @property
    def num_heads(self) -> int:
        """Heads of the last encoder block."""
        return int(self.encoder.blocks[-1].attn.num_heads)

    @property
    def dtype(self) -> torch.dtype:
        """The encoder's weight dtype (inputs are cast to it after normalisation)."""
        return self.encoder.patch_embed.proj.weight.dtype

    def resized_hw(self, height: int, width: int) -> tuple[int, int]:
        """The size an ``height`` x ``width`` image has after SAM's longest-side resize."""
        return ResizeLongestSide.get_preprocess_shape(height, width, self.img_size)

    def preprocess(self, images: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
        """Resize (longest side to :attr:`img_size`), normalise and pad a batch.

        Args:
            images: ``(B, 3, H, W)`` RGB, values in [0, 255] (float or uint8), one size for the
                batch. The resize is bilinear with antialiasing, as segment-anything's
                ``apply_image_torch`` intends.

        Returns:
            ``(canvas, input_hw)``: ``(B, 3, S, S)`` normalised and zero-padded, in the
            encoder's dtype; ``(h, w)`` of the resized image.
        """
        if images.dim() != 4 or images.shape[1] != 3:
            raise ValueError(f"images must be (B, 3, H, W) RGB, got {tuple(images.shape)}")
        x = images.float()
        target = self.resized_hw(int(x.shape[-2]), int(x.shape[-1]))
        if tuple(x.shape[-2:]) != target:
            # What segment-anything's ResizeLongestSide.apply_image_torch intends; not called
            # because segment-anything 1.0 computes its target size from the batch and channel
            # dimensions (image.shape[0], image.shape[1]) instead of the height and width.
            x = F.interpolate(x, target, mode="bilinear", align_corners=False, antialias=True)
        input_hw = (int(x.shape[-2]), int(x.shape[-1]))
        return self.sam.preprocess(x).to(self.dtype), input_hw

    def preprocess_numpy(self, image: np.ndarray) -> tuple[torch.Tensor, tuple[int, int]]:
        """SAM's reference preprocessing of one image, exactly as ``SamPredictor.set_image``.

        Args:
            image: ``(H, W, 3)`` uint8 RGB. The resize goes through PIL (segment-anything's
                ``apply_image``), which differs slightly from :meth:`preprocess`.

        Returns:
            ``(canvas, input_hw)`` as :meth:`preprocess`, with ``B = 1``, on the model's device.
        """
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"image must be (H, W, 3) uint8 RGB, got {image.shape} {image.dtype}")
        resized = self.resizer.apply_image(image)
        device = self.sam.pixel_mean.device
        x = torch.as_tensor(resized, device=device).permute(2, 0, 1).contiguous()[None]
        input_hw = (int(x.shape[-2]), int(x.shape[-1]))
        return self.sam.preprocess(x).to(self.dtype), input_hw

    def forward(self, images: torch.Tensor, *, last_attention: bool = False) -> SamFeatures:
        """Preprocess and encode a batch (see :meth:`preprocess` and :meth:`encode`)."""
        canvas, input_hw = self.preprocess(images)
        return self.encode(canvas, input_hw, last_attention=last_attention)

    def encode(self, canvas: torch.Tensor, input_hw: tuple[int, int], *, last_attention: bool = False) -> SamFeatures:
        """Run the stock encoder on preprocessed canvases.

        Args:
            canvas: ``(B, 3, S, S)`` from :meth:`preprocess` or :meth:`preprocess_numpy`.
            input_hw: the resized image size that came with it.
            last_attention: also return the last block's attention weights and values
                (``(B, heads, 4096, 4096)``: 0.8 GB per image in float32 for ViT-B).
        """
        if not last_attention:
            return SamFeatures(self.encoder(canvas), input_hw, self.patch_size)
        block = self.encoder.blocks[-1]
        if block.window_size != 0:
            raise LmsegError("the last SAM encoder block uses windowed attention; its global attention is undefined")
        captured: list[torch.Tensor] = []
        handle = block.attn.register_forward_hook(lambda _m, args, _out: captured.append(args[0]))
        try:
            features = self.encoder(canvas)
        finally:
            handle.remove()
        weights, values = last_block_attention(block.attn, captured[-1])
        return SamFeatures(features, input_hw, self.patch_size, weights, values)


def predictor_with_features(sam: Sam, features: torch.Tensor, original_size: tuple[int, int],
                            input_size: tuple[int, int]) -> SamPredictor:
    """A stock ``SamPredictor`` whose image is already encoded into ``features``.

    ``SamPredictor.set_torch_image`` would run the image encoder a second time; a method that
    already has the encoder output hands it over instead, setting exactly the attributes
    ``set_torch_image`` sets (``features``, ``original_size``, ``input_size``,
    ``is_image_set``), so ``predict`` behaves as after ``set_image``.

    Args:
        sam: the SAM model.
        features: ``(1, 256, 64, 64)`` image embeddings (cast to float32).
        original_size: ``(H, W)`` of the image the masks are for.
        input_size: ``(h, w)`` of the resized image inside the 1024 canvas.
    """
    predictor = SamPredictor(sam)
    predictor.reset_image()
    predictor.features = features.float()
    predictor.original_size = tuple(original_size)
    predictor.input_size = tuple(input_size)
    predictor.is_image_set = True
    return predictor


def create_sam_encoder(
    name: str = DEFAULT_SAM,
    *,
    weights: str | os.PathLike[str] | None,
    device: str | torch.device = "cpu",
    download: bool | None = None,
) -> SamEncoder:
    """Build SAM with ``sam_model_registry`` and load its weights strictly (eval mode).

    Args:
        name: ``"vit_b"`` (default), ``"vit_l"`` or ``"vit_h"``.
        weights: a checkpoint path, a known name (``"sam_vit_b"``, ``"sam_vit_l"``,
            ``"sam_vit_h"``: the official files, downloaded once with checksum verification),
            or None for random weights. Required, so that random weights are never used by
            accident.
        device: where the model goes.
        download: allow downloading a known checkpoint (None: unless ``LMSEG_OFFLINE`` is set).

    Raises:
        LmsegError: unknown name, missing weights, failed download, or a checkpoint that does
            not fit the architecture (missing/unexpected keys, other shapes).
    """
    if name not in SAM_CHECKPOINTS:
        raise LmsegError(f"unknown SAM model {name!r}; choose one of {', '.join(SAM_CHECKPOINTS)}")
    path = resolve_weights(weights, download=download) if weights is not None else None
    sam = sam_model_registry[name](checkpoint=None)
    if path is not None:
        load_strict(sam, read_state_dict(path), source=str(path), arch=f"SAM {name}")
    return SamEncoder(sam.to(device)).eval()
