"""LMSeg's benchmark presets: CAT-Seg's test protocol and class names, against a straight-line
re-implementation of CAT-Seg's ``inference_sliding_window`` (``cat_seg_model.py`` at 6d3a188)."""

from __future__ import annotations

import json
from importlib import resources

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

import lmseg
from lmseg.errors import LmsegError
from lmseg.text.prompts import build_prompts, encode_prompts
from lmseg.vocab import get_vocabulary, vocabulary_from_names
from tests.tolerances import fp32_tolerance

from .conftest import SAMPLES

ADE_IMAGE = next((SAMPLES / "ade150_sceneparsing_val3" / "images").iterdir())


def _catseg_names(benchmark: str) -> list[str]:
    """CAT-Seg's class list as its ``class_embeddings`` reads it: JSON, names split at ", "."""
    path = resources.files("lmseg.vocab") / "data" / "catseg" / f"{benchmark}.json"
    return json.loads(path.read_text(encoding="utf-8"))


def _detectron2_short_edge(h: int, w: int, size: int = 640, max_size: int = 2560) -> tuple[int, int]:
    """detectron2's ResizeShortestEdge.get_output_shape, written out."""
    scale = size / min(h, w)
    newh, neww = (size, scale * w) if h < w else (scale * h, size)
    if max(newh, neww) > max_size:
        newh, neww = newh * max_size / max(newh, neww), neww * max_size / max(newh, neww)
    return int(newh + 0.5), int(neww + 0.5)


@torch.no_grad()
def _catseg_reference(seg, rgb: np.ndarray, text: torch.Tensor) -> torch.Tensor:
    """CAT-Seg's test in one straight line: PIL short-edge resize, 640 x 640, unfold/fold 384 windows
    with stride int(384 * 0.667), a 384 global view, each view to the model's input size."""
    model, size = seg.model, seg.model.config.input_size
    h0, w0 = rgb.shape[:2]
    nh, nw = _detectron2_short_edge(h0, w0)
    image = torch.from_numpy(np.asarray(Image.fromarray(rgb).resize((nw, nh), Image.BILINEAR)).copy())
    image = image.permute(2, 0, 1).float()[None] / 255.0
    kernel, stride, out_res = 384, int(384 * (1 - 0.333)), (640, 640)
    unfold = torch.nn.Unfold(kernel_size=kernel, stride=stride)
    fold = torch.nn.Fold(out_res, kernel_size=kernel, stride=stride)
    square = F.interpolate(image, size=out_res, mode="bilinear", align_corners=False)
    windows = unfold(square)[0].T.reshape(-1, 3, kernel, kernel)
    views = torch.cat([windows, F.interpolate(image, size=(kernel, kernel), mode="bilinear", align_corners=False)])
    logits = model(F.interpolate(views, size=(size, size), mode="bilinear", align_corners=False), text)
    probs = F.interpolate(logits, size=kernel, mode="bilinear", align_corners=False).sigmoid()
    glob = F.interpolate(probs[-1:], size=out_res, mode="bilinear", align_corners=False)
    tiles = fold(probs[:-1].flatten(1).T[None]) / fold(unfold(torch.ones(1, 1, *out_res)))
    out = (tiles + glob) / 2.0
    return F.interpolate(out, size=(h0, w0), mode="bilinear", align_corners=False)[0]


def test_the_ade150_preset_is_catseg_test_with_catseg_names() -> None:
    seg = lmseg.create_segmenter("lmseg_tiny", benchmark="ade150")
    vocab = get_vocabulary("ade150")
    catseg = _catseg_names("ade150")
    assert [c.names for c in vocab.classes] != [tuple(n.split(", ")) for n in catseg]  # the names do change
    queried = vocabulary_from_names(catseg, name="ade150")
    prompts = build_prompts(queried, None, pooling=seg.model.config.prompt_pooling)
    text = encode_prompts(prompts, seg.model.clip.encode_text)
    rgb = np.asarray(Image.open(ADE_IMAGE).convert("RGB"))
    expected = _catseg_reference(seg, rgb, text)
    got = seg.logits(rgb, vocab)
    assert got.shape == expected.shape == (len(vocab), *rgb.shape[:2])
    # the whole model on 5 views in other batches (TINY_LMSEG's chain, 66; the text, encoded in other
    # batches, is a shorter branch: 16) + the resampling and stitching written with other operations
    # (unfold/fold against the stitcher, 4 bilinear resizes: sums of at most 4 terms): 2,304 terms, depth 70. Measured (2026-12-07, shared 2-core CPU): 1.8e-7 (atol 2.4e-3)
    np.testing.assert_allclose(got, expected.numpy(), **fp32_tolerance(terms=2304, depth=70))


def test_the_preset_applies_the_names_only_to_the_benchmark_vocabulary() -> None:
    seg = lmseg.create_segmenter("lmseg_tiny", benchmark="ade150")
    plain = lmseg.create_segmenter("lmseg_tiny", inference={"class_list": ""})
    user = ["wall", "floor", "person, human"]
    assert torch.equal(seg.text_embeddings(user).embeddings, plain.text_embeddings(user).embeddings)
    record = seg.protocol(get_vocabulary("ade150"))
    assert record["prompts"]["class_list"]["id"] == "catseg/ade150"
    assert record["prompts"]["class_list"]["url"].startswith("https://github.com/cvlab-kaist/CAT-Seg/blob/6d3a188")
    assert record["resize"]["input"].startswith("PIL bilinear") and "640 x 640" in record["resize"]["windows_from"]
    assert seg.protocol(user)["prompts"]["class_list"] is None


@pytest.mark.parametrize(("h", "w"), [(512, 683), (375, 500), (1024, 2048), (427, 640), (640, 640), (333, 334), (1000, 7000)])
def test_the_short_edge_size_is_detectron2s(h: int, w: int) -> None:
    seg = lmseg.create_segmenter("lmseg_tiny", benchmark="ade150")
    assert seg.resized_size(h, w) == _detectron2_short_edge(h, w)  # the 640 x 640 square takes any size


def test_bad_presets_fail_before_any_model_is_built() -> None:
    with pytest.raises(LmsegError, match="no catseg class list for benchmark 'voc21'; known: .*ade150"):
        lmseg.create_segmenter("lmseg_vitb16", benchmark="voc21", checkpoint="/nonexistent.pt")
    with pytest.raises(LmsegError, match="unknown class list 'catseg/nope'"):
        lmseg.create_segmenter("lmseg_vitb16", inference={"class_list": "catseg/nope"}, checkpoint="/nonexistent.pt")
    with pytest.raises(LmsegError, match=r"square \(300\) must be at least the window \(384\)"):
        lmseg.create_segmenter("lmseg_tiny", benchmark="ade150", inference={"square": 300})
    with pytest.raises(LmsegError, match=r"square \(10\) must be at least the window \(64\)"):
        lmseg.create_segmenter("lmseg_tiny", inference={"square": 10})  # the window is the model's input size
    with pytest.raises(LmsegError, match=r"square \(100\) must be at least the window \(384\)"):
        lmseg.create_segmenter("lmseg_vitb16", inference={"square": 100}, checkpoint="/nonexistent.pt")
