"""Gradients reach exactly the parameters meant to train; the predictor against a direct
computation; the segmenters' errors (bad images, vocabularies, checkpoints, options)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import lmseg
from lmseg.errors import LmsegError
from lmseg.models.mrovseg import InferenceConfig, MROVSegPredictor, save_model, semantic_inference
from lmseg.models.mrovseg.config import LossConfig
from lmseg.models.mrovseg.criterion import SetCriterion, semantic_targets
from lmseg.models.mrovseg.task import build_task
from tests.tolerances import fp32_tolerance

from .conftest import tiny_model

VOCAB = ["cat", "dog", "sofa, couch"]


def _image(h: int, w: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def _grads(model) -> dict[str, bool]:
    model.train()
    x = torch.rand(1, 3, 64, 96)
    labels = torch.randint(0, 3, (1, 64, 96))
    out = model(x, torch.randn(3, 1, 32))
    loss = SetCriterion(LossConfig(num_points=64))(out.predictions, semantic_targets(labels, 3, 255))["loss"]
    loss.backward()
    return {n: p.grad is not None and bool(p.grad.abs().sum() > 0) for n, p in model.named_parameters()}


def test_frozen_clip_gets_no_gradient_and_the_head_does() -> None:
    model = tiny_model()
    got = _grads(model)
    assert not any(v for n, v in got.items() if n.startswith("clip."))
    assert all(p.grad is None for p in model.clip.parameters())
    assert not any(p.requires_grad for p in model.clip.parameters())
    head = {n for n, _ in model.named_parameters() if not n.startswith("clip.")}
    ids = {id(p) for p in model.head_parameters()}
    assert ids == {id(p) for n, p in model.named_parameters() if n in head}
    no_grad = sorted(n for n in head if not got[n])
    # the depthwise part of the continuity convs sees a zero gradient at init (its pointwise
    # output is zero-initialised); everything else of the head receives one
    assert all(".continuity.conv.0." in n for n in no_grad), no_grad
    assert model.decoder.head.logit_scale.grad is not None


def test_attention_finetuning_trains_exactly_clip_attention() -> None:
    model = tiny_model(finetune_clip_attention=True)
    got = _grads(model)
    attention = {id(p) for p in model.clip_attention_parameters()}
    for name, p in model.clip.named_parameters():
        assert p.requires_grad == (id(p) in attention), name
        if id(p) in attention and ".resblocks.0." in name:
            assert got["clip." + name], name
        if id(p) not in attention:
            assert p.grad is None, name


def test_task_param_groups(tmp_path) -> None:
    task = build_task({"preset": "mrovseg_tiny", "clip_weights": None,
                       "architecture": {"finetune_clip_attention": True}, "clip_lr_scale": 0.05},
                      {"crop": 64}, seed=0)
    model = task.build_model()
    groups = task.param_groups(model)
    assert [g.name for g in groups] == ["head", "clip_attention"] and groups[1].lr_scale == 0.05
    trainable = {id(p) for p in model.parameters() if p.requires_grad}
    assert {id(p) for g in groups for p in g.params} == trainable
    frozen = build_task({"preset": "mrovseg_tiny", "clip_weights": None}, {"crop": 64}, seed=0)
    assert [g.name for g in frozen.param_groups(frozen.build_model())] == ["head"]
    with pytest.raises(LmsegError, match="data.crop=72 must be a multiple"):
        build_task({"preset": "mrovseg_tiny"}, {"crop": 72}, seed=0)
    with pytest.raises(LmsegError, match="unknown MROVSeg preset"):
        build_task({"preset": "mrovseg_huge"}, {}, seed=0)
    with pytest.raises(LmsegError, match="unknown field.*num_query"):
        build_task({"preset": "mrovseg_tiny", "architecture": {"num_query": 3}}, {}, seed=0)
    with pytest.raises(LmsegError, match="oversample"):
        build_task({"preset": "mrovseg_tiny", "loss": {"oversample": 0.5}}, {}, seed=0)


def test_predictor_equals_direct_computation() -> None:
    model = tiny_model()
    pred = MROVSegPredictor(model, inference=InferenceConfig(short_side=None, upsample="scores"), cache=None)
    img = _image(64, 96)
    got = pred.logits(img, VOCAB)
    x = torch.from_numpy(img).permute(2, 0, 1)[None].float() / 255.0
    with torch.no_grad():
        final = model(x, pred.text_embeddings(VOCAB).embeddings).predictions[-1]
    sem = semantic_inference(final.class_logits, final.mask_logits)[0]
    sem = sem / final.mask_logits.sigmoid().sum(1)
    ref = F.interpolate(sem[None], size=(64, 96), mode="bilinear", align_corners=False)[0]
    assert got.shape == (3, 64, 96) and got.dtype == np.float32
    # the same operations in the same order (one forward pass, semantic_inference over the 8 queries in one
    # chunk, the division, the resize): exact
    np.testing.assert_allclose(got, ref.numpy(), rtol=0, atol=0)
    assert 0.0 <= got.min() and got.max() <= 1.0
    result = pred.predict(img, VOCAB, return_scores=True)
    np.testing.assert_array_equal(result.label_map, got.argmax(0))
    assert result.class_names == ("cat", "dog", "sofa")


def test_default_scores_follow_mask2formers_order() -> None:
    """Mask logits resized to the working size, then to the image size, then scored (Mask2Former's
    forward + sem_seg_postprocess), written out directly."""
    model = tiny_model()
    pred = MROVSegPredictor(model, inference=InferenceConfig(short_side=96), cache=None)
    img = _image(80, 100)
    assert pred.working_size(80, 100) == (96, 128)  # both resizes of the mask logits happen
    got = pred.logits(img, VOCAB)
    x = F.interpolate(torch.from_numpy(img).permute(2, 0, 1)[None].float() / 255.0, size=(96, 128),
                      mode="bilinear", align_corners=False)
    with torch.no_grad():
        final = model(x, pred.text_embeddings(VOCAB).embeddings).predictions[-1]
    masks = F.interpolate(final.mask_logits, size=(96, 128), mode="bilinear", align_corners=False)
    masks = F.interpolate(masks, size=(80, 100), mode="bilinear", align_corners=False).sigmoid()[0]
    probs = final.class_logits[0].softmax(-1)[:, :-1]
    ref = torch.einsum("qc,qhw->chw", probs, masks) / masks.sum(0)
    # the same network and resizes; the scores' query sum and the weights' sum written with other operations:
    # 8 terms (the queries), depth 2. Measured (2026-12-07, shared 2-core CPU): 0 (atol 4.0e-6)
    same = fp32_tolerance(terms=8, depth=2)
    np.testing.assert_allclose(got, ref.numpy(), **same)
    at_stride4 = MROVSegPredictor(model, inference=InferenceConfig(short_side=96, upsample="scores"), cache=None)
    assert not np.allclose(got, at_stride4.logits(img, VOCAB), **same)  # the two orders are different settings


def test_working_size_and_clip_ensemble() -> None:
    model = tiny_model()
    pred = MROVSegPredictor(model, inference=InferenceConfig(short_side=96), cache=None)
    assert pred.working_size(120, 175) == (96, 144)  # 96 x 140, rounded to the 16-px grid
    assert pred.working_size(40, 2000) == (64, 3200)  # capped at 2560, then enlarged so a slice fits
    keep = MROVSegPredictor(model, inference=InferenceConfig(short_side=None), cache=None)
    assert keep.working_size(30, 400) == (64, 848)  # enlarged to hold one slice
    base = pred.logits(_image(80, 100), VOCAB)
    both = MROVSegPredictor(model, inference=InferenceConfig(short_side=96, clip_ensemble=1.0), cache=None)
    clip_only = both.logits(_image(80, 100), VOCAB)
    assert not np.allclose(base, clip_only, **fp32_tolerance(terms=4, depth=3))  # the tolerance of `half` below
    # a softmax over 3 classes (+ void), resized (4 bilinear terms), summed: depth 3
    np.testing.assert_allclose(clip_only.sum(0), 1.0, **fp32_tolerance(terms=4, depth=3))
    half = MROVSegPredictor(model, inference=InferenceConfig(short_side=96, clip_ensemble=0.5), cache=None)
    # the same weighted mean of 2 taken before or after the bilinear resizes (4 terms): depth 3
    np.testing.assert_allclose(half.logits(_image(80, 100), VOCAB), (base + clip_only) / 2,
                               **fp32_tolerance(terms=4, depth=3))


def test_segmenters_errors_and_checkpoints(tmp_path) -> None:
    assert {"mrovseg_tiny", "mrovseg_vitb16", "mrovseg_vitl14"} <= set(lmseg.available_segmenters())
    seg = lmseg.create_segmenter("mrovseg_tiny", seed=3)
    with pytest.raises(LmsegError):
        seg.predict(tmp_path / "missing.jpg", VOCAB)
    (tmp_path / "bad.jpg").write_bytes(b"not an image")
    with pytest.raises(LmsegError):
        seg.predict(tmp_path / "bad.jpg", VOCAB)
    with pytest.raises(LmsegError):
        seg.predict(_image(40, 40), [])
    with pytest.raises(LmsegError):
        seg.predict(_image(40, 40), ["cat", "cat"])
    with pytest.raises(LmsegError, match="needs a trained MROVSeg checkpoint"):
        lmseg.create_segmenter("mrovseg_vitb16")
    with pytest.raises(LmsegError, match="unknown field"):
        lmseg.create_segmenter("mrovseg_vitb16", inference={"short": 3})
    ckpt = save_model(seg.model, tmp_path / "tiny.pt")
    again = lmseg.create_segmenter("mrovseg_tiny", checkpoint=ckpt)
    img = _image(70, 90)
    np.testing.assert_array_equal(again.logits(img, VOCAB), seg.logits(img, VOCAB))
    with pytest.raises(LmsegError, match="checkpoint of 'mrovseg_tiny'.*use create_segmenter\\('mrovseg_tiny'"):
        lmseg.create_segmenter("mrovseg_vitb16", checkpoint=ckpt)
    lm = lmseg.create_segmenter("lmseg_tiny")
    from lmseg.models.lmseg import save_model as save_lmseg

    other = save_lmseg(lm.model, tmp_path / "lmseg.pt")
    with pytest.raises(LmsegError, match="not a checkpoint of MROVSeg: it looks like an 'lmseg' checkpoint.*'lmseg_tiny'"):
        lmseg.create_segmenter("mrovseg_tiny", checkpoint=other)
    with pytest.raises(LmsegError, match="bad.jpg.*corrupt or not a"):
        lmseg.create_segmenter("mrovseg_tiny", checkpoint=tmp_path / "bad.jpg")
    torch.save({"visual.conv1.weight": torch.zeros(1)}, tmp_path / "clip.pt")
    with pytest.raises(LmsegError, match="a CLIP checkpoint"):
        lmseg.create_segmenter("mrovseg_tiny", checkpoint=tmp_path / "clip.pt")
    with pytest.raises(LmsegError, match="not found"):
        lmseg.create_segmenter("mrovseg_tiny", checkpoint=tmp_path / "nope.pt")
    assert seg.settings()["model"]["name"] == "mrovseg_tiny" and seg.settings()["inference"]["short_side"] == 96
