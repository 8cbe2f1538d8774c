"""A reduced, randomly initialised SAM, for tests and plumbing demos only (outputs are meaningless).

It is segment-anything's own ``Sam`` (image encoder with relative positions, windowed blocks and
a global block, the neck, the prompt encoder and the mask decoder) with tiny widths, so every
code path of the real model runs in milliseconds on a CPU.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

import torch
from segment_anything.modeling import ImageEncoderViT, MaskDecoder, PromptEncoder, Sam, TwoWayTransformer
from torch import nn

SAM_PIXEL_MEAN = (123.675, 116.28, 103.53)
SAM_PIXEL_STD = (58.395, 57.12, 57.375)


def build_tiny_sam(
    img_size: int = 64,
    *,
    window_size: int = 2,
    global_attn_indexes: Sequence[int] = (1,),
    neck_channels: int = 256,
    decoder_heads: int = 8,
    iou_hidden: int = 32,
    random_positions: bool = False,
) -> Sam:
    """A stock ``Sam`` with a 2-block, 32-wide encoder (patch 16) on an ``img_size`` canvas.

    Args:
        img_size: canvas side in pixels (the token grid is ``img_size // 16``).
        window_size: window of the non-global encoder blocks, in tokens.
        global_attn_indexes: encoder blocks with global attention.
        neck_channels: channels of the image embedding (256 in the real SAM), also the width
            of the prompt encoder and mask decoder.
        decoder_heads: attention heads of the mask decoder's transformer.
        iou_hidden: hidden width of the IoU prediction head.
        random_positions: fill the positional and relative-position tables with N(0, 0.5)
            (the library initialises them to zero), so that tests exercise those terms.

    Weights come from torch's global RNG: seed it first for a reproducible model.
    """
    grid = img_size // 16
    encoder = ImageEncoderViT(
        img_size=img_size, patch_size=16, embed_dim=32, depth=2, num_heads=2, mlp_ratio=2.0, out_chans=neck_channels,
        qkv_bias=True, norm_layer=partial(nn.LayerNorm, eps=1e-6), use_rel_pos=True, window_size=window_size,
        global_attn_indexes=tuple(global_attn_indexes),
    )
    if random_positions:
        with torch.no_grad():
            for block in encoder.blocks:
                block.attn.rel_pos_h.normal_(std=0.5)
                block.attn.rel_pos_w.normal_(std=0.5)
            encoder.pos_embed.normal_(std=0.5)
    prompt = PromptEncoder(
        embed_dim=neck_channels, image_embedding_size=(grid, grid), input_image_size=(img_size, img_size),
        mask_in_chans=4,
    )
    decoder = MaskDecoder(
        num_multimask_outputs=3,
        transformer=TwoWayTransformer(depth=1, embedding_dim=neck_channels, mlp_dim=32, num_heads=decoder_heads),
        transformer_dim=neck_channels, iou_head_depth=2, iou_head_hidden_dim=iou_hidden,
    )
    return Sam(encoder, prompt, decoder, pixel_mean=list(SAM_PIXEL_MEAN), pixel_std=list(SAM_PIXEL_STD))
