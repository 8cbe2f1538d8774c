"""One request's memory is bounded by pixels x classes (issue 18): measured in a fresh process.

The page keeps every class's score at every pixel (heat maps, the table), so a request of P
pixels and N classes holds 4 P N bytes of float32 scores; the predictors' own work goes in
chunks of classes (here ``chunk_elements = 2^22``: 16 MiB per class-dependent tensor). With
``max_class_pixels = L = 2^26``, a request of 60 classes on a 1024 x 1024 image (0.94 L) must
stay within 1.5 x 4 L bytes (the scores, plus half again for label maps, display images and
chunks); one of 70 classes (1.09 L) is refused from the file's header, before any decoding
or model work, so the process's peak does not move.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("open_clip", reason="needs the vision environment (open_clip)")

LIMIT = 1 << 26
SCRIPT = """
import json, resource, sys
import lmseg
from lmseg.errors import LmsegError
from lmseg.web.limits import WebLimits
from lmseg.web.service import SegmentService

def peak():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024

image, limit = sys.argv[1], int(sys.argv[2])
segmenter = lmseg.create_segmenter("lmseg_tiny", inference={"chunk_elements": 1 << 22})
service = SegmentService(segmenter, "lmseg_tiny", limits=WebLimits(max_class_pixels=limit))
service.segment(image, "a, b")  # everything that does not grow with the classes
base = peak()
service.segment(image, ", ".join(f"class {i}" for i in range(60)))
accepted = peak()
try:
    service.segment(image, ", ".join(f"class {i}" for i in range(70)))
    refused = ""
except LmsegError as exc:
    refused = str(exc)
service.close()
print(json.dumps({"base": base, "accepted": accepted, "after": peak(), "refused": refused}))
"""


def test_a_request_holds_at_most_its_pixels_x_classes(tmp_path) -> None:
    path = tmp_path / "noise.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (1024, 1024, 3), dtype=np.uint8)).save(path)
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(path), str(LIMIT)], capture_output=True, text=True,
                          env={**os.environ, "LMSEG_CACHE_DIR": str(tmp_path / "cache")}, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    got = json.loads(done.stdout.strip().splitlines()[-1])
    assert got["accepted"] - got["base"] < 1.5 * 4 * LIMIT, got
    assert "1024x1024 pixels x 70 classes = 73 million" in got["refused"]
    assert "use fewer classes, or an image of at most 0.959 million pixels" in got["refused"]
    assert got["after"] == got["accepted"]  # refused before decoding: no new memory
