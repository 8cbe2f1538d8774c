"""LMSeg modules: shapes and dtypes, parity with explicit computations, linear cost in N, gradients."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import FlopCounterMode

from lmseg.errors import LmsegError
from lmseg.models.lmseg import LMSegConfig, get_config, segmentation_loss
from lmseg.models.lmseg.aggregation import AggregationLayer, ClassAttention, WindowAttention, linear_attention
from lmseg.models.lmseg.decoder import UpsamplingDecoder
from lmseg.models.lmseg.fusion import SamCLIPFusion, cost_volume
from tests.tolerances import fp32_tolerance, longest_reduction

from .conftest import fresh_tiny_model


def _g(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_fusion_formula_and_shapes() -> None:
    torch.manual_seed(0)
    fusion = SamCLIPFusion(256, 32, init=0.3)
    clip = torch.randn(2, 32, 6, 6, generator=_g(1))
    sam = torch.randn(2, 256, 16, 16, generator=_g(2))
    out = fusion(clip, sam)
    assert out.shape == (2, 32, 6, 6) and out.dtype == torch.float32
    # the logit of 0.3 stored in float32, then the sigmoid: 2 roundings (1 term, depth 2)
    assert fusion.w.item() == pytest.approx(0.3, abs=fp32_tolerance(terms=1, depth=2)["atol"])
    proj = F.interpolate(F.conv2d(sam, fusion.proj.weight, fusion.proj.bias), size=(6, 6), mode="bilinear",
                         align_corners=False)
    # the 1 x 1 convolution (256 terms), the bilinear resize (4), the weighted sum: depth 3
    torch.testing.assert_close(out, 0.3 * clip + 0.7 * proj, **fp32_tolerance(terms=256, depth=3))


def test_cost_volume_is_cosine_similarity() -> None:
    f = torch.randn(2, 8, 3, 5, generator=_g(1))
    t = torch.randn(7, 4, 8, generator=_g(2))
    cost = cost_volume(f, t)
    assert cost.shape == (2, 4, 7, 3, 5)
    b, p, n, y, x = 1, 2, 5, 2, 3
    expected = F.cosine_similarity(f[b, :, y, x], t[n, p], dim=0)
    cosine = fp32_tolerance(terms=8, depth=2)  # the inner product and the norms over 8 channels, another order
    assert cost[b, p, n, y, x].item() == pytest.approx(expected.item(), abs=cosine["atol"])
    assert cost.abs().max() <= 1 + cosine["atol"]


def test_linear_attention_matches_explicit_formula() -> None:
    q, k, v = (torch.randn(3, 2, 11, 4, generator=_g(i)) for i in range(3))
    phi_q, phi_k = F.elu(q) + 1, F.elu(k) + 1
    weights = phi_q @ phi_k.transpose(-1, -2)  # the N x N matrix the implementation must avoid
    expected = (weights / weights.sum(-1, keepdim=True)) @ v
    # sums over the 11 keys or the 4 features in the other order, normaliser and division: depth 3
    torch.testing.assert_close(linear_attention(q, k, v), expected, **fp32_tolerance(terms=11, depth=3))


class _ShapeRecorder(TorchDispatchMode):
    def __init__(self) -> None:
        super().__init__()
        self.shapes: list[tuple[int, ...]] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in out if isinstance(out, (tuple, list)) else (out,):
            if isinstance(t, torch.Tensor):
                self.shapes.append(tuple(t.shape))
        return out


def test_class_attention_never_forms_an_n_by_n_matrix() -> None:
    n = 97  # a prime that appears in no other dimension
    torch.manual_seed(0)
    attn = ClassAttention(16, 8, 2)
    x, g = torch.randn(5, n, 16), torch.randn(1, n, 8)
    with _ShapeRecorder() as rec:
        out = attn(x, g)
    assert out.shape == (5, n, 16)
    assert rec.shapes, "nothing recorded"
    assert not [s for s in rec.shapes if s.count(n) >= 2], "an N x N tensor was formed"


def test_model_cost_is_linear_in_the_number_of_classes(tiny_model) -> None:
    """FLOPs (matmuls and convolutions) are affine in N: equal increments for equal steps of N."""
    x = torch.rand(1, 3, 64, 64, generator=_g(1))

    def flops(n: int) -> int:
        text = torch.randn(n, 4, 32, generator=_g(2))
        counter = FlopCounterMode(display=False)
        with counter, torch.no_grad():
            tiny_model(x, text)
        return counter.get_total_flops()

    f1, f2, f3 = flops(40), flops(80), flops(120)
    assert f2 > f1 > 0
    assert f3 - f2 == f2 - f1  # a quadratic term (softmax class attention) would break this


def test_window_attention_is_local() -> None:
    torch.manual_seed(0)
    block = WindowAttention(8, 4, heads=2, window=2, shift=0)
    x = torch.randn(1, 4, 4, 8, requires_grad=True)
    g = torch.randn(1, 4, 4, 4)
    block(x, g)[0, 0, 0].sum().backward()
    touched = x.grad[0].abs().sum(-1) > 0
    expected = torch.zeros(4, 4, dtype=torch.bool)
    expected[:2, :2] = True
    assert torch.equal(touched, expected)
    # shifted by one: token (1, 1) shares a window with (1..2, 1..2)
    shifted = WindowAttention(8, 4, heads=2, window=2, shift=1)
    x.grad = None
    shifted(x, g)[0, 1, 1].sum().backward()
    touched = x.grad[0].abs().sum(-1) > 0
    expected = torch.zeros(4, 4, dtype=torch.bool)
    expected[1:3, 1:3] = True
    assert torch.equal(touched, expected)


def test_window_attention_with_one_window_is_full_attention() -> None:
    torch.manual_seed(0)
    block = WindowAttention(8, 0, heads=2, window=4, shift=0)
    x = torch.randn(2, 4, 4, 8)
    y = block.norm(x).reshape(2, 16, 8)
    q, k, v = block.q(y), block.k(y), block.v(y)
    split = lambda t: t.view(2, 16, 2, 4).transpose(1, 2)  # noqa: E731
    w = (split(q) @ split(k).transpose(-1, -2) / 2.0).softmax(-1)
    o = (w @ split(v)).transpose(1, 2).reshape(2, 4, 4, 8)
    ref = x + block.out(o)
    ref = ref + block.mlp(block.norm2(ref))
    # norm, q/k/v, scores, softmax over the 16 window tokens, values, out, norm, 2 MLP layers: depth 9
    torch.testing.assert_close(block(x, None), ref, **fp32_tolerance(terms=max(16, longest_reduction(block)), depth=9))


def test_module_shapes_and_dtypes() -> None:
    torch.manual_seed(0)
    layer = AggregationLayer(16, 8, 8, heads=2, class_heads=2, window=2)
    x = torch.randn(2, 16, 5, 6, 6)
    y = layer(x, torch.randn(2, 8, 6, 6), torch.randn(5, 8))
    assert y.shape == x.shape and y.dtype == torch.float32
    y2 = layer(x, torch.randn(2, 8, 6, 6), torch.randn(2, 5, 8))  # per-image text guidance
    assert y2.shape == x.shape
    dec = UpsamplingDecoder(16, 48, (8, 8), (4, 4))
    guides = dec.project([torch.randn(2, 48, 6, 6, generator=_g(3))] * 2)
    out = dec(x, guides)
    assert out.shape == (2, 5, 24, 24) and out.dtype == torch.float32
    # classes are decoded independently: the same decoder on a batch of 2 classes instead of 5 (its convolutions
    # and head, depth 5). Measured (2026-12-07, shared 2-core CPU): 0
    torch.testing.assert_close(dec(x[:, :, 2:4], guides), out[:, 2:4],
                               **fp32_tolerance(terms=longest_reduction(dec), depth=5))


def test_head_in_chunks_of_classes_equals_one_pass(tiny_model) -> None:
    """Chunks of classes whose class attention sees the whole vocabulary through the summed
    statistics give the logits of one pass over all classes."""
    head = tiny_model.head
    feats = tiny_model.encode(torch.rand(1, 3, 64, 64, generator=_g(1)))
    text = torch.randn(7, 4, 32, generator=_g(2))
    inputs = head.prepare(feats.clip_dense, feats.sam, feats.guidance)
    with torch.no_grad():
        full = head.decode(inputs, text)
        chunks = [slice(0, 3), slice(3, 4), slice(4, 7)]
        stats = head.class_statistics(inputs, text, chunks)
        parts = torch.cat([head.decode(inputs, text[c], stats) for c in chunks], dim=1)
        alone = head.decode(inputs, text[3:4])  # without the statistics: a one-class vocabulary
    # from layer 0's class attention on (the summed statistics): its block (6 products), layer 1 (3 blocks x 6),
    # the decoder's 4 convolutions and head (the longest on this path: 216 terms): depth 29. Measured
    # (2026-12-07, 2-core EPYC): 1.1e-6 on values up to 1.7
    torch.testing.assert_close(parts, full, **fp32_tolerance(terms=216, depth=29))
    assert not torch.allclose(alone, full[:, 3:4], **fp32_tolerance(terms=216, depth=29))  # beyond rounding


def test_model_forward_shapes(tiny_model) -> None:
    x = torch.rand(2, 3, 64, 64, generator=_g(1))
    with torch.no_grad():
        logits = tiny_model(x, torch.randn(5, 4, 32, generator=_g(2)))
        assert logits.shape == (2, 5, 16, 16) and logits.dtype == torch.float32
        assert tiny_model.output_size(64, 64) == (16, 16)
        assert torch.isfinite(logits).all()
        # non-square inputs (multiples of the patch size) work too
        assert tiny_model(torch.rand(1, 3, 64, 96), torch.randn(3, 4, 32)).shape == (1, 3, 16, 24)
    with pytest.raises(LmsegError, match="4 prompt channels"):
        tiny_model(x, torch.randn(5, 3, 32))
    with pytest.raises(ValueError, match="images must be"):
        tiny_model(torch.rand(2, 64, 64), torch.randn(5, 4, 32))


def test_model_uses_unmodified_clip_features(tiny_model) -> None:
    """The CLIP features entering the fusion equal open_clip's own patch tokens, projected."""
    x = torch.rand(1, 3, 64, 64, generator=_g(4))
    seen = {}
    handle = tiny_model.head.fusion.register_forward_hook(lambda m, args, out: seen.setdefault("clip", args[0]))
    try:
        with torch.no_grad():
            tiny_model(x, torch.randn(3, 4, 32))
    finally:
        handle.remove()
    visual = tiny_model.clip.visual
    visual.output_tokens = True
    try:
        with torch.no_grad():
            _, tokens = visual(tiny_model.clip.normalize(x))
    finally:
        visual.output_tokens = False
    ref = (tokens @ visual.proj).transpose(1, 2).reshape(1, -1, 4, 4)
    # the same tokens projected (48 terms) and rearranged: depth 1
    torch.testing.assert_close(seen["clip"], ref, **fp32_tolerance(terms=48))


