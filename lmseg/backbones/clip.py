"""Dense CLIP features from a stock open_clip model.

:class:`DenseCLIP` wraps an unmodified ``open_clip`` CLIP model (ViT image tower) and exposes
what open-vocabulary segmentation needs from it:

* dense patch features in the joint image-text space (``ln_post`` then ``proj`` applied to every
  patch token) at any input size whose sides are multiples of the patch size, with the
  positional embedding resized bicubically (:mod:`lmseg.backbones.pos_embed`);
* the outputs of chosen intermediate blocks (decoder guidance in CAT-Seg/LMSeg);
* the tokens entering the last block and that block's stock pieces (``ln_1``, the query/key/value
  in-projection, ``out_proj``), so that a method can replace only the last block's attention
  (Trident's proxy attention, ClearCLIP, SCLIP) without touching the library;
* text encoding (tokenize, ``encode_text``, L2-normalise).

The blocks themselves run through open_clip's own ``Transformer.forward`` /
``forward_intermediates``; only the embedding step (patchify, class token, positional
embedding, ``ln_pre``) is done here, because open_clip's adds the positional embedding at the
trained size only. At the trained size every output equals open_clip's own computation.

Building the model and resolving its weights (pretrained tags, files, the QuickGELU trap) is
:func:`lmseg.backbones.clip_factory.create_dense_clip`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import open_clip
import torch
import torch.nn.functional as F
from open_clip.transformer import QuickGELU, VisionTransformer
from torch import nn

from lmseg.backbones.pos_embed import interpolate_pos_embed
from lmseg.errors import LmsegError
from lmseg.io.progress import progress_bar

#: Folder of extra open_clip model configs shipped with lmseg (``lmseg-tiny-ViT`` for tests).
OPEN_CLIP_CONFIG_DIR = Path(__file__).with_name("open_clip_configs")
open_clip.add_model_config(OPEN_CLIP_CONFIG_DIR)

#: The project's default CLIP (CAT-Seg/LMSeg base, Trident).
DEFAULT_CLIP = "ViT-B-16"

#: :meth:`DenseCLIP.encode_text` shows its progress bar (on a terminal) from this many sentences
#: on: 26 classes in 80 templates; a training batch of captions stays below it.
PROGRESS_MIN_TEXTS = 2048


@dataclass
class DenseCLIPOutput:
    """What :meth:`DenseCLIP.forward` returns.

    Attributes:
        dense: ``(B, D, h, w)`` patch features in the joint space (``ln_post`` then ``proj``),
            not L2-normalised; ``D`` is the embedding width (512 for ViT-B/16, 768 for ViT-L/14),
            ``(h, w)`` the token grid (input size // patch size). Model dtype.
        pooled: ``(B, D)`` the image embedding (class token through ``ln_post`` and ``proj``),
            equal to ``model.encode_image(images)`` at the trained input size.
        intermediates: block index (0-based, as requested) -> ``(B, width, h, w)`` patch tokens
            output by that block (the residual stream, before any norm); ``width`` is the
            transformer width (768 for ViT-B/16, 1024 for ViT-L/14).
    """

    dense: torch.Tensor
    pooled: torch.Tensor
    intermediates: dict[int, torch.Tensor]


class DenseCLIP(nn.Module):
    """A stock open_clip CLIP model with dense-feature and last-block access.

    Images are ``(B, 3, H, W)`` float tensors, RGB, normalised with :attr:`mean` and :attr:`std`
    (values in [0, 1] before normalisation; see :meth:`normalize`), ``H`` and ``W`` multiples of
    the patch size. Tokens are batch-first ``(B, L, width)`` with the class token first and the
    patch tokens in row-major order (``L = 1 + h*w``).

    Args:
        model: an open_clip ``CLIP``/``CustomTextCLIP`` whose image tower is open_clip's
            ``VisionTransformer`` with a learned positional embedding, class-token pooling and
            a projection (all OpenAI, LAION, DataComp, DFN and MetaCLIP ViTs).
        model_name: the open_clip model name, used to pick the tokenizer.
        interpolation_offset: positional-embedding resize convention: 0 resizes to the target
            grid; 0.1 reproduces the scale-factor convention of DINO/Trident (see
            :mod:`lmseg.backbones.pos_embed`).
    """

    def __init__(self, model: nn.Module, *, model_name: str, interpolation_offset: float = 0.0) -> None:
        super().__init__()
        visual = getattr(model, "visual", None)
        if not isinstance(visual, VisionTransformer):
            raise LmsegError(f"{model_name}: DenseCLIP needs an open_clip ViT image tower, got {type(visual).__name__}")
        unsupported = []
        if visual.attn_pool is not None:
            unsupported.append("attentional pooling")
        if visual.pool_type != "tok" or visual.final_ln_after_pool:
            unsupported.append(f"pool_type={visual.pool_type!r}/final_ln_after_pool={visual.final_ln_after_pool}")
        if visual.proj is None:
            unsupported.append("no projection")
        if not isinstance(visual.patch_dropout, nn.Identity):
            unsupported.append("patch dropout (it removes tokens from the dense grid)")
        blk = visual.transformer.resblocks[-1]
        if not all(hasattr(blk.attn, a) for a in ("in_proj_weight", "in_proj_bias", "out_proj", "num_heads")):
            unsupported.append(f"attention module {type(blk.attn).__name__} without a fused in-projection")
        if unsupported:
            raise LmsegError(f"{model_name}: unsupported image tower for dense features: {', '.join(unsupported)}")
        self.model = model
        self.model_name = model_name
        self.interpolation_offset = float(interpolation_offset)
        self.tokenizer = open_clip.get_tokenizer(model_name)
        cfg = open_clip.get_model_preprocess_cfg(model)
        self.mean: tuple[float, ...] = tuple(cfg.get("mean", open_clip.OPENAI_DATASET_MEAN))
        self.std: tuple[float, ...] = tuple(cfg.get("std", open_clip.OPENAI_DATASET_STD))

    # ---- architecture facts -------------------------------------------------------------

    @property
    def visual(self) -> VisionTransformer:
        """The stock open_clip image tower."""
        return self.model.visual

    @property
    def patch_size(self) -> tuple[int, int]:
        """``(ph, pw)`` pixels per token."""
        return tuple(self.visual.patch_size)

    @property
    def native_grid(self) -> tuple[int, int]:
        """The token grid the positional embedding was trained for (14x14 for ViT-B/16 at 224)."""
        return tuple(self.visual.grid_size)

    @property
    def width(self) -> int:
        """Transformer width (channels of tokens and intermediates)."""
        return self.visual.transformer.width

    @property
    def embed_dim(self) -> int:
        """Joint-space width ``D`` (of dense features and text embeddings)."""
        return self.visual.output_dim

    @property
    def num_layers(self) -> int:
        """Number of transformer blocks of the image tower."""
        return len(self.visual.transformer.resblocks)

    @property
    def num_heads(self) -> int:
        """Attention heads of the image tower's blocks."""
        return self.last_block.attn.num_heads

    @property
    def quick_gelu(self) -> bool:
        """Whether the image tower's MLPs use QuickGELU (as OpenAI's CLIP weights need)."""
        return isinstance(self.last_block.mlp.gelu, QuickGELU)

    @property
    def dtype(self) -> torch.dtype:
        """The image tower's weight dtype (inputs are cast to it)."""
        return self.visual.conv1.weight.dtype

    @property
    def last_block(self) -> nn.Module:
        """The stock last block (``ln_1``, ``attn`` with ``in_proj_weight``/``out_proj``, ``ln_2``, ``mlp``)."""
        return self.visual.transformer.resblocks[-1]

    def grid_for(self, height: int, width: int) -> tuple[int, int]:
        """The token grid ``(h, w)`` for an input of ``height`` x ``width`` pixels."""
        ph, pw = self.patch_size
        if height % ph or width % pw or height <= 0 or width <= 0:
            raise ValueError(
                f"input size {height}x{width} is not a positive multiple of the patch size {ph}x{pw}; resize or pad first"
            )
        return height // ph, width // pw

    def normalize(self, images: torch.Tensor) -> torch.Tensor:
        """Normalise ``(B, 3, H, W)`` RGB images with values in [0, 1] by CLIP's mean and std."""
        mean = images.new_tensor(self.mean).view(1, 3, 1, 1)
        std = images.new_tensor(self.std).view(1, 3, 1, 1)
        return (images - mean) / std

    # ---- image side -------------------------------------------------------------------

    def positional_embedding(self, grid: tuple[int, int]) -> torch.Tensor:
        """``(1 + h*w, width)`` positional embedding for token grid ``grid`` (bicubic resize)."""
        return interpolate_pos_embed(
            self.visual.positional_embedding, self.native_grid, grid, offset=self.interpolation_offset
        )

    def embed(self, images: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
        """Patchify and embed: the tokens entering block 0.

        Args:
            images: ``(B, 3, H, W)`` normalised images.

        Returns:
            ``(tokens, grid)``: tokens ``(B, 1 + h*w, width)`` after the class token, the
            positional embedding and ``ln_pre``; ``grid = (h, w)``.
        """
        visual = self.visual
        grid = self.grid_for(images.shape[-2], images.shape[-1])
        x = visual.conv1(images.to(self.dtype))  # (B, width, h, w)
        x = x.flatten(2).transpose(1, 2)  # (B, h*w, width)
        cls = visual.class_embedding.to(x.dtype).view(1, 1, -1).expand(x.shape[0], -1, -1)
        x = torch.cat([cls, x], dim=1) + self.positional_embedding(grid).to(x.dtype)
        x = visual.patch_dropout(x)
        return visual.ln_pre(x), grid

    def forward(self, images: torch.Tensor, *, layers: Sequence[int] = ()) -> DenseCLIPOutput:
        """Dense joint-space features, the pooled embedding and intermediate block outputs.

        Args:
            images: ``(B, 3, H, W)`` normalised images, sides multiples of the patch size.
            layers: block indices whose outputs to return (0-based; negative counts from the
                end, so -1 is the last block).

        Returns:
            A :class:`DenseCLIPOutput`.
        """
        x, grid = self.embed(images)
        take = self._absolute(layers)
        if take:
            x, found = self.visual.transformer.forward_intermediates(x, indices=sorted(set(take)))
            by_index = dict(zip(sorted(set(take)), found))
        else:
            x, by_index = self.visual.transformer(x), {}
        normed = self.visual.ln_post(x)  # (B, 1 + h*w, width)
        return DenseCLIPOutput(
            dense=self.to_map(normed[:, 1:] @ self.visual.proj, grid),
            pooled=normed[:, 0] @ self.visual.proj,
            intermediates={req: self.to_map(by_index[abs_i][:, 1:], grid) for req, abs_i in zip(layers, take)},
        )

    def forward_to_last_block(
        self, images: torch.Tensor, *, layers: Sequence[int] = ()
    ) -> tuple[torch.Tensor, tuple[int, int], dict[int, torch.Tensor]]:
        """Run blocks ``0 .. L-2`` only: the tokens that enter the last block.

        Args:
            images: ``(B, 3, H, W)`` normalised images.
            layers: indices of earlier blocks (``< L-1``, or negative) whose outputs to return.

        Returns:
            ``(tokens, grid, intermediates)``: tokens ``(B, 1 + h*w, width)`` (class token
            first), the grid ``(h, w)``, and block index -> ``(B, width, h, w)``.
        """
        x, grid = self.embed(images)
        last = self.num_layers - 1
        take = self._absolute(layers)
        if any(i >= last for i in take):
            raise ValueError(f"layers {list(layers)} include the last block ({last}), which is not run here")
        by_index: dict[int, torch.Tensor] = {}
        if last > 0:
            wanted = sorted(set(take) | {last - 1})
            x, found = self.visual.transformer.forward_intermediates(x, indices=wanted, stop_early=True)
            by_index = dict(zip(wanted, found))
        intermediates = {req: self.to_map(by_index[abs_i][:, 1:], grid) for req, abs_i in zip(layers, take)}
        return x, grid, intermediates

    def last_block_qkv(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Queries, keys and values of the last block for ``tokens`` (its stock weights).

        Args:
            tokens: ``(B, L, width)`` tokens entering the last block (any subset of positions,
                e.g. without the class token); ``ln_1`` is applied here.

        Returns:
            ``(q, k, v)``, each ``(B, heads, L, width // heads)``, unscaled (the attention of
            the stock block is ``softmax(q k^T / sqrt(head_dim)) v``).
        """
        attn = self.last_block.attn
        y = self.last_block.ln_1(tokens)
        q, k, v = F.linear(y, attn.in_proj_weight, attn.in_proj_bias).chunk(3, dim=-1)
        batch, length, _ = y.shape
        heads = attn.num_heads
        return tuple(t.reshape(batch, length, heads, -1).transpose(1, 2) for t in (q, k, v))  # type: ignore[return-value]

    def last_block_values(self, tokens: torch.Tensor) -> torch.Tensor:
        """``(B, L, width)``: the value part of the last block's in-projection of ``ln_1(tokens)``.

        The heads are the channel groups ``[h*head_dim, (h+1)*head_dim)``, so an attention that is
        the same for every head can be applied to this tensor directly.
        """
        attn = self.last_block.attn
        width = self.width
        y = self.last_block.ln_1(tokens)
        bias = attn.in_proj_bias[2 * width:] if attn.in_proj_bias is not None else None
        return F.linear(y, attn.in_proj_weight[2 * width:], bias)

    def last_block_out_proj(self, x: torch.Tensor) -> torch.Tensor:
        """The last block's attention output projection (with bias): ``(..., width)`` -> ``(..., width)``."""
        return self.last_block.attn.out_proj(x)

    def project(self, tokens: torch.Tensor) -> torch.Tensor:
        """Final norm and projection into the joint space: ``(..., width)`` -> ``(..., D)``."""
        return self.visual.ln_post(tokens) @ self.visual.proj

    @staticmethod
    def to_map(tokens: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
        """Patch tokens ``(B, h*w, C)`` (row-major) -> feature map ``(B, C, h, w)``."""
        batch, _, channels = tokens.shape
        return tokens.transpose(1, 2).reshape(batch, channels, grid[0], grid[1])

    def _absolute(self, layers: Sequence[int]) -> list[int]:
        n = self.num_layers
        out = []
        for i in layers:
            j = n + i if i < 0 else i
            if not 0 <= j < n:
                raise ValueError(f"layer index {i} is out of range for {n} blocks")
            out.append(j)
        return out

    # ---- text side --------------------------------------------------------------------

    def tokenize(self, texts: Sequence[str]) -> torch.Tensor:
        """``(N, context_length)`` int64 token ids (open_clip's tokenizer for this model)."""
        return self.tokenizer(list(texts))

    def encode_text(self, texts: Sequence[str], *, batch_size: int = 256, normalize: bool = True,
                    progress: bool | None = None) -> torch.Tensor:
        """Encode sentences with the text tower.

        Gradients flow (the text tower may be fine-tuned); wrap the call in ``torch.no_grad()``
        to build a fixed embedding cache. Without gradients the batches are written into one
        output tensor as they come (keeping each batch's output alive fragments the heap: 500 MB
        for 40,000 sentences of a tiny model), so memory does not grow with the vocabulary.

        Args:
            texts: N sentences (e.g. "a photo of a cat.").
            batch_size: sentences per forward pass.
            normalize: L2-normalise each embedding (the default, as for cosine similarity).
            progress: show the progress bar (:mod:`lmseg.io.progress`); None: on a terminal,
                for at least :data:`PROGRESS_MIN_TEXTS` sentences (a large vocabulary's
                template ensembles: 5,000 classes are 400,000 sentences, minutes on a CPU).

        Returns:
            ``(N, D)`` embeddings, model dtype, on the model's device.
        """
        if not texts:
            raise ValueError("no texts to encode")
        device = self.visual.conv1.weight.device
        shown = (None if len(texts) >= PROGRESS_MIN_TEXTS else False) if progress is None else progress
        parts: list[torch.Tensor] = []  # with gradients; without, batches are written into one output
        out = None
        with progress_bar(len(texts), "encoding class names", unit="text", enabled=shown) as bar:
            for i in range(0, len(texts), batch_size):
                part = self.text_features(self.tokenize(texts[i:i + batch_size]).to(device), normalize)
                if torch.is_grad_enabled():
                    parts.append(part)
                else:
                    if out is None:
                        out = part.new_empty(len(texts), part.shape[-1])
                    out[i:i + part.shape[0]] = part
                bar.update(part.shape[0])
        return torch.cat(parts) if parts else out

    def text_features(self, tokens: torch.Tensor, normalize: bool) -> torch.Tensor:
        """open_clip's ``CLIP.encode_text`` on ``(B, context_length)`` tokens, run only up to the
        longest sentence's end token.

        The text tower's attention is causal and the embedding is taken at the end token, so the
        positions after the longest sentence never reach any pooled feature: cutting them gives
        the same embeddings (up to floating-point rounding) for a fraction of the work (a class
        sentence is about 10 of CLIP's 77 positions). Towers that pool otherwise run whole.
        """
        model = self.model
        if getattr(model, "text_pool_type", None) != "argmax" or not hasattr(model, "attn_mask"):
            return model.encode_text(tokens, normalize=normalize)
        length = int(tokens.argmax(dim=-1).max()) + 1
        tokens = tokens[:, :length]
        cast = model.transformer.get_cast_dtype()
        x = model.token_embedding(tokens).to(cast) + model.positional_embedding[:length].to(cast)
        x = model.ln_final(model.transformer(x, attn_mask=model.attn_mask[:length, :length]))
        x = x[torch.arange(x.shape[0], device=x.device), tokens.argmax(dim=-1)]
        if model.text_projection is not None:
            x = model.text_projection(x) if isinstance(model.text_projection, nn.Linear) else x @ model.text_projection
        return F.normalize(x, dim=-1) if normalize else x
