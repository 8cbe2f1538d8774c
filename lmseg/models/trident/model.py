"""The pure Trident module: CLIP + DINO + SAM tensors in, per-query cosine maps out.

:class:`TridentModel` holds the three stock backbones (:class:`~lmseg.backbones.clip.DenseCLIP`,
:class:`~lmseg.backbones.dino.DenseDINO`, :class:`~lmseg.backbones.sam.SamEncoder`) and runs
Trident steps 3-10 (:mod:`lmseg.models.trident`) on one image:

1. windows of the CLIP-normalised image (:mod:`lmseg.inference.tiler`), batched through CLIP blocks
   ``0..L-2`` and through DINO (re-normalised to ImageNet statistics);
2. the last CLIP block as DINO-proxy attention (:mod:`.proxy_attention`);
3. splicing into one canvas, bilinear to the SAM valid grid;
4. SAM's filtered last-block attention aggregates the canvas (:mod:`.sam_affinity`), one
   affinity per SAM input (two for Cityscapes' halves);
5. CLIP's ``ln_post`` and ``proj``: joint-space tokens; the cosines with the text embeddings
   are the predictor's, in chunks of classes (:mod:`.classify`).

Image I/O, resizing, vocabularies and probabilities are the predictor's job
(:mod:`.predictor`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from lmseg.backbones.clip import DenseCLIP
from lmseg.backbones.dense_vit import DenseViT
from lmseg.backbones.dino import DenseDINO
from lmseg.backbones.sam import SamEncoder, SamFeatures
from lmseg.inference.tiler import crop_windows, stitch, token_boxes, window_grid
from lmseg.models.trident.config import CLIP_MEAN, CLIP_MEAN_255, CLIP_STD, CLIP_STD_255, TridentConfig
from lmseg.models.trident.proxy_attention import proxy_attention_weights, values_on_grid
from lmseg.models.trident.sam_affinity import aggregate, sam_affinity


@dataclass(frozen=True)
class TridentTokens:
    """What :meth:`TridentModel.forward` gives: the image side of the cosines.

    Attributes:
        tokens: ``(gh * gw, D)`` joint-space tokens (after ``ln_post`` and ``proj``), row-major
            on the SAM grid (halves side by side).
        grid: ``(gh, gw)``.
        sam_features: the SAM features of each input (image embeddings, for refinement prompts).
    """

    tokens: torch.Tensor
    grid: tuple[int, int]
    sam_features: list[SamFeatures]


@dataclass(frozen=True)
class SamInput:
    """One SAM input: a preprocessed canvas and the resized image size inside it.

    Attributes:
        canvas: ``(1, 3, S, S)`` from ``SamEncoder.preprocess_numpy`` (= ``SamPredictor.set_image``).
        input_hw: ``(h, w)`` of the resized image in the canvas.
    """

    canvas: torch.Tensor
    input_hw: tuple[int, int]


class TridentModel(nn.Module):
    """Trident's dense features (training-free).

    Args:
        clip: DenseCLIP with ``interpolation_offset=0.1`` for the public positional-embedding
            convention.
        dino: the spatial backbone: DenseDINO (ViT-B/16 DINO) with ``interpolation_offset=0.1``
            as published, or a :class:`~lmseg.backbones.dense_vit.DenseViT` (DINOv2, DINOv3,
            C-RADIO): anything with ``normalize`` (RGB in [0, 1]), ``patch_size`` and a
            ``(B, C, h, w)`` forward.
        sam: SamEncoder (its last block must use global attention).
        config: the method's constants.
        refiner: a :class:`~lmseg.backbones.sam2.Sam2Encoder` for the refinement prompts, or
            None to prompt ``sam`` (as published).
    """

    def __init__(self, clip: DenseCLIP, dino: DenseDINO | DenseViT, sam: SamEncoder, config: TridentConfig,
                 refiner: nn.Module | None = None) -> None:
        super().__init__()
        self.clip = clip
        self.dino = dino
        self.sam = sam
        self.refiner = refiner
        self.config = config
        patch = self.clip.patch_size[0]
        if config.window % patch or config.stride % patch or config.window % self.dino.patch_size[0]:
            raise ValueError(
                f"window {config.window} and stride {config.stride} must be multiples of the CLIP patch {patch}, "
                f"and the window a multiple of the DINO patch {self.dino.patch_size[0]}"
            )

    @property
    def patch(self) -> int:
        """CLIP pixels per token (16 for ViT-B/16, 14 for ViT-H/14)."""
        return int(self.clip.patch_size[0])

    @property
    def max_aspect_ratio(self) -> float:
        """The most elongated image this model can run.

        SAM sees the image with sides rounded up to multiples of 16, resized so its long side
        fills the ``img_size`` canvas; its short side must keep at least one row of the
        ``img_size / 16`` token grid, which holds up to an aspect ratio of that grid size (64
        for SAM's 1024 canvas); half of it when the halves go to SAM separately.
        """
        grid = self.sam.img_size / self.sam.patch_size
        return grid / 2 if self.config.split_halves else grid

    # ---- windows ---------------------------------------------------------------------------

    def dino_input(self, windows: torch.Tensor) -> torch.Tensor:
        """CLIP-normalised windows (0-255 statistics) -> ImageNet-normalised, as the public code.

        The public code undoes CLIP's normalisation with the unrounded [0, 1] statistics (its
        ``UnNormalize``) and applies ImageNet's.
        """
        mean = windows.new_tensor(CLIP_MEAN).view(1, 3, 1, 1)
        std = windows.new_tensor(CLIP_STD).view(1, 3, 1, 1)
        return self.dino.normalize(windows.float() * std + mean)

    @torch.no_grad()
    def window_tokens(self, windows: torch.Tensor) -> torch.Tensor:
        """Proxy-attention outputs of the windows of one image.

        Args:
            windows: ``(B, 3, s, s)`` CLIP-normalised windows, all of one image (the proxy
                attention's mean similarity is taken over all of them).

        Returns:
            ``(B, width, h, w)`` float32 outputs of the replaced last block (after ``out_proj``,
            before ``ln_post``) on the DINO token grid ``(h, w)``.
        """
        batch = self.config.window_batch
        dino_maps, values, clip_grid = [], [], None
        for start in range(0, windows.shape[0], batch):
            chunk = windows[start:start + batch]
            dino_maps.append(self.dino(self.dino_input(chunk)).float())
            tokens, clip_grid, _ = self.clip.forward_to_last_block(chunk.to(self.clip.dtype))
            values.append(self.clip.last_block_values(tokens[:, 1:]))
        dino_map = torch.cat(dino_maps)
        dino_grid = tuple(dino_map.shape[-2:])
        weights = proxy_attention_weights(dino_map, self.config.beta, self.config.gamma)  # (B, L, L) float32
        outputs = []
        for start in range(0, windows.shape[0], batch):
            v = values_on_grid(values[start // batch], clip_grid, dino_grid)
            mixed = weights[start:start + v.shape[0]].to(v.dtype) @ v
            outputs.append(self.clip.last_block_out_proj(mixed).float())
        out = torch.cat(outputs)  # (B, L, width)
        return out.transpose(1, 2).reshape(out.shape[0], -1, *dino_grid)

    @torch.no_grad()
    def spliced_canvas(self, image: torch.Tensor) -> torch.Tensor:
        """Windows -> proxy attention -> canvas.

        Args:
            image: ``(1, 3, H, W)`` CLIP-normalised, sides multiples of the CLIP patch and at
                least the window (see :func:`~lmseg.models.trident.preprocess.fit_to_patches`).

        Returns:
            ``(1, width, H // patch * r, W // patch * r)`` float32 canvas (``r`` = 1 for the
            published models; see :meth:`_ratio`).
        """
        height, width = image.shape[-2:]
        boxes = window_grid(height, width, self.config.window, self.config.stride)
        maps = self.window_tokens(crop_windows(image, boxes))
        clip_grid = (self.config.window // self.patch,) * 2
        ratio = self._ratio(tuple(maps.shape[-2:]), clip_grid)
        target = (clip_grid[0] * ratio, clip_grid[1] * ratio)
        if tuple(maps.shape[-2:]) != target:
            maps = F.interpolate(maps, size=target, mode="bilinear", align_corners=False)
        canvas_hw = (height // self.patch * ratio, width // self.patch * ratio)
        return stitch(maps, token_boxes(boxes, self.patch, ratio), canvas_hw)[None]

    @staticmethod
    def _ratio(dino_grid: tuple[int, int], clip_grid: tuple[int, int]) -> int:
        """Canvas cells per CLIP token, as the public code picks it (1 unless DINO is finer)."""
        if dino_grid[1] % clip_grid[1] != 0:
            return max(int(round(dino_grid[0] / clip_grid[0])), 1)
        return dino_grid[1] // clip_grid[1]

    # ---- SAM -----------------------------------------------------------------------------

    @torch.no_grad()
    def sam_affinity(self, sam_input: SamInput) -> tuple[torch.Tensor, tuple[int, int], SamFeatures]:
        """SAM encoder once, then the filtered affinity on the valid grid (floor rounding).

        Returns:
            ``(A, (gh, gw), features)``: ``A`` is ``(gh*gw, gh*gw)`` float32.
        """
        feats = self.sam.encode(sam_input.canvas, sam_input.input_hw, last_attention=True)
        grid = feats.valid_grid("floor")
        cfg = self.config
        affinity = sam_affinity(
            feats.valid_attention("floor")[0], feats.valid_values("floor")[0], cos_fac=cfg.cos_fac,
            refine_neg_cos=cfg.refine_neg_cos, neg_replacement=cfg.neg_cos_replacement,
            max_thresh=cfg.max_cos_thresh,
        )
        feats.attention = feats.values = None  # free the (heads, 4096, 4096) tensor
        return affinity, grid, feats

    # ---- all together --------------------------------------------------------------------

    @torch.no_grad()
    def forward(self, image: torch.Tensor, sam_inputs: list[SamInput]) -> TridentTokens:
        """Joint-space tokens on the SAM grid (the text side is the predictor's, in chunks).

        Args:
            image: ``(1, 3, H, W)`` CLIP-normalised image (see :meth:`spliced_canvas`).
            sam_inputs: one SAM input, or two (left and right halves; the canvas is split at
                its middle column and the results concatenated along the width).
        """
        canvas = self.spliced_canvas(image)
        if len(sam_inputs) == 1:
            parts = [canvas]
        elif len(sam_inputs) == 2:
            middle = canvas.shape[-1] // 2
            parts = [canvas[..., :middle], canvas[..., middle:]]
        else:
            raise ValueError(f"expected 1 or 2 SAM inputs, got {len(sam_inputs)}")
        outputs, features = [], []
        for part, sam_input in zip(parts, sam_inputs):
            affinity, grid, feats = self.sam_affinity(sam_input)
            resized = F.interpolate(part, size=grid, mode="bilinear", align_corners=False)
            outputs.append(aggregate(affinity, resized).reshape(*grid, -1))  # (gh, gw, width)
            features.append(feats)
        tokens = torch.cat(outputs, dim=1)  # halves side by side
        gh, gw = tokens.shape[:2]
        projected = self.clip.project(tokens.reshape(gh * gw, -1).to(self.clip.dtype))
        return TridentTokens(projected, (gh, gw), features)


__all__ = ["CLIP_MEAN_255", "CLIP_STD_255", "SamInput", "TridentModel", "TridentTokens"]
