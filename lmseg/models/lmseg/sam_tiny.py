"""A reduced, randomly initialised SAM image encoder (``sam_model="tiny"``), for tests only.

It is segment-anything's own ``ImageEncoderViT`` (relative positions, windowed blocks, a global
last block, the 256-channel neck) with small widths; its outputs are meaningless.
"""

from __future__ import annotations

from functools import partial

from segment_anything.modeling import ImageEncoderViT, MaskDecoder, PromptEncoder, Sam, TwoWayTransformer
from torch import nn


def build_tiny_sam(img_size: int = 64) -> Sam:
    """A stock ``Sam`` with a 2-block, 32-wide encoder on an ``img_size`` canvas (patch 16)."""
    grid = img_size // 16
    encoder = ImageEncoderViT(
        img_size=img_size, patch_size=16, embed_dim=32, depth=2, num_heads=2, mlp_ratio=2.0, out_chans=256,
        qkv_bias=True, norm_layer=partial(nn.LayerNorm, eps=1e-6), use_rel_pos=True, window_size=2,
        global_attn_indexes=(1,),
    )
    prompt = PromptEncoder(
        embed_dim=256, image_embedding_size=(grid, grid), input_image_size=(img_size, img_size), mask_in_chans=4
    )
    decoder = MaskDecoder(
        num_multimask_outputs=3,
        transformer=TwoWayTransformer(depth=1, embedding_dim=256, mlp_dim=32, num_heads=8),
        transformer_dim=256, iou_head_depth=2, iou_head_hidden_dim=32,
    )
    return Sam(encoder, prompt, decoder, pixel_mean=[123.675, 116.28, 103.53], pixel_std=[58.395, 57.12, 57.375])
