"""DenseCLIP: parity with open_clip's own computation, positional embeddings, shapes, last block, text."""

from __future__ import annotations

import math
import socket
import time

import open_clip
import pytest
import torch
import torch.nn.functional as F

from lmseg.backbones.clip import DenseCLIP
from lmseg.backbones.clip_factory import cached_tag_file, create_dense_clip
from lmseg.backbones.pos_embed import interpolate_pos_embed
from lmseg.errors import LmsegError
from tests.tolerances import TINY_CLIP_TEXT, fp32_tolerance


def _images(*shape: int, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g)


# ---- unmodified path == open_clip ----------------------------------------------------------


@torch.no_grad()
def test_unmodified_path_equals_open_clip(tiny_clip: DenseCLIP) -> None:
    x = _images(2, 3, 64, 64)
    out = tiny_clip(x, layers=[0, 1, -1])
    visual = tiny_clip.visual

    # pooled == CLIP.encode_image (the public API)
    torch.testing.assert_close(out.pooled, tiny_clip.model.encode_image(x), rtol=0, atol=0)
    # intermediates == VisionTransformer.forward_intermediates (NCHW)
    ref = visual.forward_intermediates(x, indices=[0, 1, 2], output_fmt="NCHW")
    for mine, theirs in zip((out.intermediates[0], out.intermediates[1], out.intermediates[-1]),
                            ref["image_intermediates"]):
        torch.testing.assert_close(mine, theirs, rtol=0, atol=0)
    torch.testing.assert_close(out.pooled, ref["image_features"], rtol=0, atol=0)
    # dense == open_clip's own patch tokens (after ln_post) projected into the joint space
    visual.output_tokens = True
    try:
        _, tokens = visual(x)
    finally:
        visual.output_tokens = False
    ref_dense = (tokens @ visual.proj).transpose(1, 2).reshape(2, -1, 4, 4)
    # the same tokens projected (width 48 terms): depth 1
    torch.testing.assert_close(out.dense, ref_dense, **fp32_tolerance(terms=48))
    assert out.dense.shape == (2, tiny_clip.embed_dim, 4, 4)


@torch.no_grad()
def test_real_vit_b16_architecture_at_224() -> None:
    torch.manual_seed(0)
    clip = create_dense_clip("ViT-B-16", pretrained=None)
    assert (clip.width, clip.embed_dim, clip.num_layers, clip.num_heads, clip.native_grid) == (768, 512, 12, 12, (14, 14))
    x = _images(1, 3, 224, 224)
    out = clip(x, layers=[3, 7])
    assert out.dense.shape == (1, 512, 14, 14)
    assert out.intermediates[3].shape == out.intermediates[7].shape == (1, 768, 14, 14)
    torch.testing.assert_close(out.pooled, clip.model.encode_image(x), rtol=0, atol=0)
    ref = clip.visual.forward_intermediates(x, indices=[3, 7], output_fmt="NCHW")
    torch.testing.assert_close(out.intermediates[7], ref["image_intermediates"][1], rtol=0, atol=0)


# ---- positional embedding ------------------------------------------------------------------


def test_pos_embed_at_native_size_is_identity(tiny_clip: DenseCLIP) -> None:
    pos = tiny_clip.visual.positional_embedding.detach()
    assert torch.equal(interpolate_pos_embed(pos, (4, 4), (4, 4)), pos)
    assert torch.equal(interpolate_pos_embed(pos, (4, 4), (4, 4), offset=0.1), pos)
    assert torch.equal(tiny_clip.positional_embedding((4, 4)), pos)


def test_pos_embed_resize_keeps_axes_and_class_position() -> None:
    # channel 0 varies along rows only, channel 1 along columns only, channel 2 is constant
    h0, w0 = 4, 5
    rows = torch.arange(h0, dtype=torch.float32).view(h0, 1).expand(h0, w0)
    cols = torch.arange(w0, dtype=torch.float32).view(1, w0).expand(h0, w0)
    patch = torch.stack([rows, cols, torch.full((h0, w0), 3.0)], dim=-1).reshape(h0 * w0, 3)
    cls = torch.tensor([[7.0, 8.0, 9.0]])
    pos = torch.cat([cls, patch])
    for offset in (0.0, 0.1):
        out = interpolate_pos_embed(pos, (h0, w0), (3, 8), offset=offset)
        assert out.shape == (1 + 24, 3)
        assert torch.equal(out[0], cls[0])
        grid = out[1:].reshape(3, 8, 3)
        # separable interpolation: a function of the row stays constant along each row, etc.; each value is a
        # 4 x 4 = 16-term bicubic sum of values up to 4 (scale): depth 2 (the two directions). Measured
        # (2026-12-07, shared 2-core CPU): 1.2e-6 (atol 2.3e-5, margin 19)
        tol = fp32_tolerance(terms=16, depth=2, scale=4.0)
        torch.testing.assert_close(grid[..., 0], grid[:, :1, 0].expand(3, 8), **tol)
        torch.testing.assert_close(grid[..., 1], grid[:1, :, 1].expand(3, 8), **tol)
        torch.testing.assert_close(grid[..., 2], torch.full((3, 8), 3.0), **tol)  # partition of unity
        assert (grid[1:, 0, 0] > grid[:-1, 0, 0]).all() and (grid[0, 1:, 1] > grid[0, :-1, 1]).all()


