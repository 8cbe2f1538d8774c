"""SamEncoder: preprocessing, feature shapes, valid region, last-block attention, strict loading."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from segment_anything import SamPredictor

from lmseg.backbones.loading import CheckpointMismatchError, load_strict
from lmseg.backbones.sam import SamEncoder, create_sam_encoder
from lmseg.errors import LmsegError
from tests.tolerances import fp32_tolerance

SAM_MEAN = torch.tensor([123.675, 116.28, 103.53])
SAM_STD = torch.tensor([58.395, 57.12, 57.375])


def _rgb(h: int, w: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(1, 3, h, w, generator=g) * 255


@torch.no_grad()
def test_features_shape_and_valid_region_at_1024(make_tiny_sam) -> None:
    encoder = SamEncoder(make_tiny_sam(1024, window_size=14, global_attn_indexes=(1,)))
    out = encoder(_rgb(300, 500))
    assert out.features.shape == (1, 256, 64, 64)
    assert out.input_hw == (614, 1024)  # 300 * 1024 / 500 = 614.4
    assert out.valid_grid() == (39, 64) and out.valid_grid("floor") == (38, 64)
    assert out.valid_features().shape == (1, 256, 39, 64)


@torch.no_grad()
def test_preprocess_normalises_and_pads(tiny_sam: SamEncoder) -> None:
    image = SAM_MEAN.view(1, 3, 1, 1).expand(2, 3, 40, 100).clone()  # SAM's mean colour -> 0
    image[:, :, 0, 0] = 255.0
    canvas, input_hw = tiny_sam.preprocess(image)
    assert canvas.shape == (2, 3, 256, 256) and input_hw == (102, 256)
    assert torch.all(canvas[:, :, 102:, :] == 0) and torch.all(canvas[:, :, :, 256:] == 0)
    # interior of the mean-coloured image: the bilinear upscale (2 taps per axis: 2 terms, depth 2) of the
    # mean colour, then (x - mean) / std, which cancels to 0: the terms are mean / std (up to 2.1) against 0.
    # Measured (2026-12-07, shared 2-core CPU): 0 (atol 4.3e-6)
    interior = fp32_tolerance(terms=2, depth=2, scale=float((SAM_MEAN / SAM_STD).max()))["atol"]
    assert canvas[:, :, 5:100, 5:250].abs().max() <= interior
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        tiny_sam.preprocess(torch.zeros(1, 4, 10, 10))


@torch.no_grad()
def test_numpy_path_equals_sam_predictor(tiny_sam: SamEncoder) -> None:
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, size=(90, 60, 3), dtype=np.uint8)
    predictor = SamPredictor(tiny_sam.sam)
    predictor.set_image(image)
    out = tiny_sam.encode(*tiny_sam.preprocess_numpy(image))
    assert out.input_hw == tuple(predictor.input_size)
    torch.testing.assert_close(out.features, predictor.features, rtol=0, atol=0)


@torch.no_grad()
def test_batch_items_are_independent(tiny_sam: SamEncoder) -> None:
    images = torch.cat([_rgb(64, 128, seed=1), _rgb(64, 128, seed=2)])
    both = tiny_sam(images, last_attention=True)
    second = tiny_sam(images[1:], last_attention=True)
    # the tiny encoder batched or not: patch embedding (3 x 16 x 16 = 768 terms), 2 blocks x 6 products, the
    # neck's 2 convolutions (depth 14); the last block's weights: up to its softmax (depth 10)
    torch.testing.assert_close(both.features[1:], second.features, **fp32_tolerance(terms=768, depth=14))
    torch.testing.assert_close(both.attention[1:], second.attention, **fp32_tolerance(terms=768, depth=10))


def _reference_attention(attn, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The global attention of a SAM block, written out from the paper's formula.

    score(i, j) = q_i . k_j / sqrt(d) + q_i . Rh[row(i) - row(j) + H - 1] + q_i . Rw[col(i) - col(j) + W - 1]
    (the tables have 2H-1 / 2W-1 rows here, so no resizing is involved).
    """
    b, h, w, c = x.shape
    heads = attn.num_heads
    d = c // heads
    qkv = x.reshape(b, h * w, c) @ attn.qkv.weight.T + attn.qkv.bias
    q, k, v = (t.reshape(b, h * w, heads, d).transpose(1, 2) for t in qkv.split(c, dim=-1))
    rows = torch.arange(h).repeat_interleave(w)  # row of each token, row-major order
    cols = torch.arange(w).repeat(h)
    rh = attn.rel_pos_h[rows[:, None] - rows[None, :] + h - 1]  # (HW, HW, d)
    rw = attn.rel_pos_w[cols[:, None] - cols[None, :] + w - 1]
    scores = torch.einsum("bnid,bnjd->bnij", q, k) / d**0.5
    scores = scores + torch.einsum("bnid,ijd->bnij", q, rh) + torch.einsum("bnid,ijd->bnij", q, rw)
    return scores.softmax(-1), v


