"""trident_tiny end to end on real images: an independent straight-line reference, shapes, determinism."""

from __future__ import annotations

from dataclasses import replace

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from segment_anything import SamPredictor
from segment_anything.modeling.image_encoder import add_decomposed_rel_pos

from lmseg.models.trident import TridentPredictor
from lmseg.registry import available_segmenters, create_segmenter
from lmseg.text.ensemble import encode_vocabulary
from lmseg.vocab import vocabulary_from_names
from tests.tolerances import fp32_tolerance, half_precision_bound, longest_reduction

VOCAB = ["background", "person, man", "grass", "sky"]
# trident_tiny in float32 two ways (windows batched or one at a time, other operation orders): the
# longest reduction is the 768-term patch embedding (16 x 16 x 3); the longest chain runs through DINO
# (patch embedding, 2 blocks x 6 products, normalisation, similarities, their mean, softmax) or SAM (2
# blocks, the last attention, its cosine threshold and renormalisation) into the CLIP value path
# (p @ v, out-projection, ln_post, projection, norm), the cosine with the text, the window mean and
# the resize: depth 32. The class softmax of 40 x cosine turns an absolute cosine error e into a
# relative probability error of up to 2 x 40 e: atol 5.1e-2. Float32 against float64 measured on the
# 2-core EPYC: max about 6.6e-7 (test_half_precision_encoders_stay_close's 0.15 / 2**13 / sqrt(768)).
FP32 = {k: v * 2 * 40 for k, v in fp32_tolerance(terms=768, depth=32).items()}


def _pos(pos_embed: torch.Tensor, n0: int, h: int, w: int) -> torch.Tensor:
    """The public code's positional-embedding resize: bicubic with scale_factor (n + 0.1) / n0."""
    if (h, w) == (n0, n0):
        return pos_embed.reshape(1, -1, pos_embed.shape[-1])
    cls, patch = pos_embed.reshape(-1, pos_embed.shape[-1])[:1], pos_embed.reshape(-1, pos_embed.shape[-1])[1:]
    grid = patch.reshape(1, n0, n0, -1).permute(0, 3, 1, 2)
    grid = F.interpolate(grid, scale_factor=((h + 0.1) / n0, (w + 0.1) / n0), mode="bicubic")
    return torch.cat([cls[None], grid.permute(0, 2, 3, 1).reshape(1, h * w, -1)], dim=1)