def test_pos_embed_offset_convention_matches_the_reference_formula() -> None:
    # the hub-DINO/Trident formula, written out for a square window (21x21 tokens from 14x14)
    pos = torch.randn(1 + 14 * 14, 8)
    n = 21
    ref = F.interpolate(
        pos[1:].reshape(1, 14, 14, 8).permute(0, 3, 1, 2), scale_factor=((n + 0.1) / 14, (n + 0.1) / 14),
        mode="bicubic",
    ).permute(0, 2, 3, 1).reshape(n * n, 8)
    out = interpolate_pos_embed(pos, (14, 14), (n, n), offset=0.1)
    torch.testing.assert_close(out[1:], ref, rtol=0, atol=0)
    # the two conventions differ: beyond the rounding of a 16-term bicubic sum in two directions
    differs = fp32_tolerance(terms=16, depth=2, scale=float(pos.abs().max()))
    assert not torch.allclose(interpolate_pos_embed(pos, (14, 14), (n, n)), out, **differs)


def test_pos_embed_rejects_wrong_length() -> None:
    with pytest.raises(ValueError, match="positions"):
        interpolate_pos_embed(torch.randn(10, 4), (4, 4), (2, 2))


# ---- shapes, batches, sizes ----------------------------------------------------------------


@torch.no_grad()
def test_non_square_input_shapes(tiny_clip: DenseCLIP) -> None:
    out = tiny_clip(_images(2, 3, 48, 96), layers=[1])
    assert out.dense.shape == (2, 32, 3, 6)
    assert out.pooled.shape == (2, 32)
    assert out.intermediates[1].shape == (2, 48, 3, 6)
    tall = tiny_clip(_images(1, 3, 112, 32))
    assert tall.dense.shape == (1, 32, 7, 2)


@torch.no_grad()
def test_batch_items_are_independent(tiny_clip: DenseCLIP) -> None:
    x = _images(3, 3, 48, 80)
    batch = tiny_clip(x).dense
    alone = tiny_clip(x[1:2]).dense
    # patch embedding (768 terms), 3 blocks x 6 products, ln_pre, ln_post, the projection: depth 21
    torch.testing.assert_close(batch[1:2], alone, **fp32_tolerance(terms=768, depth=21))


def test_input_not_multiple_of_patch_is_rejected(tiny_clip: DenseCLIP) -> None:
    with pytest.raises(ValueError, match="multiple of the patch size"):
        tiny_clip(torch.zeros(1, 3, 50, 64))


def test_layer_index_out_of_range(tiny_clip: DenseCLIP) -> None:
    with pytest.raises(ValueError, match="out of range"):
        tiny_clip(torch.zeros(1, 3, 64, 64), layers=[3])


def test_normalize_uses_clip_constants(tiny_clip: DenseCLIP) -> None:
    mean = torch.tensor(open_clip.OPENAI_DATASET_MEAN).view(1, 3, 1, 1)
    # the same float32 constants subtracted: exactly 0
    torch.testing.assert_close(tiny_clip.normalize(mean.expand(1, 3, 2, 2)), torch.zeros(1, 3, 2, 2), rtol=0, atol=0)


# ---- last block access ---------------------------------------------------------------------


