"""Slicing, stitching and the Multi-Res Adapter against explicit computations."""

from __future__ import annotations

import dataclasses

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lmseg.inference.tiler import window_grid
from lmseg.models.mrovseg.adapter import ContinuityConv2d, ScaleAttention, TapAdapter
from lmseg.models.mrovseg.slices import global_view, slice_stride, stitch, take_slices
from tests.tolerances import fp32_tolerance

from .conftest import tiny_model


class PerPatch(nn.Module):
    """Backbone stand-in whose every tap is a per-patch function (a patch-sized strided conv):
    the features of a patch do not depend on where the image was cut."""

    def __init__(self, patch: int, width: int, taps: int) -> None:
        super().__init__()
        self.patch, self.width = patch, width
        self.convs = nn.ModuleList(nn.Conv2d(3, width, patch, stride=patch) for _ in range(taps))

    def forward(self, images, *, dense=False):
        return [conv(images) for conv in self.convs], None


def test_slice_grid_and_border() -> None:
    assert slice_stride(224, 1 / 3, 16) == 144  # 149.3 rounded down to the 16-px grid
    assert slice_stride(336, 1 / 3, 14) == 224
    assert slice_stride(64, 0.99, 16) == 16  # at least one patch
    boxes = window_grid(96, 160, 64, 32)
    assert [b[:2] for b in boxes] == [(0, 0), (0, 32), (0, 64), (0, 96), (32, 0), (32, 32), (32, 64), (32, 96)]
    assert all(y2 - y1 == 64 and x2 - x1 == 64 for y1, x1, y2, x2 in boxes)
    last = window_grid(112, 112, 64, 32)  # 0, 32, then flush with the border at 48
    assert sorted({b[0] for b in last}) == [0, 32, 48] and max(b[2] for b in last) == 112
    assert window_grid(64, 64, 64, 32) == [(0, 0, 64, 64)]
    with pytest.raises(ValueError, match="smaller than"):
        window_grid(48, 128, 64, 32)


def test_take_slices_is_image_major() -> None:
    x = torch.arange(2 * 3 * 64 * 96, dtype=torch.float32).view(2, 3, 64, 96)
    boxes = window_grid(64, 96, 64, 32)
    got = take_slices(x, boxes, 1, 4)
    expected = [x[0, :, :, 32:96], x[1, :, :, 0:64], x[1, :, :, 32:96]]
    assert torch.equal(got, torch.stack(expected))


def test_overlap_averaging_is_exact() -> None:
    maps = torch.randn(2, 5, 4, 4)
    boxes = [(0, 0, 64, 64), (0, 32, 64, 96)]  # 4x4 cells each, overlapping in 2 columns
    out = stitch(maps, boxes, 16, (4, 6))
    expected = torch.zeros(1, 5, 4, 6)
    expected[0, :, :, :2] = maps[0, :, :, :2]
    expected[0, :, :, 2:4] = (maps[0, :, :, 2:] + maps[1, :, :, :2]) / 2
    expected[0, :, :, 4:] = maps[1, :, :, 2:]
    torch.testing.assert_close(out, expected, rtol=0, atol=0)  # the same sum and halving on both sides


def test_stitched_slices_equal_single_pass_features() -> None:
    """With a per-patch backbone, stitched local maps equal the full image's single pass."""
    model = tiny_model()
    model.backbone = PerPatch(16, 48, len(model.config.taps))
    images = torch.rand(2, 3, 96, 128)
    with torch.no_grad():
        feats = model.encode_views(images)
        single, _ = model.backbone(model.clip.normalize(images))
    assert len(feats.locals_) == len(single) == 4
    for local, ref in zip(feats.locals_, single):
        assert local.shape == (2, 48, 6, 8)
        # the per-patch linear map (3 x 16 x 16 = 768 terms), then the overlap mean: depth 2
        torch.testing.assert_close(local, ref, **fp32_tolerance(terms=768, depth=2))
    glob_ref, _ = model.backbone(model.clip.normalize(global_view(images, 64)))
    # the per-patch linear map (768 terms) of the global view, batched otherwise: depth 1
    # Measured (2026-12-07, shared 2-core CPU): 5.4e-7 (atol 2.0e-5, margin 37)
    torch.testing.assert_close(feats.globals_[0], glob_ref[0], **fp32_tolerance(terms=768))
    # chunking does not change anything
    model.config = dataclasses.replace(model.config, slice_batch=1)
    with torch.no_grad():
        again = model.encode_views(images)
    torch.testing.assert_close(again.locals_[2], feats.locals_[2], rtol=0, atol=0)


def test_identity_adapter_passes_stitched_features() -> None:
    """Projection = identity, continuity conv absent, gate -> local: the adapter output is the stitched map."""
    adapter = TapAdapter(8, 8, "none", 3)
    with torch.no_grad():
        adapter.proj.weight.copy_(torch.eye(8)[:, :, None, None])
        adapter.proj.bias.zero_()
        adapter.scale_attention.gate.weight.zero_()
        adapter.scale_attention.gate.bias.fill_(-1e4)  # a = 0: local only
    local = torch.randn(1, 8, 6, 8)
    out = adapter(torch.randn(1, 8, 4, 4), local, (6, 8))
    torch.testing.assert_close(out, local, rtol=0, atol=0)  # x 1 + 7 x 0, a = 0: exact


