"""Image size limits: huge files are refused before decoding, extreme aspect ratios run up to
what SAM's token grid allows and are refused beyond it, and one bad image never stops a folder."""

from __future__ import annotations

import struct
import zlib
from dataclasses import replace

import numpy as np
import pytest
from PIL import Image

from lmseg.errors import LmsegError
from lmseg.inference.outputs import segment_files
from lmseg.models.trident import TridentPredictor

VOCAB = ["road", "sky"]


def header_only_png(path, width: int, height: int) -> None:
    """A PNG whose header says ``width`` x ``height`` RGB and which holds no pixel data: decoding it fails."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b""))


def with_config(segmenter: TridentPredictor, **fields) -> TridentPredictor:
    model = segmenter.model
    return TridentPredictor(type(model)(model.clip, model.dino, model.sam, replace(model.config, **fields)))


def test_huge_file_is_refused_from_its_header_before_decoding(tiny_segmenter, tmp_path) -> None:
    path = tmp_path / "huge.png"
    header_only_png(path, 10000, 10000)
    with pytest.raises(LmsegError, match=r"10000x10000 pixels \(100,000,000\); at most 40,000,000.*max_pixels"):
        tiny_segmenter.predict(path, VOCAB)
    raised = with_config(tiny_segmenter, max_pixels=200_000_000)  # the bound can be raised: now it is decoded
    with pytest.raises(LmsegError, match="cannot read image"), pytest.warns(Image.DecompressionBombWarning):
        raised.predict(path, VOCAB)


def test_huge_array_is_refused(tiny_segmenter) -> None:
    small = with_config(tiny_segmenter, max_pixels=10_000)
    with pytest.raises(LmsegError, match="200x100 pixels"):
        small.predict(np.zeros((100, 200, 3), np.uint8), VOCAB)


def test_extreme_aspect_ratios_run_up_to_the_sam_grid_and_are_refused_beyond(tiny_segmenter) -> None:
    grid = tiny_segmenter.model.sam.img_size // 16  # 16 tokens for the tiny 256-pixel SAM, 64 for SAM's 1024
    assert tiny_segmenter.model.max_aspect_ratio == grid
    small = with_config(tiny_segmenter, max_long_side=512)  # fewer CLIP windows: a faster test
    for shape in [(10, 10 * grid), (10 * grid, 10), (9, 9 * grid - 1)]:
        image = np.random.default_rng(0).integers(0, 256, (*shape, 3), dtype=np.uint8)
        out = small.predict(image, VOCAB, return_scores=True)
        assert out.label_map.shape == shape and np.isfinite(out.scores).all()
    with pytest.raises(LmsegError, match=f"4000x10 pixels, an aspect ratio of 400.0:1; at most {grid}:1"):
        tiny_segmenter.predict(np.zeros((10, 4000, 3), np.uint8), VOCAB)
    halves = with_config(tiny_segmenter, split_halves=True)
    with pytest.raises(LmsegError, match=f"at most {grid // 2}:1"):
        halves.predict(np.zeros((10 * grid, 10, 3), np.uint8), VOCAB)


def test_a_bad_image_never_stops_a_folder(tiny_segmenter, tmp_path) -> None:
    source = tmp_path / "in"
    source.mkdir()
    Image.fromarray(np.full((48, 64, 3), 120, np.uint8)).save(source / "a_ok.png")
    Image.fromarray(np.zeros((10, 4000, 3), np.uint8)).save(source / "b_strip.png")
    header_only_png(source / "c_huge.png", 10000, 10000)
    Image.fromarray(np.full((64, 48, 3), 30, np.uint8)).save(source / "d_ok.png")
    summary = segment_files(tiny_segmenter, source, VOCAB, tmp_path / "out", num_workers=0)
    assert [p.name for p in summary.done] == ["a_ok.png", "d_ok.png"]
    failed = {p.name: message for p, message in summary.failed}
    assert "4000x10 pixels" in failed["b_strip.png"] and "10000x10000 pixels" in failed["c_huge.png"]
    assert (tmp_path / "out" / "d_ok_label.png").is_file()
