"""The shared sliding-window tiler: the grid (last window flush), batching and overlap averaging."""

from __future__ import annotations

import pytest
import torch

from lmseg.inference.tiler import Stitcher, batch_ranges, crop_windows, stitch, window_grid, window_starts
from tests.tolerances import fp32_tolerance


def test_window_grid_is_mmseg_slide_grid() -> None:
    boxes = window_grid(448, 597, 336, 224)
    assert boxes == [(0, 0, 336, 336), (0, 224, 336, 560), (0, 261, 336, 597),
                     (112, 0, 448, 336), (112, 224, 448, 560), (112, 261, 448, 597)]
    assert len(window_grid(336, 336, 336, 224)) == 1
    assert len(window_grid(336, 448, 336, 112)) == 2 and len(window_grid(336, 560, 336, 112)) == 3  # VOC-20
    assert window_starts(853, 384, 256) == [0, 256, 469]  # LMSeg: 384 windows, overlap 1/3
    with pytest.raises(ValueError, match="smaller than"):
        window_grid(300, 400, 336, 224)


def test_every_pixel_is_covered_and_windows_stay_inside() -> None:
    for h, w, s, stride in ((97, 211, 64, 42), (64, 64, 64, 1), (130, 65, 64, 64)):
        boxes = window_grid(h, w, s, stride)
        cover = torch.zeros(h, w)
        for y1, x1, y2, x2 in boxes:
            assert 0 <= y1 and y2 <= h and 0 <= x1 and x2 <= w and (y2 - y1, x2 - x1) == (s, s)
            cover[y1:y2, x1:x2] += 1
        assert cover.min() >= 1


def test_stitch_single_window_is_identity_and_overlaps_average() -> None:
    g = torch.Generator().manual_seed(3)
    maps = torch.randn(1, 5, 4, 4, generator=g)
    torch.testing.assert_close(stitch(maps, [(0, 0, 4, 4)], (4, 4)), maps[0], rtol=0, atol=0)
    const = torch.stack([torch.full((2, 4, 4), 1.0), torch.full((2, 4, 4), 3.0), torch.full((2, 4, 4), 8.0)])
    out = stitch(const, [(0, 0, 4, 4), (0, 2, 4, 6), (0, 3, 4, 7)], (4, 7))[0]
    assert out[0].tolist() == [1, 1, 2, (1 + 3 + 8) / 3, 5.5, 5.5, 8]
    with pytest.raises(ValueError, match="2 window maps but 1 boxes"):
        stitch(const[:2], [(0, 0, 4, 4)], (4, 4))


def test_batched_stitching_equals_stitching_all_at_once() -> None:
    image = torch.randn(1, 3, 50, 70, generator=torch.Generator().manual_seed(1))
    boxes = window_grid(50, 70, 32, 20)
    windows = crop_windows(image, boxes)
    assert windows.shape == (len(boxes), 3, 32, 32)
    whole = stitch(windows, boxes, (50, 70))
    # the mean of equal copies: a sum of at most 4 (2 x 2 overlapping windows) and a division
    torch.testing.assert_close(whole, image[0], **fp32_tolerance(terms=4))
    stitcher = Stitcher(3, (50, 70))
    for batch in batch_ranges(len(boxes), 4):
        for window, box in zip(windows[batch], boxes[batch]):
            stitcher.add(window, box)
    assert torch.equal(stitcher.result(), whole)
    assert batch_ranges(5, 2) == [slice(0, 2), slice(2, 4), slice(4, 5)]