def test_gradients_reach_exactly_the_trained_parameters() -> None:
    model = fresh_tiny_model()
    model.train()
    x = torch.rand(2, 3, 64, 64, generator=_g(1))
    labels = torch.randint(0, 5, (2, 64, 64), generator=_g(2))
    labels[:, :8] = 255
    loss = segmentation_loss(model(x, torch.randn(5, 4, 32, generator=_g(3))), labels)
    loss.backward()
    attn_ids = {id(p) for p in model.clip_attention_parameters()}
    for name, p in model.named_parameters():
        meant = name.startswith("head.") or id(p) in attn_ids
        assert p.requires_grad == meant, name
        if meant:
            assert p.grad is not None and p.grad.abs().sum() > 0, f"{name} got no gradient"
        else:
            assert p.grad is None, f"{name} is frozen but got a gradient"
    assert all(not n.startswith("sam.") for n, p in model.named_parameters() if p.grad is not None)
    assert not model.sam.training  # SAM stays in eval mode even in train()


def test_only_image_attention_is_finetuned_when_enabled() -> None:
    from lmseg.models.lmseg import build_model

    cfg = LMSegConfig(**{**get_config("lmseg_tiny").__dict__, "finetune_clip_attention": False})
    model = build_model(cfg)
    assert not any(p.requires_grad for p in model.clip.parameters())