@torch.no_grad()
def test_recomputing_the_last_block_from_its_parts_reproduces_the_model(tiny_clip: DenseCLIP) -> None:
    x = _images(2, 3, 48, 80)
    full = tiny_clip(x, layers=[0])
    tokens, grid, inter = tiny_clip.forward_to_last_block(x, layers=[0])
    assert grid == (3, 5) and tokens.shape == (2, 16, 48)
    torch.testing.assert_close(inter[0], full.intermediates[0], rtol=0, atol=0)

    block = tiny_clip.last_block
    q, k, v = tiny_clip.last_block_qkv(tokens)
    heads, head_dim = tiny_clip.num_heads, tiny_clip.width // tiny_clip.num_heads
    assert q.shape == (2, heads, 16, head_dim)
    attn = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(head_dim), dim=-1)
    mixed = (attn @ v).transpose(1, 2).reshape(2, 16, tiny_clip.width)
    y = tokens + tiny_clip.last_block_out_proj(mixed)
    y = y + block.mlp(block.ln_2(y))
    projected = tiny_clip.project(y)
    # the last block written out: q/k/v, scores, softmax, values, out-projection, 2 MLP layers (192 terms), ln_post
    # and the projection: depth 9
    torch.testing.assert_close(projected[:, 0], full.pooled, **fp32_tolerance(terms=192, depth=9))
    torch.testing.assert_close(tiny_clip.to_map(projected[:, 1:], grid), full.dense, **fp32_tolerance(terms=192, depth=9))

    # the value helper is the heads of v side by side
    values = tiny_clip.last_block_values(tokens[:, 1:])
    # the same 48-term projection of 15 tokens or of 16: depth 1. Measured (2026-12-07, shared 2-core CPU): 0
    torch.testing.assert_close(values, v[:, :, 1:].transpose(1, 2).reshape(2, 15, tiny_clip.width),
                               **fp32_tolerance(terms=tiny_clip.width))


def test_forward_to_last_block_refuses_the_last_block(tiny_clip: DenseCLIP) -> None:
    with pytest.raises(ValueError, match="last block"):
        tiny_clip.forward_to_last_block(torch.zeros(1, 3, 64, 64), layers=[-1])


def test_gradients_flow_through_dense_features(tiny_clip: DenseCLIP) -> None:
    attn = tiny_clip.last_block.attn
    attn.in_proj_weight.grad = None
    tiny_clip(_images(1, 3, 32, 48)).dense.sum().backward()
    assert attn.in_proj_weight.grad is not None and attn.in_proj_weight.grad.abs().sum() > 0
    tiny_clip.zero_grad(set_to_none=True)


# ---- text ----------------------------------------------------------------------------------


def test_encode_text_matches_open_clip(tiny_clip: DenseCLIP) -> None:
    texts = ["a photo of a cat.", "a photo of a dog.", "a photo of a red sofa."]
    with torch.no_grad():
        emb = tiny_clip.encode_text(texts, batch_size=2)
    assert emb.shape == (3, 32)
    # the normalisation and the norm, 32 terms each: depth 2. Measured (2026-12-07, shared 2-core CPU): 0
    torch.testing.assert_close(emb.norm(dim=-1), torch.ones(3), **fp32_tolerance(terms=32, depth=2))
    tokens = open_clip.get_tokenizer("lmseg-tiny-ViT")(texts)
    with torch.no_grad():
        ref = tiny_clip.model.encode_text(tokens, normalize=True)
    torch.testing.assert_close(emb, ref, **TINY_CLIP_TEXT)
    trained = tiny_clip.encode_text(texts, batch_size=2)  # with gradients: the same numbers
    assert trained.requires_grad == any(p.requires_grad for p in tiny_clip.model.parameters())
    torch.testing.assert_close(trained.detach(), ref, **TINY_CLIP_TEXT)
    with pytest.raises(ValueError, match="no texts"):
        tiny_clip.encode_text([])


# ---- weights and the QuickGELU trap -------------------------------------------------------


def test_file_weights_load_strictly_and_reproduce_the_model(tiny_clip: DenseCLIP, tmp_path) -> None:
    path = tmp_path / "tiny.pt"
    torch.save(tiny_clip.model.state_dict(), path)
    loaded = create_dense_clip("lmseg-tiny-ViT", pretrained=path, quick_gelu=False)
    assert not loaded.quick_gelu
    x = _images(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x).dense, tiny_clip(x).dense, rtol=0, atol=0)
    quick = create_dense_clip("lmseg-tiny-ViT", pretrained=path, quick_gelu=True)
    assert quick.quick_gelu
    with torch.no_grad():
        # the activation matters: beyond the rounding of the tower computed two ways (test_batch_items_are_independent)
        assert not torch.allclose(quick(x).dense, tiny_clip(x).dense, **fp32_tolerance(terms=768, depth=21))


def test_file_weights_without_quick_gelu_choice_are_refused(tiny_clip: DenseCLIP, tmp_path) -> None:
    path = tmp_path / "tiny.pt"
    torch.save(tiny_clip.model.state_dict(), path)
    with pytest.raises(LmsegError, match="QuickGELU.*quick_gelu=True"):
        create_dense_clip("lmseg-tiny-ViT", pretrained=path)


