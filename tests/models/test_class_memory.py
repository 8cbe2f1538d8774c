"""Memory bounded in the number of classes: 8x the classes must not cost 8x the memory.

Each measurement runs in a fresh process (peak RSS, ``ru_maxrss``, sees torch's CPU
allocations, which ``tracemalloc`` does not). The image is 512 x 512, so one float32 score map
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
name, classes = sys.argv[1], int(sys.argv[2])
segmenter = lmseg.create_segmenter(name, inference={"chunk_elements": 1 << 22})
image = np.random.default_rng(0).integers(0, 256, (512, 512, 3), dtype=np.uint8)
segmenter.predict(image, [f"thing {i}" for i in range(8)])  # everything that does not depend on N
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
result = segmenter.predict(image, [f"class {i}" for i in range(classes)])
assert result.label_map.shape == (512, 512)
print(json.dumps({"before": before, "peak": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
"""
UNCHUNKED_FLOOR_MIB = (512 - 64) * 512 * 512 * 4 / 2**20  # one float32 map per class at the image's size
ALLOWED_MIB = 64


def _peak_mib(name: str, classes: int, cache) -> float:
    done = subprocess.run([sys.executable, "-c", SCRIPT, name, str(classes)], capture_output=True, text=True,
                          env={**__import__("os").environ, "LMSEG_CACHE_DIR": str(cache)}, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])["peak"] / 1024  # KiB on Linux


@pytest.mark.parametrize("name", ["lmseg_tiny", "mrovseg_tiny", "trident_tiny"])
def test_eight_times_the_classes_stay_within_the_chunk_budget(name: str, tmp_path) -> None:
    small, large = _peak_mib(name, 64, tmp_path), _peak_mib(name, 512, tmp_path)
    assert UNCHUNKED_FLOOR_MIB == 448
    assert large - small < ALLOWED_MIB, f"{name}: {small:.0f} MiB at 64 classes, {large:.0f} MiB at 512"
