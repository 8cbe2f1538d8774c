"""Compare two folders of scripts/record_outputs.py: losses and arrays must be bit-identical."""
import json
import sys

import numpy as np

a, b = sys.argv[1], sys.argv[2]
la, lb = json.load(open(f"{a}/losses.json")), json.load(open(f"{b}/losses.json"))
print("losses identical:", la == lb, len(la), len(lb))
if la != lb:
    for x, y in zip(la, lb):
        if x != y: print(" first diff", x, y); break
for n in ("lmseg_tiny_logits", "lmseg_tiny_label", "lmseg_trained_logits", "trident_tiny_logits", "trident_tiny_label"):
    x, y = np.load(f"{a}/{n}.npy"), np.load(f"{b}/{n}.npy")
    print(n, x.shape, "bit-identical:", x.dtype == y.dtype and x.shape == y.shape and x.tobytes() == y.tobytes())
sa, sb = json.load(open(f"{a}/settings.json")), json.load(open(f"{b}/settings.json"))
print("settings identical:", sa == sb)