def test_quick_gelu_contradicting_the_tag_is_refused() -> None:
    # decided before anything is downloaded: OpenAI weights were trained with QuickGELU
    with pytest.raises(LmsegError, match="contradicts pretrained tag ViT-B-16/openai.*QuickGELU"):
        create_dense_clip("ViT-B-16", pretrained="openai", quick_gelu=False)
    with pytest.raises(LmsegError, match="quick_gelu=False contradicts"):
        create_dense_clip("ViT-B-16-quickgelu", pretrained=None, quick_gelu=False)


def _no_network(monkeypatch) -> None:
    def refuse(*args, **kwargs):
        raise AssertionError("the network was used")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)


def test_offline_tag_missing_from_the_caches_fails_at_once_in_one_line(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("LMSEG_OFFLINE", "1")
    _no_network(monkeypatch)
    start = time.monotonic()
    with pytest.raises(LmsegError) as info:
        create_dense_clip("ViT-B-16", pretrained="openai", cache_dir=tmp_path)
    assert time.monotonic() - start < 5  # was 53 s of model-hub retries
    message = str(info.value)
    assert "\n" not in message and message.startswith("LMSEG_OFFLINE is set")
    assert "ViT-B-16.pt" in message and "clip=PATH" in message and "pretrained=" not in message


def test_offline_tag_is_found_in_either_local_cache(tmp_path, monkeypatch) -> None:
    _no_network(monkeypatch)
    cfg = open_clip.get_pretrained_cfg("ViT-B-16", "openai")
    url_cache = tmp_path / "url"
    url_cache.mkdir()
    (url_cache / "ViT-B-16.pt").write_bytes(b"weights")
    assert cached_tag_file("ViT-B-16", "openai", cfg, url_cache) == str(url_cache / "ViT-B-16.pt")
    # the Hugging Face hub cache layout: models--<org>--<name>/snapshots/<revision>/<file>, refs/main
    repo = tmp_path / "hub" / "models--timm--vit_base_patch16_clip_224.openai"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("abc123")
    (repo / "snapshots" / "abc123").mkdir(parents=True)
    (repo / "snapshots" / "abc123" / "open_clip_model.safetensors").write_bytes(b"weights")
    found = cached_tag_file("ViT-B-16", "openai", cfg, tmp_path / "hub")
    assert found == str(repo / "snapshots" / "abc123" / "open_clip_model.safetensors")


def test_checkpoint_with_missing_and_unexpected_keys_is_refused(tiny_clip: DenseCLIP, tmp_path) -> None:
    state = dict(tiny_clip.model.state_dict())
    del state["visual.proj"]
    state["visual.extra"] = torch.zeros(1)
    path = tmp_path / "bad.pt"
    torch.save(state, path)
    with pytest.raises(LmsegError, match=r"does not fit open_clip lmseg-tiny-ViT: 1 missing key\(s\) \(visual.proj\); "
                                         r"1 unexpected key\(s\) \(visual.extra\)"):
        create_dense_clip("lmseg-tiny-ViT", pretrained=path, quick_gelu=False)


def test_unknown_model_tag_or_file() -> None:
    with pytest.raises(LmsegError, match="unknown open_clip model"):
        create_dense_clip("ViT-Q-99", pretrained=None)
    with pytest.raises(LmsegError, match="neither a pretrained tag of ViT-B-16 .*openai.* nor an existing file"):
        create_dense_clip("ViT-B-16", pretrained="no-such-tag")


def test_offline_tag_download_gives_a_clear_message(tmp_path) -> None:
    # open_clip downloads tags itself; with the hub offline (set before huggingface_hub is
    # imported, hence a subprocess) the failure must name what to fetch and the QuickGELU choice.
    import os
    import subprocess
    import sys

    code = (
        "from lmseg.backbones.clip_factory import cached_tag_file, create_dense_clip\n"
        "from lmseg.errors import LmsegError\n"
        "try:\n"
        f"    create_dense_clip('ViT-B-16', pretrained='openai', cache_dir={str(tmp_path)!r})\n"
        "except LmsegError as e:\n"
        "    print('LMSEG', e)\n"
    )
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300, check=False
    )
    assert "LMSEG" in done.stdout, done.stdout + done.stderr
    assert "huggingface.co/timm/vit_base_patch16_clip_224.openai" in done.stdout
    assert "quick_gelu=True" in done.stdout