@torch.no_grad()
def _reference_probs(seg: TridentPredictor, path: str, names: list[str]) -> torch.Tensor:
    """Trident (steps 2-11 of lmseg.models.trident) in one straight line from the stock modules, decoding and
    resizing with OpenCV as the public code does (cv2.imread, mmcv's cv2 imrescale, cv2.resize)."""
    cfg, model = seg.config, seg.model
    rgb = cv2.cvtColor(cv2.imread(path, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    H, W = rgb.shape[:2]
    s = min(cfg.max_long_side / max(H, W), cfg.short_side / min(H, W))
    small = cv2.resize(rgb, (int(W * s + 0.5), int(H * s + 0.5)), interpolation=cv2.INTER_LINEAR)
    mean, std = torch.tensor([122.771, 116.746, 104.094]), torch.tensor([68.501, 66.632, 70.323])
    x = (torch.tensor(small).permute(2, 0, 1)[None].float() - mean.view(1, 3, 1, 1)) / std.view(1, 3, 1, 1)
    h, w = x.shape[-2:]
    if h % 16 or w % 16:
        nl = -(-max(h, w) // 16) * 16
        nh, nw = int(h * nl / max(h, w)), int(w * nl / max(h, w))
        nh, nw = max(-(-nh // 16) * 16, cfg.window), max(-(-nw // 16) * 16, cfg.window)
        x = F.interpolate(x, (nh, nw), mode="bilinear", align_corners=False)
    h, w = x.shape[-2:]
    crop, stride = cfg.window, cfg.stride
    boxes = []
    for r in range(max(h - crop + stride - 1, 0) // stride + 1):
        for c in range(max(w - crop + stride - 1, 0) // stride + 1):
            y2, x2 = min(r * stride + crop, h), min(c * stride + crop, w)
            boxes.append((y2 - crop, x2 - crop, y2, x2))
    wins = torch.cat([x[:, :, a:c, b:d] for a, b, c, d in boxes])
    n = crop // 16
    # DINO
    vit = model.dino.model
    di = wins * torch.tensor([0.26862954, 0.26130258, 0.27577711]).view(1, 3, 1, 1) + torch.tensor(
        [0.48145466, 0.4578275, 0.40821073]).view(1, 3, 1, 1)
    imagenet_mean, imagenet_std = torch.tensor([0.485, 0.456, 0.406]), torch.tensor([0.229, 0.224, 0.225])
    di = (di - imagenet_mean.view(1, 3, 1, 1)) / imagenet_std.view(1, 3, 1, 1)
    t = vit.patch_embed(di).reshape(len(boxes), n * n, -1)
    t = torch.cat([vit.cls_token.expand(len(boxes), -1, -1), t], 1) + _pos(vit.pos_embed, 4, n, n)
    f = F.normalize(vit.norm(vit.blocks(t))[:, 1:], dim=-1)
    sim = f @ f.transpose(1, 2)
    sim = (sim - sim.mean() * cfg.beta) * cfg.gamma
    p = torch.where(sim < 0, torch.full_like(sim, float("-inf")), sim).softmax(-1)
    # CLIP
    vis = model.clip.model.visual
    z = vis.conv1(wins).flatten(2).transpose(1, 2)
    z = torch.cat([vis.class_embedding.expand(len(boxes), 1, -1), z], 1) + _pos(vis.positional_embedding, 4, n, n)
    z = vis.ln_pre(z)
    for block in vis.transformer.resblocks[:-1]:
        z = block(z)
    last = vis.transformer.resblocks[-1]
    v = F.linear(last.ln_1(z[:, 1:]), last.attn.in_proj_weight, last.attn.in_proj_bias).chunk(3, -1)[2]
    out = last.attn.out_proj(p @ v)  # (B, n*n, width)
    canvas = torch.zeros(out.shape[-1], h // 16, w // 16)
    count = torch.zeros(1, h // 16, w // 16)
    for i, (a, b, c, d) in enumerate(boxes):
        canvas[:, a // 16:c // 16, b // 16:d // 16] += out[i].T.reshape(-1, n, n)
        count[:, a // 16:c // 16, b // 16:d // 16] += 1
    canvas = canvas / count
    # SAM
    rh, rw = -(-H // 16) * 16, -(-W // 16) * 16
    sam_img = rgb if (rh, rw) == (H, W) else cv2.resize(rgb, (rw, rh))
    predictor = SamPredictor(model.sam.sam)
    seen = []
    attn = model.sam.sam.image_encoder.blocks[-1].attn
    handle = attn.register_forward_hook(lambda m, a, o: seen.append(a[0]))
    predictor.set_image(sam_img)
    handle.remove()
    xin = seen[0]
    g = xin.shape[1]
    qkv = attn.qkv(xin).reshape(1, g * g, 3, attn.num_heads, -1).permute(2, 0, 3, 1, 4)[:, 0]
    q, k, vv = qkv[0], qkv[1], qkv[2]
    scores = add_decomposed_rel_pos(
        (q * attn.scale) @ k.transpose(-2, -1), q, attn.rel_pos_h, attn.rel_pos_w, (g, g), (g, g)
    )
    wts = scores.softmax(-1)
    gh, gw = predictor.input_size[0] // 16, predictor.input_size[1] // 16
    keep = (torch.arange(g)[:, None] < gh) & (torch.arange(g)[None, :] < gw)
    idx = keep.flatten().nonzero()[:, 0]
    wts, vv = wts[:, idx][:, :, idx], F.normalize(vv[:, idx], dim=-1)
    cs = vv @ vv.transpose(1, 2)
    thr = (cfg.cos_fac * cs.mean(dim=(0, 2))).clamp(max=0.9)[None, :, None]
    a = torch.where(cs > thr, wts, torch.zeros_like(wts)).mean(0)
    a = a / a.sum(-1, keepdim=True)
    feats = F.interpolate(canvas[None], (gh, gw), mode="bilinear", align_corners=False)[0]
    feats = feats.reshape(canvas.shape[0], -1).T
    tokens = F.normalize(vis.ln_post(a @ feats) @ vis.proj, dim=-1)
    vocab = vocabulary_from_names(names)
    text = encode_vocabulary(model.clip, vocab)
    cos = (tokens @ text.embeddings.T).T.reshape(-1, gh, gw)
    probs = (F.interpolate(cos[None], (H, W), mode="bilinear", align_corners=False)[0] * 40).softmax(0)
    return torch.stack([probs[text.query_to_class == c].max(0).values for c in range(len(vocab))])


@pytest.fixture(scope="module")
def interpolating_segmenter() -> TridentPredictor:
    """96-px windows (6x6 tokens): positional embeddings are resized, windows overlap in both axes."""
    return create_segmenter("trident_tiny", config={"short_side": 112, "window": 96, "stride": 48, "window_batch": 4})


def test_logits_equal_straight_line_reference(interpolating_segmenter, sample_images) -> None:
    for path in sample_images:
        got = interpolating_segmenter.logits(path, VOCAB)
        expected = _reference_probs(interpolating_segmenter, path, VOCAB).numpy()
        assert got.shape == expected.shape == (4, *np.asarray(Image.open(path)).shape[:2])
        np.testing.assert_allclose(got, expected, **FP32)


def test_predict_shapes_ranges_and_consistency(tiny_segmenter, sample_images) -> None:
    for path in sample_images:
        height, width = np.asarray(Image.open(path)).shape[:2]
        out = tiny_segmenter.predict(path, VOCAB, return_scores=True)
        assert out.label_map.shape == (height, width) and out.label_map.dtype == np.int32
        assert out.class_names == ("background", "person", "grass", "sky")
        assert out.scores.shape == (4, height, width) and out.scores.dtype == np.float32
        assert out.scores.min() >= 0 and out.scores.max() <= 1
        np.testing.assert_array_equal(out.label_map, out.scores.argmax(0))  # prob_thd 0, no refinement
        np.testing.assert_array_equal(tiny_segmenter.logits(path, VOCAB), out.scores)
        assert tiny_segmenter.predict(path, VOCAB).scores is None


def test_deterministic_across_calls_and_builds(tiny_segmenter, sample_images) -> None:
    first = tiny_segmenter.logits(sample_images[0], VOCAB)
    np.testing.assert_array_equal(first, tiny_segmenter.logits(sample_images[0], VOCAB))
    rebuilt = create_segmenter("trident_tiny")
    np.testing.assert_array_equal(first, rebuilt.logits(sample_images[0], VOCAB))
    other = create_segmenter("trident_tiny", seed=1)
    assert not np.allclose(first, other.logits(sample_images[0], VOCAB), **FP32)  # beyond another order's rounding


def test_inputs_in_memory_equal_paths(tiny_segmenter, sample_images) -> None:
    path = sample_images[1]
    rgb = np.asarray(Image.open(path).convert("RGB"))
    by_path = tiny_segmenter.logits(path, VOCAB)
    np.testing.assert_array_equal(by_path, tiny_segmenter.logits(rgb, VOCAB))
    np.testing.assert_array_equal(by_path, tiny_segmenter.logits(Image.open(path), VOCAB))


def test_background_threshold_and_synonyms(tiny_segmenter, sample_images) -> None:
    probs = tiny_segmenter.logits(sample_images[0], VOCAB)
    cfg = replace(tiny_segmenter.config, prob_thd=float(np.quantile(probs.max(0), 0.5)))
    seg = TridentPredictor(type(tiny_segmenter.model)(tiny_segmenter.model.clip, tiny_segmenter.model.dino,
                                                      tiny_segmenter.model.sam, cfg))
    labels = seg.predict(sample_images[0], VOCAB).label_map
    low = probs.max(0) < cfg.prob_thd
    assert low.any() and (labels[low] == 0).all()
    np.testing.assert_array_equal(labels[~low], probs.argmax(0)[~low])
    # background synonyms replace class 0's queries (and change its probabilities)
    cfg_bg = replace(cfg, prob_thd=0.0, background_names=("sky", "wall", "tree"))
    seg_bg = TridentPredictor(type(seg.model)(seg.model.clip, seg.model.dino, seg.model.sam, cfg_bg))
    text = seg_bg.text_embeddings(VOCAB)
    assert text.queries == ("sky", "wall", "tree", "person", "man", "grass", "sky")
    assert not np.allclose(seg_bg.logits(sample_images[0], VOCAB)[0], probs[0], **FP32)


def test_split_halves_runs_sam_twice(tiny_segmenter, sample_images) -> None:
    model = tiny_segmenter.model
    cfg = replace(tiny_segmenter.config, split_halves=True)
    seg = TridentPredictor(type(model)(model.clip, model.dino, model.sam, cfg))
    calls = []
    handle = model.sam.encoder.register_forward_hook(lambda m, a, o: calls.append(a[0].shape))
    try:
        probs = seg.logits(sample_images[0], VOCAB)
    finally:
        handle.remove()
    assert len(calls) == 2 and probs.shape == (4, 512, 683)


def test_registry_names() -> None:
    assert {"trident_vitb16", "trident_vith14", "trident_tiny"} <= set(available_segmenters())
    assert isinstance(create_segmenter("trident_tiny"), TridentPredictor)


def test_half_precision_encoders_stay_close(sample_images) -> None:
    """The GPU configuration's dtypes (fp16 encoders, fp32 prompt side and text), exercised on the CPU.

    Against the same model in float64 (the steps that cast to float32 stay float32 there), the
    float16 error is bounded by :func:`tests.tolerances.half_precision_bound`: the float32 error,
    measured on this machine, times ``2**13`` (float16's larger roundings) times ``sqrt(768)``
    (a CPU that accumulates float16 in float16: 768 is the encoders' longest inner product, the
    16 x 16 x 3 patch embeddings). Measured (2026-12-07): on the AMD EPYC development machine
    (float16 products accumulated in float32) max 1.3e-3 against a bound of 0.15, mean 7.6e-5
    against 9.2e-3 (margins 115 and 121); the CPU with AVX512-FP16/AMX where a fixed 1e-2 failed
    gave max 1.2e-2 (margin 12). The bound is loose for the maximum because two steps threshold
    (DINO's proxy attention drops negative similarities, SAM's filter drops values under its
    threshold): a rounding that flips one of them moves a probability by more than the rounding.
    """
    refinement = {"enabled": True, "iou_thresh": -1e9, "minimal_area": 20, "coarse_thresh": 0.0}
    seg = create_segmenter("trident_tiny", config={"refinement": refinement})
    full = seg.logits(sample_images[1], VOCAB)
    seg.model.double()
    exact = seg.logits(sample_images[1], VOCAB).astype(np.float64)
    seg.model.float()  # float64 -> float32 is exact: the float32 model again
    encoders = (seg.model.clip.model.visual, seg.model.dino, seg.model.sam.sam.image_encoder)
    for encoder in encoders:
        encoder.half()
    half = seg.logits(sample_images[1], VOCAB)
    assert half.dtype == np.float32 and np.isfinite(half).all()
    fp32_error, fp16_error = np.abs(full - exact), np.abs(half - exact)
    # one float32 side of the float32 comparisons above: within half of their two-sided tolerance
    assert (fp32_error <= (FP32["atol"] + FP32["rtol"] * np.abs(exact)) / 2).all()
    terms = longest_reduction(*encoders)
    assert terms == 768
    assert fp16_error.max() <= half_precision_bound(float(fp32_error.max()), terms)
    assert fp16_error.mean() <= half_precision_bound(float(fp32_error.mean()), terms)
    out = seg.predict(sample_images[1], VOCAB, return_scores=True)  # refinement with fp16 image features
    assert out.label_map.shape == full.shape[1:]