def test_fusion_weight_moves_in_training() -> None:
    model = fresh_tiny_model()
    model.train()
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    x = torch.rand(2, 3, 64, 64, generator=_g(1))
    labels = torch.randint(0, 5, (2, 64, 64), generator=_g(2))
    text = torch.randn(5, 4, 32, generator=_g(3))
    w0 = model.fusion_weight
    for _ in range(3):
        opt.zero_grad()
        segmentation_loss(model(x, text), labels).backward()
        opt.step()
    assert abs(model.fusion_weight - w0) > 1e-4  # frozen, it would not move at all


def test_loss_is_bce_over_valid_pixels() -> None:
    logits = torch.randn(1, 3, 2, 2, generator=_g(1))
    labels = torch.tensor([[[0, 2], [255, 1]]])
    got = segmentation_loss(logits, labels)
    total = 0.0
    for y, x in [(0, 0), (0, 1), (1, 1)]:
        for c in range(3):
            target = 1.0 if labels[0, y, x] == c else 0.0
            p = torch.sigmoid(logits[0, c, y, x]).item()
            total += -(target * math.log(p) + (1 - target) * math.log(1 - p))
    # float32 against float64: the log-sigmoid of each term (1), the mean over 9 terms (1)
    assert got.item() == pytest.approx(total / 9, rel=fp32_tolerance(terms=9, depth=2)["rtol"])
    with pytest.raises(ValueError, match="outside"):
        segmentation_loss(logits, torch.tensor([[[0, 7], [1, 1]]]))


def test_mean_pooling_variant() -> None:
    from lmseg.models.lmseg import build_model

    cfg = LMSegConfig(**{**get_config("lmseg_tiny").__dict__, "prompt_pooling": "mean"})
    torch.manual_seed(0)
    model = build_model(cfg)
    assert model.head.cost_embed.in_channels == 1
    with torch.no_grad():
        out = model(torch.rand(1, 3, 64, 64), torch.randn(5, 4, 32))
    assert out.shape == (1, 5, 16, 16)


def test_real_vit_b16_config_builds() -> None:
    """The real ViT-B/16 + SAM ViT-B architecture (random weights): parameter counts and the head's shapes."""
    cfg = get_config("lmseg_vitb16")
    assert (cfg.input_size, cfg.hidden_dim, cfg.num_layers, cfg.window_size) == (384, 128, 2, 12)
    from lmseg.models.lmseg import LMSegHead

    head = LMSegHead(cfg, clip_dim=512, clip_width=768, sam_dim=256)
    with torch.no_grad():
        logits = head(torch.randn(1, 512, 24, 24), torch.randn(1, 256, 64, 64),
                      [torch.randn(1, 768, 24, 24)] * 2, torch.randn(7, 4, 512))
    assert logits.shape == (1, 7, 96, 96)
