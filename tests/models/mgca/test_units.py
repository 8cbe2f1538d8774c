"""Prediction units: the adaptive semantic unit on a synthetic image where per-pixel prediction
over-segments and per-group prediction under-segments; and the mgca_tiny predictor through the
shared interface with each unit."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

import lmseg
from lmseg.errors import LmsegError
from lmseg.models.mgca.predictor import MGCAPredictor
from lmseg.models.mgca.units import adaptive_unit, region_agreement, region_means, region_unit, slic_regions
from tests.tolerances import fp32_tolerance

COLOURS = np.array([[200, 40, 40], [40, 160, 40], [40, 40, 220]], dtype=np.uint8)


def _scene() -> tuple[np.ndarray, np.ndarray, torch.Tensor, torch.Tensor]:
    """A 32x32 image (left: class 0, right: class 1, a 16x12 block of class 2 inside the right),
    noisy per-pixel scores (15% of pixels prefer a wrong class), and groups that merge the block
    with the right half (the model's groups under-segment)."""
    truth = np.zeros((32, 32), np.int64)
    truth[:, 16:] = 1
    truth[4:20, 18:30] = 2
    rgb = COLOURS[truth]
    rng = np.random.default_rng(0)
    noisy = truth.copy()
    flip = rng.random(truth.shape) < 0.15
    noisy[flip] = (truth[flip] + rng.integers(1, 3, flip.sum())) % 3
    scores = np.full((3, 32, 32), 0.2)
    np.put_along_axis(scores, noisy[None], 0.6, axis=0)
    groups = np.zeros((32, 32), np.int64)
    groups[:, 16:] = 1
    return rgb, truth, torch.from_numpy(scores), torch.from_numpy(groups)


def test_region_statistics_are_direct_means() -> None:
    scores = torch.arange(2 * 2 * 3, dtype=torch.float64).view(2, 2, 3)
    regions = torch.tensor([[0, 0, 1], [1, 1, 1]])
    means = region_means(scores, regions)
    assert torch.allclose(means[:, 0], scores[:, 0, :2].mean(dim=1))
    assert torch.allclose(means[:, 1], torch.stack([scores[c][regions == 1].mean() for c in range(2)]))
    labels = torch.tensor([[1, 0, 1], [1, 1, 0]])
    assert region_agreement(labels, regions, torch.tensor([0, 1])).tolist() == [0.5, 0.75]


def test_adaptive_unit_beats_pixels_and_groups() -> None:
    rgb, truth, scores, groups = _scene()
    superpixels = torch.from_numpy(slic_regions(rgb, segments=64, compactness=10.0))
    assert all(len(np.unique(truth[superpixels.numpy() == r])) == 1 for r in np.unique(superpixels))
    block = truth == 2

    def iou(pred: np.ndarray, cls: int) -> float:
        return ((pred == cls) & (truth == cls)).sum() / ((pred == cls) | (truth == cls)).sum()

    pixel = scores.argmax(0).numpy()
    assert (pixel == truth).mean() < 0.9  # over-segmented: scattered wrong pixels everywhere

    by_group = region_unit(scores, groups).argmax(0).numpy()
    assert not (by_group[block] == 2).any()  # under-segmented: the block is swallowed by its group

    adaptive = adaptive_unit(scores, [groups, superpixels], min_agreement=0.7).argmax(0).numpy()
    # the few pixels left wrong lie in small superpixels too noisy to be trusted (they keep
    # their own decision); everything else is right
    assert (adaptive == truth).mean() > 0.985
    def miou(pred: np.ndarray) -> float:
        return float(np.mean([iou(pred, cls) for cls in range(3)]))

    assert miou(adaptive) > 0.97 > max(miou(pixel), miou(by_group))
    # the left group is coherent enough to be decided as a whole; the right one is not
    agree = region_agreement(scores.argmax(0), groups, region_means(scores, groups).argmax(0))
    assert agree[0] >= 0.7 > agree[1]


def test_adaptive_unit_without_trusted_regions_is_per_pixel() -> None:
    _, _, scores, groups = _scene()
    out = adaptive_unit(scores, [groups], min_agreement=1.0)
    assert torch.equal(out, scores)


@pytest.fixture(scope="module")
def tiny() -> MGCAPredictor:
    return lmseg.create_segmenter("mgca_tiny")


@pytest.mark.parametrize("unit", ["pixel", "region", "adaptive"])
def test_tiny_predictor_interface(tiny: MGCAPredictor, unit: str) -> None:
    seg = tiny
    seg.inference = dataclasses.replace(seg.inference, unit=unit)
    image = np.random.default_rng(1).integers(0, 255, (50, 70, 3), dtype=np.uint8)
    result = seg.predict(image, ["cat", "dog", "sofa, couch"], return_scores=True)
    assert result.label_map.shape == (50, 70) and result.label_map.dtype == np.int32
    assert result.class_names == ("cat", "dog", "sofa")
    scores = seg.logits(image, ["cat", "dog", "sofa, couch"])
    assert scores.shape == (3, 50, 70) and scores.dtype == np.float32
    # a softmax over 3 classes (1), the bilinear resize (4 terms: 1), the sum over classes (1); a region's
    # mean over up to the whole 50 x 70 image (1) for the region and adaptive units. Measured (2026-12-07,
    # shared 2-core CPU): 1.2e-7 for every unit (atol 4.3e-6 pixel, 1.7e-4 region / adaptive)
    terms, depth = (4, 3) if unit == "pixel" else (50 * 70, 4)
    np.testing.assert_allclose(scores.sum(0), 1.0, **fp32_tolerance(terms=terms, depth=depth))
    assert scores.min() >= 0
    assert np.array_equal(result.label_map, scores.argmax(0))
    if unit == "region":  # every SLIC superpixel carries one score vector
        regions = seg.superpixels(image).numpy()
        for r in np.unique(regions)[:5]:
            assert np.ptp(scores[:, regions == r], axis=1).max() == 0  # one mean gathered per region: exact
    settings = seg.settings()
    assert settings["inference"]["unit"] == unit and settings["model"]["name"] == "mgca_tiny"


def test_slic_runs_at_the_working_resolution(tiny: MGCAPredictor, monkeypatch) -> None:
    seen = []

    def recording(rgb, segments, compactness):
        seen.append(rgb.shape)
        return slic_regions(rgb, segments, compactness)

    monkeypatch.setattr("lmseg.models.mgca.predictor.slic_regions", recording)
    image = np.zeros((900, 1200, 3), np.uint8)
    image[:, 600:] = (200, 30, 30)
    regions = tiny.superpixels(image)
    assert seen == [(*tiny.resized_size(900, 1200), 3)] == [(96, 128, 3)]
    assert regions.shape == (900, 1200) and regions.dtype == torch.int64
    assert len(torch.unique(regions[:, :590])) + len(torch.unique(regions[:, 610:])) >= 2


#: Peak memory of segmenting one more pixel, in bytes, for 2 classes (float32 scores). The tensors
#: alive at the adaptive unit's peak: the uint8 image 3, scores 4N and their copy 4N, the pixel
#: labels 8, one region map 8 plus its float resize 4, the agreement's temporaries 8 + 1 + 4, masks
#: 2 + 1, gathered means 8 + 4N: 71 bytes; 90 leaves 25% for the allocator. Measured: 60 (12 MP,
#: 2026-12-07); before SLIC ran at the working resolution: 136, and SLIC alone 83 s at 12 MP.
BYTES_PER_PIXEL = 90

_MEASURE = """
import json, resource, sys
import numpy as np
from lmseg.registry import create_segmenter
seg = create_segmenter("mgca_tiny")
small = np.zeros((64, 96, 3), np.uint8)
small[:, 48:] = 200
seg.predict(small, ["road", "sky"])  # every lazy import and cache filled before the baseline
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
h, w = int(sys.argv[1]), int(sys.argv[2])
image = np.zeros((h, w, 3), np.uint8)
image[:, w // 2:] = (200, 30, 30)
image[h // 3:, : w // 3] = (20, 200, 40)
assert seg.predict(image, ["road", "sky"]).label_map.shape == (h, w)
print(json.dumps({"growth_bytes": (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) * 1024}))
"""


def test_a_large_image_stays_within_a_linear_memory_bound(tmp_path) -> None:
    """Peak RSS of a fresh process (resource.getrusage: every allocator counts, torch's and
    OpenCV's included) segmenting a 6-megapixel image with the adaptive unit (SLIC and groups)."""
    import json
    import os
    import subprocess
    import sys

    h, w = 2000, 3000
    env = {**os.environ, "LMSEG_CACHE_DIR": str(tmp_path / "cache"), "OMP_NUM_THREADS": "2"}
    run = subprocess.run([sys.executable, "-c", _MEASURE, str(h), str(w)], capture_output=True, text=True, env=env,
                         timeout=600, check=False)
    assert run.returncode == 0, run.stderr[-2000:]
    growth = json.loads(run.stdout.strip().splitlines()[-1])["growth_bytes"]
    assert growth <= BYTES_PER_PIXEL * h * w, f"{growth / (h * w):.0f} bytes per pixel"


def test_bad_inference_settings_are_rejected() -> None:
    with pytest.raises(LmsegError, match="unit must be"):
        lmseg.create_segmenter("mgca_tiny", inference={"unit": "superpixel"})
    with pytest.raises(LmsegError, match="needs a trained MGCA checkpoint"):
        lmseg.create_segmenter("mgca_vitb16")
