"""The LMSeg predictor: sliding-window parity, image and vocabulary inputs, checkpoints, bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

import lmseg
from lmseg.errors import LmsegError
from lmseg.inference.tiler import window_starts
from lmseg.models.lmseg import InferenceConfig, LMSegPredictor, get_config, save_model
from tests.tolerances import TINY_CLIP_TEXT, TINY_LMSEG, fp32_tolerance

from .conftest import SAMPLES

VOCAB = ["cat", "dog", "sofa, couch"]


def _image(h: int, w: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


@pytest.fixture
def predictor(tiny_model):
    return LMSegPredictor(tiny_model, inference=InferenceConfig(short_side=None), cache=None)


def _direct(model, predictor, x: torch.Tensor, vocab) -> torch.Tensor:
    with torch.no_grad():
        logits = model(x, predictor.text_embeddings(vocab).embeddings)
    return F.interpolate(logits, size=x.shape[-2:], mode="bilinear", align_corners=False).sigmoid()


def test_window_starts() -> None:
    assert window_starts(384, 384, 256) == [0]
    assert window_starts(640, 384, 256) == [0, 256]
    assert window_starts(853, 384, 256) == [0, 256, 469]
    with pytest.raises(ValueError, match="smaller than the 384-pixel window"):
        window_starts(100, 384, 256)  # the predictor enlarges such images to the window first


def test_one_window_image_equals_one_forward_pass(tiny_model, predictor) -> None:
    img = _image(64, 64)
    got = predictor.logits(img, VOCAB)
    x = torch.from_numpy(img).permute(2, 0, 1)[None].float() / 255.0
    ref = _direct(tiny_model, predictor, x, VOCAB)[0].numpy()
    assert got.shape == (3, 64, 64) and got.dtype == np.float32
    # the window and the global view batched against one forward pass: the whole model
    # (TINY_LMSEG: 2,304 terms, depth 66). Measured (2026-12-07, shared 2-core CPU): 1.8e-7 (atol 2.3e-3)
    np.testing.assert_allclose(got, ref, **TINY_LMSEG)


def test_two_windows_and_global_view_are_averaged(tiny_model) -> None:
    pred = LMSegPredictor(tiny_model, inference=InferenceConfig(short_side=None), cache=None)
    img = _image(64, 96, seed=1)
    got = pred.logits(img, VOCAB)
    x = torch.from_numpy(img).permute(2, 0, 1)[None].float() / 255.0
    left = _direct(tiny_model, pred, x[..., :64], VOCAB)[0]  # stride 42: windows at 0 and 32
    right = _direct(tiny_model, pred, x[..., 32:], VOCAB)[0]
    canvas = torch.zeros(3, 64, 96)
    count = torch.zeros(1, 64, 96)
    canvas[..., :64] += left
    count[..., :64] += 1
    canvas[..., 32:] += right
    count[..., 32:] += 1
    glob = _direct(tiny_model, pred, F.interpolate(x, size=(64, 64), mode="bilinear", align_corners=False), VOCAB)
    glob = F.interpolate(glob, size=(64, 96), mode="bilinear", align_corners=False)[0]
    # the whole model batched or not (TINY_LMSEG's chain, 66) + the overlap and global-view averages
    # (2 two-term sums): 2,304 terms, depth 68. Measured (2026-12-07, shared 2-core CPU): 2.4e-7 (atol 2.3e-3)
    np.testing.assert_allclose(got, ((canvas / count + glob) / 2).numpy(), **fp32_tolerance(terms=2304, depth=68))


def test_predict_on_real_sample_paths_pil_and_arrays() -> None:
    seg = lmseg.create_segmenter("lmseg_tiny")
    path = SAMPLES / "voc21_labelme3" / "images" / "2011_000003.jpg"
    with Image.open(path) as im:
        w, h = im.size
        rgb = np.asarray(im.convert("RGB"))
        res_pil = seg.predict(im, VOCAB, return_scores=True)
    res_path = seg.predict(path, VOCAB, return_scores=True)
    res_arr = seg.predict(rgb, VOCAB)
    assert res_path.label_map.shape == (h, w) and res_path.label_map.dtype == np.int32
    assert res_path.scores.shape == (3, h, w) and res_path.scores.dtype == np.float32
    assert 0 <= res_path.scores.min() and res_path.scores.max() <= 1
    assert res_path.class_names == ("cat", "dog", "sofa")
    np.testing.assert_array_equal(res_path.label_map, res_arr.label_map)
    np.testing.assert_array_equal(res_path.scores, res_pil.scores)
    np.testing.assert_array_equal(res_path.label_map, res_path.scores.argmax(0))
    assert res_arr.scores is None
    # the resize/window protocol: short side 96 for the tiny preset
    assert seg.resized_size(h, w)[0] == 96 or seg.resized_size(h, w)[1] == 96


def test_converted_inputs_equal_their_rgb_form(predictor) -> None:
    gray = np.random.default_rng(3).integers(0, 256, (64, 64), dtype=np.uint8)
    np.testing.assert_array_equal(predictor.logits(gray, VOCAB), predictor.logits(np.stack([gray] * 3, -1), VOCAB))
    rgb = _image(64, 64, seed=4)
    rgba = np.concatenate([rgb, np.full((64, 64, 1), 7, np.uint8)], -1)
    np.testing.assert_array_equal(predictor.logits(rgba, VOCAB), predictor.logits(rgb, VOCAB))
    sixteen = rgb.astype(np.uint16) * 257
    np.testing.assert_array_equal(predictor.logits(sixteen, VOCAB), predictor.logits(rgb, VOCAB))


def test_bad_inputs_get_clear_messages(predictor) -> None:
    with pytest.raises(LmsegError, match="at least 8 pixels"):
        predictor.predict(np.zeros((1, 1, 3), np.uint8), VOCAB)
    with pytest.raises(LmsegError, match="empty"):
        predictor.predict(_image(64, 64), [])
    with pytest.raises(LmsegError, match="more than once"):
        predictor.predict(_image(64, 64), ["cat", "cat"])
    with pytest.raises(LmsegError, match="HWC"):
        predictor.predict(np.zeros((3, 64, 64, 2), np.uint8), VOCAB)
    small_cap = LMSegPredictor(predictor.model, inference=InferenceConfig(max_pixels=100_000), cache=None)
    with pytest.raises(LmsegError, match="at most 100,000"):
        small_cap.predict(np.zeros((400, 300, 3), np.uint8), VOCAB)
    with pytest.raises(LmsegError, match="unknown segmenter 'lmseg_nope'"):
        lmseg.create_segmenter("lmseg_nope")
    with pytest.raises(LmsegError, match="unknown LMSeg config"):
        get_config("lmseg_vitz99")


def test_huge_image_is_downscaled_and_answered_at_full_size(tiny_model) -> None:
    pred = LMSegPredictor(tiny_model, inference=InferenceConfig(short_side=64, max_long_side=256), cache=None)
    img = np.zeros((3000, 4000, 3), np.uint8)
    assert pred.resized_size(3000, 4000) == (64, 85)
    res = pred.predict(img, VOCAB)
    assert res.label_map.shape == (3000, 4000)


def test_checkpoints_round_trip_and_other_architectures(tiny_model, tmp_path) -> None:
    path = save_model(tiny_model, tmp_path / "tiny.pt")
    seg = lmseg.create_segmenter("lmseg_tiny", checkpoint=path, inference=InferenceConfig(short_side=None))
    ref = LMSegPredictor(tiny_model, inference=InferenceConfig(short_side=None), cache=None)
    img = _image(64, 64, seed=5)
    np.testing.assert_array_equal(seg.logits(img, VOCAB), ref.logits(img, VOCAB))
    # an LMSeg checkpoint of another preset
    with pytest.raises(LmsegError, match="checkpoint of 'lmseg_tiny'.*create_segmenter\\('lmseg_tiny'"):
        lmseg.create_segmenter("lmseg_vitb16", checkpoint=path, sam="sam_vit_b")
    # a SAM checkpoint, a CLIP checkpoint, garbage
    sam_like = tmp_path / "sam.pth"
    torch.save({"image_encoder.patch_embed.proj.weight": torch.zeros(1)}, sam_like)
    with pytest.raises(LmsegError, match="not a checkpoint of LMSeg: it looks like a SAM checkpoint"):
        lmseg.create_segmenter("lmseg_vitb16", checkpoint=sam_like, sam="sam_vit_b")
    clip_like = tmp_path / "clip.pt"
    torch.save({"state_dict": {"visual.conv1.weight": torch.zeros(1)}}, clip_like)
    with pytest.raises(LmsegError, match="a CLIP checkpoint"):
        lmseg.create_segmenter("lmseg_tiny", checkpoint=clip_like)
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(LmsegError, match="is corrupt or not a checkpoint of LMSeg") as caught:
        lmseg.create_segmenter("lmseg_tiny", checkpoint=garbage)
    assert "weights_only" not in str(caught.value)
    with pytest.raises(LmsegError, match="not found"):
        lmseg.create_segmenter("lmseg_tiny", checkpoint=tmp_path / "missing.pt")
    # a tiny checkpoint whose head does not fit (tampered shapes)
    state = torch.load(path, weights_only=True)
    state["head"]["cost_embed.weight"] = torch.zeros(3, 3)
    torch.save(state, tmp_path / "bad.pt")
    with pytest.raises(LmsegError, match="does not fit"):
        lmseg.create_segmenter("lmseg_tiny", checkpoint=tmp_path / "bad.pt")


def test_trained_presets_need_a_checkpoint_and_sam() -> None:
    with pytest.raises(LmsegError, match="needs a trained LMSeg checkpoint"):
        lmseg.create_segmenter("lmseg_vitb16")
    with pytest.raises(LmsegError, match="needs a trained LMSeg checkpoint"):
        lmseg.create_segmenter("lmseg_vitl14", sam="sam_vit_b")
    assert {"lmseg_vitb16", "lmseg_vitl14", "lmseg_tiny"} <= set(lmseg.available_segmenters())


def test_attribute_table_changes_the_text_side(tiny_model, tmp_path) -> None:
    from datetime import datetime, timezone

    from lmseg.attributes.store import AttributeRow, rows_to_table, write_table
    from lmseg.vocab import vocabulary_from_names

    vocab = vocabulary_from_names(["cat", "dog"], name="pets")
    row = AttributeRow("pets", 0, "cat", ("orange",), ("small",), ("furry",), "m", "0" * 64,
                       datetime(2026, 1, 1, tzinfo=timezone.utc), "{}")
    write_table(rows_to_table([row]), tmp_path / "pets.parquet")
    plain = LMSegPredictor(tiny_model, cache=None)
    enriched = LMSegPredictor(tiny_model, attribute_table=tmp_path / "pets.parquet")
    a, b = plain.text_embeddings(vocab).embeddings, enriched.text_embeddings(vocab).embeddings
    assert a.shape == b.shape == (2, 4, 32)
    # the same sentences encoded in other batches (TINY_CLIP_TEXT). Measured (2026-12-07, shared 2-core CPU):
    # 2.5e-7 (atol 1.3e-4, margin 520)
    torch.testing.assert_close(a[1], b[1], **TINY_CLIP_TEXT)  # dog: no row, templates in both
    assert not torch.allclose(a[0, 1:], b[0, 1:], **TINY_CLIP_TEXT)  # cat: attribute channels differ
    torch.testing.assert_close(a[0, 0], b[0, 0], **TINY_CLIP_TEXT)  # template channel is the same
    assert list((tmp_path / "cache" / "embeddings").rglob("*.safetensors"))  # cached under LMSEG_CACHE_DIR


def test_batching_and_class_chunks_do_not_change_results(tiny_model) -> None:
    """One class per chunk (the class attention then sees the others through chunked sums) and
    one view per backbone pass give the one-pass result."""
    img = _image(64, 96, seed=6)
    vocab = ["a", "b", "c", "d", "e"]
    default = LMSegPredictor(tiny_model, inference=InferenceConfig(short_side=None), cache=None)
    tight = LMSegPredictor(tiny_model, inference=InferenceConfig(short_side=None, batch_size=1, chunk_elements=1),
                           cache=None)
    # views one at a time and class statistics chunk by chunk: the whole model (TINY_LMSEG: 2,304 terms,
    # depth 66). Measured (2026-12-07, shared 2-core CPU): 2.4e-7 (atol 2.3e-3)
    np.testing.assert_allclose(tight.logits(img, vocab), default.logits(img, vocab), **TINY_LMSEG)
    assert (tight.predict(img, vocab).label_map == default.predict(img, vocab).label_map).all()
