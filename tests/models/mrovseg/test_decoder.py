"""The masked-attention decoder against an explicit masked softmax; the empty-mask rule; the class head."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from lmseg.models.mrovseg.decoder import DecoderLayer, QueryHead, attention_mask, sine_position_encoding
from tests.tolerances import fp32_tolerance


def test_attention_mask_threshold_resize_and_empty_rule() -> None:
    logits = torch.full((1, 3, 4, 4), -5.0)
    logits[0, 0, :2, :2] = 5.0  # query 0: top-left quarter
    logits[0, 1] = 5.0  # query 1: everywhere
    # query 2: empty -> may attend everywhere
    blocked = attention_mask(logits, (2, 2), heads=2, threshold=0.5)
    assert blocked.shape == (2, 3, 4) and blocked.dtype == torch.bool
    assert blocked[0, 0].tolist() == [False, True, True, True]
    assert not blocked[0, 1].any() and not blocked[0, 2].any()
    assert torch.equal(blocked[0], blocked[1])  # repeated per head


def test_masked_cross_attention_equals_explicit_masked_softmax() -> None:
    torch.manual_seed(0)
    d, heads, q_n, m_n = 8, 2, 3, 5
    layer = DecoderLayer(d, heads, 16).eval()
    q, qpos = torch.randn(1, q_n, d), torch.randn(1, q_n, d)
    mem, mpos = torch.randn(1, m_n, d), torch.randn(1, m_n, d)
    allowed = torch.tensor([[1, 0, 1, 0, 0], [0, 0, 0, 0, 1], [1, 1, 1, 1, 1]], dtype=torch.bool)
    blocked = (~allowed)[None].repeat(heads, 1, 1)
    got = layer.cross(q + qpos, mem + mpos, mem, attn_mask=blocked, need_weights=False)[0]

    w, b = layer.cross.in_proj_weight, layer.cross.in_proj_bias
    qq = (q + qpos) @ w[:d].T + b[:d]
    kk = (mem + mpos) @ w[d:2 * d].T + b[d:2 * d]
    vv = mem @ w[2 * d:].T + b[2 * d:]
    hd = d // heads
    outs = []
    for h in range(heads):
        s = slice(h * hd, (h + 1) * hd)
        scores = qq[0, :, s] @ kk[0, :, s].T / math.sqrt(hd)
        scores = scores.masked_fill(~allowed, float("-inf"))
        outs.append(scores.softmax(-1) @ vv[0, :, s])
    ref = layer.cross.out_proj(torch.cat(outs, -1))[None]
    # in-projections (8 terms), scores (4), softmax (5 keys), values (5), out-projection (8): depth 5
    torch.testing.assert_close(got, ref, **fp32_tolerance(terms=8, depth=5))
    # the whole layer: post-norm residuals around cross-attention, self-attention and FFN
    x = layer.norms[0](q + ref)
    sa = layer.self_attn(x + qpos, x + qpos, x, need_weights=False)[0]
    x = layer.norms[1](x + sa)
    x = layer.norms[2](x + layer.ffn(x))
    # the cross-attention above (5), 3 norms, self-attention (5), the FFN (2; its 16-term fan-in the longest): depth 15
    torch.testing.assert_close(layer(q, qpos, mem, mpos, blocked), x, **fp32_tolerance(terms=16, depth=15))


def test_empty_mask_query_attends_everywhere() -> None:
    torch.manual_seed(1)
    layer = DecoderLayer(8, 2, 16).eval()
    q, qpos, mem, mpos = torch.randn(1, 2, 8), torch.randn(1, 2, 8), torch.randn(1, 6, 8), torch.randn(1, 6, 8)
    logits = torch.full((1, 2, 2, 3), -9.0)  # both masks empty
    blocked = attention_mask(logits, (2, 3), heads=2, threshold=0.5)
    unmasked = layer(q, qpos, mem, mpos, torch.zeros(2, 2, 6, dtype=torch.bool))
    # an all-False mask either way: the same operations on the same values, exact
    torch.testing.assert_close(layer(q, qpos, mem, mpos, blocked), unmasked, rtol=0, atol=0)


def test_query_head_cosine_logits_and_masks() -> None:
    torch.manual_seed(2)
    head = QueryHead(8, 6, 4, logit_scale_init=1 / 0.07)
    q = torch.randn(2, 3, 8)
    mask_features = torch.randn(2, 6, 5, 7)
    text = torch.randn(4, 1, 4)
    pred = head(q, mask_features, text)
    x = head.norm(q)
    e = F.normalize(head.class_proj(x), dim=-1)
    t = F.normalize(text[:, 0], dim=-1)
    v = F.normalize(head.void, dim=0)
    ref = (1 / 0.07) * torch.cat([e @ t.T, (e @ v)[..., None]], dim=-1)
    # LayerNorm (8 terms), projection (8), 2 L2 norms, cosine (4): depth 5; the logits are cosines x 1/0.07
    torch.testing.assert_close(pred.class_logits, ref, **fp32_tolerance(terms=8, depth=5, scale=1 / 0.07))
    ref_masks = torch.einsum("bqc,bchw->bqhw", head.mask_mlp(x), mask_features)
    # one 6-term product per pixel; scale: the largest sum of the products' magnitudes
    # Measured (2026-12-07, shared 2-core CPU): 0 (atol 1.4e-4)
    magnitudes = torch.einsum("bqc,bchw->bqhw", head.mask_mlp(x).abs(), mask_features.abs())
    torch.testing.assert_close(pred.mask_logits, ref_masks, **fp32_tolerance(terms=6, scale=float(magnitudes.max())))
    # P prompt channels: cosine per channel, averaged
    text_p = torch.randn(4, 3, 4)
    cos = torch.stack([e @ F.normalize(text_p[:, p], dim=-1).T for p in range(3)]).mean(0)
    torch.testing.assert_close(head.class_logits(head.class_proj(x), text_p)[..., :4], (1 / 0.07) * cos,
                               **fp32_tolerance(terms=8, depth=6, scale=1 / 0.07))  # + the mean of 3 channels


def test_sine_position_encoding() -> None:
    pos = sine_position_encoding(3, 4, 8)
    assert pos.shape == (12, 8)
    y = (torch.arange(3) + 1) / 3 * 2 * math.pi
    # sin of an angle up to 2 pi computed in 2 steps: an absolute error of 2 pi x the relative one
    torch.testing.assert_close(pos.view(3, 4, 8)[:, 0, 0], y.sin(), **fp32_tolerance(terms=1, depth=2, scale=2 * math.pi))
    assert torch.equal(pos.view(3, 4, 8)[:, 0, :4], pos.view(3, 4, 8)[:, 3, :4])  # y half constant along x


def test_decoder_cycles_levels_coarse_to_fine() -> None:
    from .conftest import tiny_model

    model = tiny_model()
    seen = []
    for layer in model.decoder.layers:
        layer.cross.register_forward_hook(lambda m, args, kwargs, out: seen.append(args[1].shape[1]), with_kwargs=True)
    with torch.no_grad():
        out = model(torch.rand(1, 3, 128, 128), torch.randn(3, 1, 32))
    assert seen == [4 * 4, 8 * 8, 16 * 16]  # strides 32, 16, 8
    assert len(out.predictions) == model.config.decoder_layers + 1
