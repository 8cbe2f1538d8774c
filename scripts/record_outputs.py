"""Record outputs that a refactor must not change: LMSeg tiny training losses (the 40 steps of
configs/lmseg_tiny_samples.yaml on the real COCO-Object samples) and lmseg_tiny (random and
trained) / trident_tiny logits, label maps and settings on an ADE sample.

Usage (from the repository root, before and after a change; then scripts/compare_outputs.py):

    OMP_NUM_THREADS=1 PYTHONPATH=$PWD .venv/bin/python scripts/record_outputs.py /tmp/before
    OMP_NUM_THREADS=1 PYTHONPATH=$PWD .venv/bin/python scripts/record_outputs.py /tmp/after
    .venv/bin/python scripts/compare_outputs.py /tmp/before /tmp/after
"""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

out = Path(sys.argv[1]); out.mkdir(parents=True, exist_ok=True)
os.environ["LMSEG_CACHE_DIR"] = str(out / "cache")
root = Path.cwd()
sys.path.insert(0, str(root))
from tests.models.lmseg.conftest import build_coco_object_root

data = build_coco_object_root(out / "data")
run = out / "run"
shutil.rmtree(run, ignore_errors=True)
cfg = root / "configs" / "lmseg_tiny_samples.yaml"
# full tiny config: 40 steps, checkpoint every 10
cmd = [sys.executable, "-m", "pipelines.train", "--config", str(cfg), "--set", f"data.root={data}",
       "--set", f"output_dir={run}"]
p = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(root)})
print(p.stdout[-500:], p.stderr[-1500:])
assert p.returncode == 0
metrics = [json.loads(l) for l in (run / "metrics.jsonl").read_text().splitlines()]
(out / "losses.json").write_text(json.dumps([{k: r[k] for k in ("step", "loss", "lr", "lr_clip", "w")} for r in metrics]))

from PIL import Image

import lmseg

img = np.asarray(Image.open(sorted((root / "tests/fixtures/samples/ade150_sceneparsing_val3/images").iterdir())[0]).convert("RGB"))
img = np.ascontiguousarray(img[:150, :200])
vocab = ["wall", "floor", "sky, heaven", "tree", "person"]
seg = lmseg.create_segmenter("lmseg_tiny")
np.save(out / "lmseg_tiny_logits.npy", seg.logits(img, vocab))
np.save(out / "lmseg_tiny_label.npy", seg.predict(img, vocab).label_map)
seg2 = lmseg.create_segmenter("lmseg_tiny", checkpoint=str(run / "checkpoints" / "last.pt"))
np.save(out / "lmseg_trained_logits.npy", seg2.logits(img, vocab))
tri = lmseg.create_segmenter("trident_tiny")
np.save(out / "trident_tiny_logits.npy", tri.logits(img, vocab))
np.save(out / "trident_tiny_label.npy", tri.predict(img, vocab).label_map)
from lmseg.inference.segmenter import segmenter_settings

(out / "settings.json").write_text(json.dumps({"lmseg": segmenter_settings(seg), "trident": segmenter_settings(tri)}, sort_keys=True))
print("recorded", out)