@torch.no_grad()
def test_last_attention_equals_independent_recomputation(tiny_sam: SamEncoder) -> None:
    block = tiny_sam.encoder.blocks[-1]
    seen: dict[str, torch.Tensor] = {}
    handle = block.attn.register_forward_hook(lambda _m, args, out: seen.update(x=args[0], out=out))
    try:
        out = tiny_sam(_rgb(128, 200), last_attention=True)
    finally:
        handle.remove()
    heads, grid = tiny_sam.num_heads, 16
    assert out.attention.shape == (1, heads, grid * grid, grid * grid)
    assert out.values.shape == (1, heads, grid * grid, 32 // heads)
    # the softmax's normaliser over 256 keys and the sum of its quotients: depth 2. Measured (2026-12-07, shared
    # 2-core CPU): 3.0e-7 (atol 2.3e-5, margin 77)
    torch.testing.assert_close(out.attention.sum(-1), torch.ones(1, heads, grid * grid),
                               **fp32_tolerance(terms=grid * grid, depth=2))

    # 1. the weights and values are the ones the stock module used: proj(W @ v) is its output
    mixed = (out.attention @ out.values).transpose(1, 2).reshape(1, grid, grid, 32)
    # W @ v (grid x grid terms) and the projection (32): depth 2
    torch.testing.assert_close(block.attn.proj(mixed), seen["out"], **fp32_tolerance(terms=grid * grid, depth=2))
    # 2. and they equal an independent implementation of the formula (relative positions included)
    ref_w, ref_v = _reference_attention(block.attn, seen["x"])
    # q/k (32 terms), scores + relative positions, softmax over grid x grid keys: depth 3; values: one linear map
    torch.testing.assert_close(out.attention, ref_w, **fp32_tolerance(terms=grid * grid, depth=3))
    torch.testing.assert_close(out.values, ref_v, **fp32_tolerance(terms=32))


@torch.no_grad()
def test_valid_crops_of_attention_and_values(tiny_sam: SamEncoder) -> None:
    out = tiny_sam(_rgb(100, 256), last_attention=True)  # resized 100x256 -> valid grid 7x16 (ceil)
    gh, gw = out.valid_grid()
    assert (gh, gw) == (7, 16) and out.valid_grid("floor") == (6, 16)
    keep = torch.tensor([r * 16 + c for r in range(gh) for c in range(gw)])
    torch.testing.assert_close(out.valid_attention(), out.attention[:, :, keep][:, :, :, keep], rtol=0, atol=0)
    torch.testing.assert_close(out.valid_values(), out.values[:, :, keep], rtol=0, atol=0)
    assert (out.valid_attention().sum(-1) < 1).all()  # cropped, not renormalised (padding keys had weight)
    plain = tiny_sam(_rgb(100, 256))
    assert plain.attention is None
    with pytest.raises(ValueError, match="last_attention=True"):
        plain.valid_attention()


def test_windowed_last_block_is_refused(make_tiny_sam) -> None:
    encoder = SamEncoder(make_tiny_sam(256, global_attn_indexes=(0,)))
    with pytest.raises(LmsegError, match="windowed attention"):
        encoder(_rgb(32, 32), last_attention=True)


# ---- strict loading ------------------------------------------------------------------------


def test_strict_loading_reports_missing_unexpected_and_shapes(tiny_sam: SamEncoder, make_tiny_sam) -> None:
    good = tiny_sam.sam.state_dict()
    target = make_tiny_sam(256, seed=5)
    load_strict(target, dict(good), source="good.pth", arch="tiny SAM")
    assert all(torch.equal(a, b) for a, b in zip(target.state_dict().values(), good.values()))

    missing = {k: v for k, v in good.items() if k != "image_encoder.neck.0.weight"}
    with pytest.raises(CheckpointMismatchError, match=r"1 missing key\(s\) \(image_encoder.neck.0.weight\)"):
        load_strict(target, missing, source="m.pth", arch="tiny SAM")
    extra = dict(good, **{"image_encoder.blocks.9.attn.qkv.weight": torch.zeros(1)})
    with pytest.raises(CheckpointMismatchError, match=r"1 unexpected key\(s\) \(image_encoder.blocks.9"):
        load_strict(target, extra, source="u.pth", arch="tiny SAM")
    bigger = make_tiny_sam(512).state_dict()  # other size: 32x32 positions instead of 16x16
    with pytest.raises(CheckpointMismatchError, match=r"shape mismatch.*image_encoder.pos_embed: checkpoint "
                                                      r"\(1, 32, 32, 32\) vs model \(1, 16, 16, 32\)"):
        load_strict(target, bigger, source="b.pth", arch="tiny SAM")


def test_factory_refuses_a_checkpoint_of_another_architecture(tiny_sam: SamEncoder, tmp_path) -> None:
    path = tmp_path / "tiny_sam.pth"
    torch.save(tiny_sam.sam.state_dict(), path)
    with pytest.raises(CheckpointMismatchError, match=rf"{path} does not fit SAM vit_b: .*missing key.*shape mismatch"):
        create_sam_encoder("vit_b", weights=path)


def test_factory_names_and_missing_weights(monkeypatch, tmp_path) -> None:
    with pytest.raises(LmsegError, match="unknown SAM model 'vit_x'"):
        create_sam_encoder("vit_x", weights=None)
    monkeypatch.setenv("LMSEG_OFFLINE", "1")
    dest = tmp_path / "cache" / "weights" / "sam_vit_b_01ec64.pth"
    with pytest.raises(LmsegError, match=rf"not in the weights cache.*sam_vit_b_01ec64.pth.*put it at {dest}"):
        create_sam_encoder("vit_b", weights="sam_vit_b")