def test_scale_attention_formula() -> None:
    sa = ScaleAttention(4)
    g, lo = torch.randn(2, 4, 3, 5), torch.randn(2, 4, 3, 5)
    w, b = sa.gate.weight.view(8), sa.gate.bias
    logits = torch.einsum("c,bchw->bhw", w, torch.cat([g, lo], 1)) + b
    a = torch.sigmoid(logits)[:, None]
    # the 8-term gate (a 1 x 1 convolution or an einsum) and the blend: depth 2, of terms up to |g| + |lo| (scale)
    # Measured (2026-12-07, shared 2-core CPU): 2.4e-7 (atol 1.8e-5, margin 76)
    torch.testing.assert_close(sa(g, lo), a * g + (1 - a) * lo,
                               **fp32_tolerance(terms=8, depth=2, scale=float((g.abs() + lo.abs()).max())))
    assert sa.weight(g, lo).shape == (2, 1, 3, 5)


def test_continuity_conv_formulas() -> None:
    x = torch.randn(1, 3, 5, 6)
    dw = ContinuityConv2d(3, "depthwise_separable", 3)
    torch.testing.assert_close(dw(x), x, rtol=0, atol=0)  # zero-initialised pointwise part: x + 0, exact
    with torch.no_grad():
        for p in dw.parameters():
            p.normal_()
    depth, point = dw.conv
    ref = x.clone()
    pad = F.pad(x, (1, 1, 1, 1))
    per_channel = torch.stack([
        sum(depth.weight[c, 0, i, j] * pad[0, c, i:i + 5, j:j + 6] for i in range(3) for j in range(3)) + depth.bias[c]
        for c in range(3)])
    ref = x[0] + torch.einsum("oc,chw->ohw", point.weight[:, :, 0, 0], per_channel) + point.bias[:, None, None]
    # 3 x 3 depthwise (9 terms), 1 x 1 pointwise (3), the residual: depth 3
    torch.testing.assert_close(dw(x)[0], ref, **fp32_tolerance(terms=9, depth=3))
    assert torch.equal(ContinuityConv2d(3, "none", 3)(x), x)


def test_tap_adapter_formula() -> None:
    adapter = TapAdapter(6, 4, "depthwise_separable", 3)
    with torch.no_grad():
        for p in adapter.parameters():
            p.normal_(0, 0.3)
    glob, local = torch.randn(1, 6, 4, 4), torch.randn(1, 6, 6, 8)

    def proj(t):
        return torch.einsum("oc,bchw->bohw", adapter.proj.weight[:, :, 0, 0], t) + adapter.proj.bias[:, None, None]

    g = F.interpolate(proj(glob), size=(6, 8), mode="bilinear", align_corners=False)
    lo = proj(local)
    lo = lo + adapter.continuity.conv(lo)
    a = torch.sigmoid(adapter.scale_attention.gate(torch.cat([g, lo], 1)))
    # the 6-term projections (convolutions or einsums), the 3 x 3 depthwise (9 terms) and pointwise parts, the gate
    # and the blend: depth 5, of terms up to |g| + |lo| (scale)
    # Measured (2026-12-07, shared 2-core CPU): 2.4e-7 (atol 4.6e-5, margin 190)
    torch.testing.assert_close(adapter(glob, local, (6, 8)), a * g + (1 - a) * lo,
                               **fp32_tolerance(terms=9, depth=5, scale=float((g.abs() + lo.abs()).max())))
    # slicing off: the upsampled global projection (the 6-term projection and the 4-term bilinear sum: depth 2);
    # scale: the projection's largest sum of magnitudes
    # Measured (2026-12-07, shared 2-core CPU): 3.6e-7 (atol 1.5e-5, margin 41)
    magnitudes = torch.einsum("oc,bchw->bohw", adapter.proj.weight[:, :, 0, 0].abs(), glob.abs())
    scale = float((magnitudes + adapter.proj.bias.abs()[:, None, None]).max())
    torch.testing.assert_close(adapter(glob, None, (6, 8)), g, **fp32_tolerance(terms=6, depth=2, scale=scale))


def test_pyramid_shapes_and_global_only_model() -> None:
    model = tiny_model()
    x = torch.rand(1, 3, 96, 128)
    with torch.no_grad():
        feats = model.encode_views(x)
        levels, mask_features = model.adapter(feats.globals_, feats.locals_, (96, 128))
    assert [tuple(t.shape[-2:]) for t in levels] == [(24, 32), (12, 16), (6, 8), (3, 4)]
    assert mask_features.shape == (1, 16, 24, 32)
    off = tiny_model(use_slices=False)
    with torch.no_grad():
        assert off.encode_views(x).locals_ is None
        assert off(x, torch.randn(3, 1, 32)).predictions[-1].mask_logits.shape == (1, 8, 24, 32)
    with pytest.raises(ValueError, match="multiples of the patch size 16 and at least the slice size 64"):
        model(torch.rand(1, 3, 48, 128), torch.randn(3, 1, 32))
