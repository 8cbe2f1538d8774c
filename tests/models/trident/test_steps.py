"""Each Trident step against an explicit, straightforward computation (random inputs)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from lmseg.inference.tiler import token_boxes
from lmseg.models.trident.classify import class_probabilities, query_cosines, with_background
from lmseg.models.trident.preprocess import fit_to_patches, rescale_size, round_up_for_sam
from lmseg.models.trident.proxy_attention import proxy_attention_weights, values_on_grid
from lmseg.models.trident.sam_affinity import aggregate, sam_affinity
from tests.tolerances import fp32_tolerance

# ---- proxy attention ---------------------------------------------------------------------

def _proxy_tolerance(tokens: int, beta: float, gamma: float) -> dict[str, float]:
    """Proxy attention weights over ``tokens`` token pairs (all windows) computed two ways: 8-dim
    cosines, their mean over the ``tokens`` pairs (the longest), the shifted logits, the exponentials
    and the sum over a row (depth 4); an absolute error e of a cosine moves a probability by
    gamma (1 + beta) e relative to it (the logit and the mean it is shifted by)."""
    return {k: v * gamma * (1 + beta) for k, v in fp32_tolerance(terms=tokens, depth=4).items()}


def test_proxy_attention_explicit_formula() -> None:
    g = torch.Generator().manual_seed(0)
    feats = torch.randn(3, 8, 3, 4, generator=g) + 0.5  # 3 windows, 12 tokens each
    beta, gamma = 1.2, 3.0
    proxy = _proxy_tolerance(3 * 12 * 12, beta, gamma)
    got = proxy_attention_weights(feats, beta, gamma)
    tokens = [[feats[b, :, i // 4, i % 4].double() for i in range(12)] for b in range(3)]
    sims = [[[float(u @ v / (u.norm() * v.norm())) for v in ts] for u in ts] for ts in tokens]
    m = sum(s for window in sims for row in window for s in row) / (3 * 12 * 12)  # ONE mean over all windows
    for b in range(3):
        for i in range(12):
            logits = [(s - beta * m) * gamma for s in sims[b][i]]
            den = sum(math.exp(x) for x in logits if x >= 0)
            row = [math.exp(x) / den if x >= 0 else 0.0 for x in logits]
            torch.testing.assert_close(got[b, i].double(), torch.tensor(row, dtype=torch.float64), **proxy)


def test_proxy_attention_mean_is_shared_across_windows() -> None:
    g = torch.Generator().manual_seed(1)
    feats = torch.randn(2, 8, 3, 3, generator=g)
    alone = proxy_attention_weights(feats[:1], 1.2, 3.0)
    together = proxy_attention_weights(feats, 1.2, 3.0)[:1]
    # the per-image mean couples the windows: beyond the rounding of two computations of the same weights
    assert not torch.allclose(alone, together, **_proxy_tolerance(2 * 9 * 9, 1.2, 3.0))


def test_values_on_grid_is_identity_or_bilinear() -> None:
    v = torch.randn(2, 16, 6)
    assert values_on_grid(v, (4, 4), (4, 4)) is v
    got = values_on_grid(v, (4, 4), (3, 3))
    grid = v.transpose(1, 2).reshape(2, 6, 4, 4)
    expected = F.interpolate(grid, size=(3, 3), mode="bilinear", align_corners=False).flatten(2).transpose(1, 2)
    torch.testing.assert_close(got, expected, rtol=0, atol=0)  # the same interpolation: exact


@torch.no_grad()
def test_window_tokens_equal_explicit_last_block(tiny_segmenter) -> None:
    """CLIP blocks 0..L-2 run block by block from the stock modules, the last block recomputed by hand."""
    model = tiny_segmenter.model
    visual = model.clip.model.visual
    g = torch.Generator().manual_seed(2)
    windows = torch.randn(3, 3, 64, 64, generator=g)
    got = model.window_tokens(windows)  # (3, width, 4, 4)

    # DINO: stock timm forward_features with the pos-embed resized by the public scale-factor rule
    dino_in = (windows * torch.tensor([0.26862954, 0.26130258, 0.27577711]).view(1, 3, 1, 1)
               + torch.tensor([0.48145466, 0.4578275, 0.40821073]).view(1, 3, 1, 1))
    dino_in = (dino_in - torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)) / torch.tensor(
        [0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    dino_feats = model.dino.model.forward_features(dino_in)[:, 1:]  # native 64 px grid: pos-embed unchanged
    f = F.normalize(dino_feats, dim=-1)
    s = f @ f.transpose(1, 2)
    s = (s - s.mean() * 1.2) * 3.0
    p = torch.where(s < 0, torch.full_like(s, float("-inf")), s).softmax(-1)

    x = visual.conv1(windows).flatten(2).transpose(1, 2)
    x = torch.cat([visual.class_embedding.expand(3, 1, -1), x], dim=1) + visual.positional_embedding
    x = visual.ln_pre(x)
    for block in visual.transformer.resblocks[:-1]:
        x = block(x)
    last = visual.transformer.resblocks[-1]
    y = last.ln_1(x[:, 1:])  # CLS dropped before the last block
    v = F.linear(y, last.attn.in_proj_weight, last.attn.in_proj_bias).chunk(3, dim=-1)[2]
    heads, hd = last.attn.num_heads, v.shape[-1] // last.attn.num_heads
    per_head = torch.stack([p @ v[..., h * hd:(h + 1) * hd] for h in range(heads)], dim=2).flatten(2)
    expected = last.attn.out_proj(per_head)  # no residual, no MLP
    # the same backbones; the proxy weights and the mixing written with other operations: the mean similarity
    # over 3 windows x 16 x 16 pairs (768 terms, the longest), the normalisation, the similarities, the
    # softmax, the per-head products with the values, out_proj: depth 6; the softmax's inputs 3 (s - 1.2
    # mean(s)) with |s| <= 1 make terms up to 6.6 against outputs of order 1 (scale). Measured (2026-12-07,
    # shared 2-core CPU): 0 (atol 7.8e-4)
    torch.testing.assert_close(got, expected.transpose(1, 2).reshape(3, -1, 4, 4),
                               **fp32_tolerance(terms=768, depth=6, scale=6.6))


# ---- windows and splicing ----------------------------------------------------------------

# (the window grid and the overlap averaging themselves: tests/engine/test_tiler.py)


@torch.no_grad()
def test_canvas_of_one_window_equals_window_tokens(tiny_segmenter) -> None:
    model = tiny_segmenter.model
    image = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(4))
    torch.testing.assert_close(model.spliced_canvas(image), model.window_tokens(image), rtol=0, atol=0)


@torch.no_grad()
def test_canvas_overlap_average_from_independent_windows(tiny_segmenter) -> None:
    model = tiny_segmenter.model  # window 64, stride 32: 3 windows along the width, 1 row
    image = torch.randn(1, 3, 64, 128, generator=torch.Generator().manual_seed(5))
    canvas = model.spliced_canvas(image)
    wins = model.window_tokens(torch.cat([image[..., 0:64], image[..., 32:96], image[..., 64:128]]))
    # the same 3 windows in one batch, and a sum of two halved by 2 (exact): exact
    torch.testing.assert_close(canvas[0, :, :, 0:2], wins[0, :, :, 0:2], rtol=0, atol=0)
    torch.testing.assert_close(canvas[0, :, :, 2:4], (wins[0, :, :, 2:4] + wins[1, :, :, 0:2]) / 2, rtol=0, atol=0)
    torch.testing.assert_close(canvas[0, :, :, 4:6], (wins[1, :, :, 2:4] + wins[2, :, :, 0:2]) / 2, rtol=0, atol=0)
    assert token_boxes([(0, 32, 64, 96)], 16) == [(0, 2, 4, 6)]


# ---- SAM affinity and aggregation ----------------------------------------------------------

def _affinity_loops(w, v, cos_fac, refine_neg_cos):
    heads, n, _ = w.shape
    vn = v / v.norm(dim=-1, keepdim=True)
    c = vn @ vn.transpose(1, 2)
    out = torch.zeros(n, n, dtype=torch.float64)
    for i in range(n):
        thr = cos_fac * float(c[:, i, :].mean())
        if not refine_neg_cos and thr < 0:
            thr = 0.6
        thr = min(thr, 0.9)
        row = torch.zeros(n, dtype=torch.float64)
        for h in range(heads):
            for j in range(n):
                if c[h, i, j] > thr:
                    row[j] += float(w[h, i, j]) / heads
        out[i] = row / row.sum()
    return out


@pytest.mark.parametrize(("cos_fac", "refine_neg_cos", "shift"), [(1.2, True, 0.3), (0.0, True, 0.0),
                                                                    (3.0, False, -0.4), (1.2, True, -0.4),
                                                                    (3.0, True, 1.0)])  # last: cap 0.9 binds
def test_sam_affinity_explicit(cos_fac, refine_neg_cos, shift) -> None:
    g = torch.Generator().manual_seed(6)
    w = torch.rand(3, 10, 10, generator=g).softmax(-1) * 0.9  # not renormalised, like a cropped attention
    v = torch.randn(3, 10, 4, generator=g) + shift
    if shift < 0:  # make mean similarities negative for some rows
        v[:, ::2] *= -1
    got = sam_affinity(w, v, cos_fac=cos_fac, refine_neg_cos=refine_neg_cos)
    # cosines of 4-dim values, their mean over 10, the threshold and the renormalising sum over 10: depth 4
    torch.testing.assert_close(got.double(), _affinity_loops(w.double(), v.double(), cos_fac, refine_neg_cos),
                               **fp32_tolerance(terms=10, depth=4))
    # the renormalising sum over 10 and the sum of its quotients: depth 2. Measured (2026-12-07, shared 2-core
    # CPU): 1.2e-7 (atol 4.5e-6, margin 38)
    torch.testing.assert_close(got.sum(-1), torch.ones(10), **fp32_tolerance(terms=10, depth=2))


def test_aggregate_is_matrix_product() -> None:
    a = torch.rand(6, 6)
    feats = torch.randn(1, 4, 2, 3)
    expected = torch.stack([a @ feats[0, c].flatten() for c in range(4)], dim=1)
    # one 6-term product per value; scale: its largest sum of magnitudes
    # Measured (2026-12-07, shared 2-core CPU): 1.2e-7 (atol 6.8e-6, margin 57)
    scale = float((a @ feats[0].flatten(1).T.abs()).max())
    torch.testing.assert_close(aggregate(a, feats), expected, **fp32_tolerance(terms=6, scale=scale))


@torch.no_grad()
def test_sam_attention_and_values_match_stock_block(tiny_segmenter) -> None:
    """proj(W @ v) from the recomputed attention equals the stock last block's attention output."""
    sam = tiny_segmenter.model.sam
    image = np.random.default_rng(0).integers(0, 256, (70, 100, 3), dtype=np.uint8)
    canvas, hw = sam.preprocess_numpy(image)
    outs = []
    handle = sam.encoder.blocks[-1].attn.register_forward_hook(lambda m, a, o: outs.append(o))
    feats = sam.encode(canvas, hw, last_attention=True)
    handle.remove()
    b, heads, n, hd = feats.values.shape
    mixed = (feats.attention @ feats.values).transpose(1, 2).reshape(b, n, heads * hd)
    stock = outs[0].reshape(b, n, -1)
    # W @ v over the n tokens and the 32-term projection: depth 2
    torch.testing.assert_close(sam.encoder.blocks[-1].attn.proj(mixed), stock, **fp32_tolerance(terms=max(n, 32), depth=2))
    gh, gw = feats.valid_grid("floor")
    assert (gh, gw) == (hw[0] // 16, hw[1] // 16)
    full = feats.attention[0].view(heads, 16, 16, 16, 16)
    cropped = full[:, :gh, :gw, :gh, :gw].reshape(heads, gh * gw, -1)
    torch.testing.assert_close(feats.valid_attention("floor")[0], cropped, rtol=0, atol=0)  # the same entries


# ---- classification --------------------------------------------------------------------------

def test_class_probabilities_and_background() -> None:
    g = torch.Generator().manual_seed(7)
    tokens, text = torch.randn(6, 8, generator=g), F.normalize(torch.randn(4, 8, generator=g), dim=-1)
    cos = query_cosines(tokens, text, (2, 3))
    # the 8-term norm and product in another order: depth 2. Measured (2026-12-07, shared 2-core CPU): 8.9e-8 (atol 4.0e-6, margin 45)
    torch.testing.assert_close(cos[2, 1, 0], F.cosine_similarity(tokens[3], text[2], dim=0),
                               **fp32_tolerance(terms=8, depth=2))
    owners = torch.tensor([0, 0, 1, 2])  # class 0 has two queries
    up = F.interpolate(cos[None], size=(4, 5), mode="bilinear", align_corners=False)[0]
    soft = (up * 40).softmax(0)
    expected = torch.stack([soft[:2].max(0).values, soft[2], soft[3]])
    # the cosines (8-term norm and product), the 4-term bilinear resize, the softmax over 4 queries: depth 4; the
    # logit scale 40 turns the cosines' absolute errors into the probabilities' relative errors (scale).
    # Measured (2026-12-07, shared 2-core CPU): 1.0e-6 (atol 3.2e-4, margin 320)
    tol = fp32_tolerance(terms=8, depth=4, scale=40.0)
    for budget in (1 << 20, 20, 1):  # one chunk; chunks of whole classes (class 0's two queries together)
        parts = list(class_probabilities(tokens, (2, 3), text, (4, 5), logit_scale=40.0, query_to_class=owners,
                                         budget=budget))
        assert [c for c, _ in parts][0] == (slice(0, 3) if budget > 80 else slice(0, 1))
        torch.testing.assert_close(torch.cat([p for _, p in parts]), expected, **tol)

    p = torch.tensor([[[0.1, 0.5]], [[0.15, 0.3]], [[0.12, 0.2]]])  # (3, 1, 2)
    best, labels = p.max(dim=0)
    assert with_background(labels, best, 0.0, 0).tolist() == [[1, 0]]
    assert with_background(labels, best, 0.2, 0).tolist() == [[0, 0]]  # 0.15 < 0.2 -> background
    assert with_background(labels, best, 0.15, 0).tolist() == [[1, 0]]  # not strictly below
    assert with_background(labels, best, 0.2, 7).tolist() == [[7, 0]]


# ---- input sizes ---------------------------------------------------------------------------

def test_input_size_rules() -> None:
    assert rescale_size(512, 683, 448, 2048) == (448, 598)  # 683 * 0.875 = 597.6 -> 598
    assert rescale_size(226, 640, 336, 2048) == (336, 952)
    assert rescale_size(100, 5000, 448, 2048) == (41, 2048)  # long side capped
    x = torch.randn(1, 3, 448, 598)
    out = fit_to_patches(x, 16, 336)
    # long 598 -> 608; short int(448 * 608 / 598) = 455 -> 464
    assert out.shape[-2:] == (464, 608)
    torch.testing.assert_close(out, F.interpolate(x, (464, 608), mode="bilinear", align_corners=False),
                               rtol=0, atol=0)  # the same interpolation: exact
    same = torch.randn(1, 3, 448, 592)
    assert fit_to_patches(same, 16, 336) is same
    assert fit_to_patches(torch.randn(1, 3, 41, 2048), 16, 336).shape[-2:] == (336, 2048)
    assert round_up_for_sam(np.zeros((226, 640, 3), np.uint8)).shape == (240, 640, 3)


@torch.no_grad()
def test_patch14_clip_with_patch16_dino(tmp_path, tiny_segmenter) -> None:
    """The ViT-H/14 layout: CLIP tokens (8x8 per 112-px window) finer than DINO's (7x7).

    The values are resized to DINO's grid for the proxy attention, the outputs back to CLIP's
    grid for splicing (the public code's ratio rule gives 1), and the canvas is at CLIP's grid.
    """
    import json

    import open_clip

    from lmseg.backbones.clip_factory import create_dense_clip
    from lmseg.models.trident import TridentConfig, TridentModel

    cfg_json = {"embed_dim": 32, "vision_cfg": {"image_size": 56, "layers": 2, "width": 48, "head_width": 12,
                                                 "patch_size": 14},
                "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1}}
    (tmp_path / "lmseg-test-p14.json").write_text(json.dumps(cfg_json))
    open_clip.add_model_config(tmp_path)
    torch.manual_seed(0)
    clip14 = create_dense_clip("lmseg-test-p14", pretrained=None, interpolation_offset=0.1)
    base = tiny_segmenter.model
    model = TridentModel(clip14, base.dino, base.sam, TridentConfig(window=112, stride=56)).eval()
    image = torch.randn(1, 3, 112, 168, generator=torch.Generator().manual_seed(8))
    canvas = model.spliced_canvas(image)
    assert canvas.shape == (1, 48, 8, 12)
    wins = model.window_tokens(torch.cat([image[..., 0:112], image[..., 56:168]]))
    assert wins.shape == (2, 48, 7, 7)
    up = F.interpolate(wins, size=(8, 8), mode="bilinear", align_corners=False)
    # the same 2 windows in one batch, the same resize, a sum of two halved by 2 (exact): exact
    torch.testing.assert_close(canvas[..., 0:4], up[:1, :, :, 0:4], rtol=0, atol=0)
    torch.testing.assert_close(canvas[..., 4:8], (up[:1, :, :, 4:8] + up[1:, :, :, 0:4]) / 2, rtol=0, atol=0)
    with pytest.raises(ValueError, match="multiples"):
        TridentModel(clip14, base.dino, base.sam, TridentConfig(window=336, stride=100))
