"""The SAM 3 image model assembled from the ``sam3`` package's own classes, at any size.

``sam3.model_builder.build_sam3_image_model`` hard-codes one size (1008 pixels, ViT-L-like
trunk, 6 + 6 DETR layers, 200 queries) and, on a machine without CUDA, cannot even be built:
two constructors place tensors on ``"cuda"`` (``PositionEmbeddingSine(precompute_resolution=
1008)`` and ``TransformerDecoder(resolution=1008, stride=14)``: facebookresearch/sam3 issues
#587 and #550). :func:`build_sam3_image` builds the same module tree from the same classes with
the same arguments, from a typed :class:`Sam3Arch`, except for those two caches, which are
left to fill lazily on first use (their values are the same; only the precomputation is
skipped). The tests check that the official architecture's state dict (names and shapes)
equals ``build_sam3_image_model``'s, and that the outputs agree with the package's
``Sam3Processor`` on the same weights.

Nothing of sam3 is copied or changed: only constructor arguments are written here, as
``model_builder`` writes them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from torch import nn


@dataclass(frozen=True)
class Sam3Arch:
    """Sizes of a SAM 3 image model (defaults: the released model, ``model_builder``'s values).

    Attributes:
        name: lmseg's name.
        img_size: square input side in pixels (1008), a multiple of ``patch_size`` (14). The
            ViT's RoPE tables are built for it.
        embed_dim: ViT width (1024).
        depth: ViT blocks (32).
        num_heads: ViT heads (16).
        mlp_ratio: ViT MLP ratio (4.625).
        global_att_blocks: ViT blocks with global attention (7, 15, 23, 31); the others use
            ``window_size`` windows.
        window_size: ViT attention window in tokens (24).
        text_width: text encoder width (1024).
        text_heads: text encoder heads (16).
        text_layers: text encoder blocks (24).
        encoder_layers: layers of the text-conditioned image encoder (6).
        decoder_layers: layers of the DETR-style decoder (6).
        num_queries: object queries (200).
    """

    name: str = "sam3"
    img_size: int = 1008
    embed_dim: int = 1024
    depth: int = 32
    num_heads: int = 16
    mlp_ratio: float = 4.625
    global_att_blocks: tuple[int, ...] = (7, 15, 23, 31)
    window_size: int = 24
    text_width: int = 1024
    text_heads: int = 16
    text_layers: int = 24
    encoder_layers: int = 6
    decoder_layers: int = 6
    num_queries: int = 200

    patch_size = 14  #: fixed by the released weights
    d_model = 256  #: fixed throughout the package


#: The released model, and a reduced one for tests (random weights only; 21M parameters, the
#: 256-wide DETR parts being fixed by the package).
SAM3_ARCHS: dict[str, Sam3Arch] = {
    "sam3": Sam3Arch(),
    "sam3_test_tiny": Sam3Arch(
        name="sam3_test_tiny", img_size=112, embed_dim=64, depth=2, num_heads=2, mlp_ratio=2.0,
        global_att_blocks=(1,), text_width=64, text_heads=2, text_layers=2, encoder_layers=1, decoder_layers=1,
        num_queries=16,
    ),
}


def clip_bpe_path() -> str:
    """The CLIP byte-pair vocabulary SAM 3's tokenizer reads.

    The ``sam3`` wheel does not ship it (its default path, ``<site-packages>/assets/
    bpe_simple_vocab_16e6.txt.gz``, does not exist); it is the standard CLIP vocabulary, the
    file open_clip ships.
    """
    import open_clip

    return os.path.join(os.path.dirname(open_clip.__file__), "bpe_simple_vocab_16e6.txt.gz")


def _mha(*, dropout: float, batch_first: bool | None = None) -> nn.Module:
    from sam3.model.model_misc import MultiheadAttentionWrapper

    kwargs = {} if batch_first is None else {"batch_first": batch_first}
    return MultiheadAttentionWrapper(num_heads=8, dropout=dropout, embed_dim=256, **kwargs)


def vision_backbone(arch: Sam3Arch) -> nn.Module:
    """The ViT trunk and its neck (``Sam3DualViTDetNeck``), as the released builder makes them."""
    from sam3.model.necks import Sam3DualViTDetNeck
    from sam3.model.position_encoding import PositionEmbeddingSine
    from sam3.model.vitdet import ViT

    trunk = ViT(
        img_size=arch.img_size, pretrain_img_size=336, patch_size=arch.patch_size, embed_dim=arch.embed_dim,
        depth=arch.depth, num_heads=arch.num_heads, mlp_ratio=arch.mlp_ratio, norm_layer="LayerNorm",
        drop_path_rate=0.1, qkv_bias=True, use_abs_pos=True, tile_abs_pos=True,
        global_att_blocks=tuple(arch.global_att_blocks), rel_pos_blocks=(), use_rope=True, use_interp_rope=True,
        window_size=arch.window_size, pretrain_use_cls_token=True, retain_cls_token=False, ln_pre=True,
        ln_post=False, return_interm_layers=False, bias_patch_embed=False, compile_mode=None,
    )
    # precompute_resolution=None: the released builder precomputes this cache on "cuda"
    position = PositionEmbeddingSine(num_pos_feats=256, normalize=True, scale=None, temperature=10000,
                                     precompute_resolution=None)
    return Sam3DualViTDetNeck(position_encoding=position, d_model=256, scale_factors=[4.0, 2.0, 1.0, 0.5],
                              trunk=trunk, add_sam2_neck=False)


def _text(arch: Sam3Arch, bpe_path: str | None) -> nn.Module:
    from sam3.model.text_encoder_ve import VETextEncoder
    from sam3.model.tokenizer_ve import SimpleTokenizer

    tokenizer = SimpleTokenizer(bpe_path=bpe_path or clip_bpe_path())
    return VETextEncoder(tokenizer=tokenizer, d_model=256, width=arch.text_width, heads=arch.text_heads,
                         layers=arch.text_layers)


def _transformer(arch: Sam3Arch) -> nn.Module:
    from sam3.model.decoder import TransformerDecoder, TransformerDecoderLayer
    from sam3.model.encoder import TransformerEncoderFusion, TransformerEncoderLayer
    from sam3.model.model_misc import TransformerWrapper

    encoder_layer = TransformerEncoderLayer(
        activation="relu", d_model=256, dim_feedforward=2048, dropout=0.1, pos_enc_at_attn=True,
        pos_enc_at_cross_attn_keys=False, pos_enc_at_cross_attn_queries=False, pre_norm=True,
        self_attention=_mha(dropout=0.1, batch_first=True), cross_attention=_mha(dropout=0.1, batch_first=True),
    )
    encoder = TransformerEncoderFusion(
        layer=encoder_layer, num_layers=arch.encoder_layers, d_model=256, num_feature_levels=1, frozen=False,
        use_act_checkpoint=True, add_pooled_text_to_img_feat=False, pool_text_with_mask=True,
    )
    decoder_layer = TransformerDecoderLayer(
        activation="relu", d_model=256, dim_feedforward=2048, dropout=0.1, cross_attention=_mha(dropout=0.1),
        n_heads=8, use_text_cross_attention=True,
    )
    # resolution=None, stride=None: the released builder precomputes the box-bias coordinates on
    # "cuda"; without them they are computed (identically) on the first forward
    decoder = TransformerDecoder(
        layer=decoder_layer, num_layers=arch.decoder_layers, num_queries=arch.num_queries, return_intermediate=True,
        box_refine=True, num_o2m_queries=0, dac=True, boxRPB="log", d_model=256, frozen=False,
        interaction_layer=None, dac_use_selfatt_ln=True, resolution=None, stride=None, use_act_checkpoint=True,
        presence_token=True,
    )
    return TransformerWrapper(encoder=encoder, decoder=decoder, d_model=256)


def _scoring() -> nn.Module:
    from sam3.model.model_misc import MLP, DotProductScoring

    prompt_mlp = MLP(input_dim=256, hidden_dim=2048, output_dim=256, num_layers=2, dropout=0.1, residual=True,
                     out_norm=nn.LayerNorm(256))
    return DotProductScoring(d_model=256, d_proj=256, prompt_mlp=prompt_mlp)


def _segmentation_head() -> nn.Module:
    from sam3.model.maskformer_segmentation import PixelDecoder, UniversalSegmentationHead

    pixel_decoder = PixelDecoder(num_upsampling_stages=3, interpolation_mode="nearest", hidden_dim=256,
                                 compile_mode=None)
    return UniversalSegmentationHead(
        hidden_dim=256, upsampling_stages=3, aux_masks=False, presence_head=False, dot_product_scorer=None,
        act_ckpt=True, cross_attend_prompt=_mha(dropout=0), pixel_decoder=pixel_decoder,
    )


def _geometry_encoder() -> nn.Module:
    from sam3.model.encoder import TransformerEncoderLayer
    from sam3.model.geometry_encoders import SequenceGeometryEncoder
    from sam3.model.position_encoding import PositionEmbeddingSine

    layer = TransformerEncoderLayer(
        activation="relu", d_model=256, dim_feedforward=2048, dropout=0.1, pos_enc_at_attn=False, pre_norm=True,
        self_attention=_mha(dropout=0.1, batch_first=False), pos_enc_at_cross_attn_queries=False,
        pos_enc_at_cross_attn_keys=True, cross_attention=_mha(dropout=0.1, batch_first=False),
    )
    position = PositionEmbeddingSine(num_pos_feats=256, normalize=True, scale=None, temperature=10000,
                                     precompute_resolution=None)
    return SequenceGeometryEncoder(
        pos_enc=position, encode_boxes_as_points=False, points_direct_project=True, points_pool=True,
        points_pos_enc=True, boxes_direct_project=True, boxes_pool=True, boxes_pos_enc=True, d_model=256,
        num_layers=3, layer=layer, use_act_ckpt=True, add_cls=True, add_post_encode_proj=True,
    )


def build_sam3_image(arch: Sam3Arch, *, bpe_path: str | None = None) -> nn.Module:
    """A ``sam3`` ``Sam3Image`` (the image detector, no tracker) of ``arch``'s sizes, random weights, eval mode.

    The text encoder's ``positional_embedding`` and ``text_projection`` are left as the
    package leaves them (``torch.empty``, set only by a checkpoint); see
    :func:`lmseg.backbones.sam3.init_untrained_text_`.

    Args:
        arch: the sizes.
        bpe_path: the CLIP BPE vocabulary (default :func:`clip_bpe_path`).
    """
    from sam3.model.sam3_image import Sam3Image
    from sam3.model.vl_combiner import SAM3VLBackbone

    if arch.img_size % arch.patch_size:
        raise ValueError(f"SAM 3 img_size must be a multiple of {arch.patch_size}, got {arch.img_size}")
    backbone = SAM3VLBackbone(visual=vision_backbone(arch), text=_text(arch, bpe_path), scalp=1)
    model = Sam3Image(
        backbone=backbone, transformer=_transformer(arch), input_geometry_encoder=_geometry_encoder(),
        segmentation_head=_segmentation_head(), num_feature_levels=1, o2m_mask_predict=True,
        dot_prod_scoring=_scoring(), use_instance_query=False, multimask_output=True,
        inst_interactive_predictor=None, matcher=None,
    )
    return model.eval()
