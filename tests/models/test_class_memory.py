"""Memory bounded in the number of classes: 8x the classes must not cost 8x the memory.

Each method is measured in a fresh process (peak RSS, ``ru_maxrss``, sees torch's CPU
allocations, which ``tracemalloc`` does not): after a warm-up, its peak at 64 classes, then at
512 other classes; the high-water mark can only rise, so the rise is what the 448 more classes
cost beyond the 64 (one process per method, not one per measurement: the start-up, about 25 s
of CPU, is paid once). The image is 512 x 512, so one float32 score map
per class is 1 MiB: a method that held every class's map at the image's size would grow by at
least (512 - 64) MiB = 448 MiB from 64 to 512 classes. With ``chunk_elements = 2^22`` (16 MiB
per class-dependent tensor) the growth is bounded by the few per-class numbers that remain
(text embeddings, class logits: well under 1 MiB here) plus allocator noise; the test allows
64 MiB, a seventh of the unchunked floor.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytest.importorskip("open_clip", reason="needs the vision environment (open_clip)")

SCRIPT = """
import json, resource, sys
import numpy as np, torch
import lmseg
torch.set_num_threads(1)
name, counts = sys.argv[1], [int(n) for n in sys.argv[2:]]
segmenter = lmseg.create_segmenter(name, inference={"chunk_elements": 1 << 22})
image = np.random.default_rng(0).integers(0, 256, (512, 512, 3), dtype=np.uint8)
segmenter.predict(image, [f"thing {i}" for i in range(8)])  # everything that does not depend on N
peaks = []
for classes in counts:  # names of their own: no text embedding is reused from the run before
    result = segmenter.predict(image, [f"class {i} of {classes}" for i in range(classes)])
    assert result.label_map.shape == (512, 512)
    peaks.append(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
print(json.dumps(peaks))
"""
UNCHUNKED_FLOOR_MIB = (512 - 64) * 512 * 512 * 4 / 2**20  # one float32 map per class at the image's size
ALLOWED_MIB = 64


def _peaks_mib(name: str, counts: tuple[int, ...], cache) -> list[float]:
    """The process's peak RSS in MiB after predicting with each number of classes, in order."""
    done = subprocess.run([sys.executable, "-c", SCRIPT, name, *map(str, counts)], capture_output=True, text=True,
                          env={**__import__("os").environ, "LMSEG_CACHE_DIR": str(cache)}, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    return [kib / 1024 for kib in json.loads(done.stdout.strip().splitlines()[-1])]  # KiB on Linux


@pytest.mark.parametrize("name", ["lmseg_tiny", "mrovseg_tiny", "trident_tiny"])
def test_eight_times_the_classes_stay_within_the_chunk_budget(name: str, tmp_path) -> None:
    small, large = _peaks_mib(name, (64, 512), tmp_path)
    assert UNCHUNKED_FLOOR_MIB == 448
    assert large - small < ALLOWED_MIB, f"{name}: {small:.0f} MiB at 64 classes, {large:.0f} MiB at 512"
