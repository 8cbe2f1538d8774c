"""The bfloat16 autocast path (``amp="bf16"``, :mod:`lmseg.inference.precision`) on the CPU,
against float32, with a tolerance derived from the arithmetic.

For LMSeg and MROVSeg (tiny variants, random weights) the class probabilities of ``logits``
are computed three times: float32 (``amp=False``), float64 (the model in double; the steps that
cast to float32 stay float32) and under bfloat16 autocast. The bfloat16 error against float64
is bounded by :func:`tests.tolerances.bfloat16_bound`: the float32 error, measured in the same
run, times ``2**16`` (bfloat16's unit roundoff ``2**-8`` over float32's ``2**-24``), for the
maximum and for the mean. Measured (2026-12-07, the shared 2-core AMD EPYC development
machine, no AVX512): LMSeg bfloat16 error max 3.5e-3 / mean 4.7e-4 against bounds 1.6e-2 /
2.2e-3 (margins 4.5 and 4.7); MROVSeg max 1.2e-3 / mean 3.8e-4 against 5.9e-3 / 8.0e-4
(margins 4.8 and 2.1). The bfloat16 error must also exceed the float32 one: autocast did run.

Where float32 is kept under autocast (outside the autocast regions, or cast back explicitly):

* LMSeg: the linear class attention's statistics (``_phi`` and ``LinearStats`` in
  ``lmseg/models/lmseg/aggregation.py``), the logits cast to float32 before upsampling and the
  sigmoid (``LMSegPredictor._probabilities``), CLIP's dense tokens for class early rejection
  (``LMSegPredictor._encode``); the training loss (``segmentation_loss`` casts its logits; the
  text tower runs with autocast off, ``lmseg/models/lmseg/task.py``);
* MROVSeg: the logit scale (``decoder.py``), the mask logits cast to float32 before the
  scores, the CLIP zero-shot softmax (``chunked_softmax``); the loss (``criterion.py``'s
  ``cross_entropy`` on float32 logits);
* class early rejection's softmax (``candidate_scores``) and every chunked softmax and label
  reduction (``lmseg/inference/classes.py``) run outside autocast, in float32;
* Trident has no autocast: on CUDA its encoders run in float16 (the published precision) and
  its SAM affinity (``sam_affinity.py``), cosines and softmax in float32; its half-precision
  test is ``tests/models/trident/test_end_to_end.py::test_half_precision_encoders_stay_close``.

On the CPU this test is stricter than the CUDA path: PyTorch's CPU autocast has no float32
list for softmax, layer norm, sigmoid or interpolation (given bfloat16 inputs inside an
autocast region they return bfloat16 there, where CUDA's autocast computes them in float32),
so inside the encoders and decoders every such step's result is rounded to bfloat16 too.
MGCA's and SAM 3's predictors have no ``amp`` setting (``bench_gpu`` runs them under
``torch.autocast``); they are not covered here.
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("open_clip", reason="needs the vision environment (open_clip)")

import lmseg  # noqa: E402 - after the skip
from tests.tolerances import bfloat16_bound  # noqa: E402

IMAGE = np.random.default_rng(0).integers(0, 256, (72, 96, 3), dtype=np.uint8)
VOCAB = ["cat", "dog", "sofa, couch", "wall", "sky", "tree", "road"]


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("LMSEG_CACHE_DIR", str(tmp_path))


@pytest.mark.parametrize("name", ["lmseg_tiny", "mrovseg_tiny"])
def test_bfloat16_autocast_stays_within_its_rounding_bound(name: str) -> None:
    seg = lmseg.create_segmenter(name)
    seg.amp = False
    full = seg.logits(IMAGE, VOCAB)
    seg.model.double()
    exact = seg.logits(IMAGE, VOCAB).astype(np.float64)
    seg.model.float()  # float64 -> float32 is exact: the float32 model again
    seg.amp = "bf16"
    low = seg.logits(IMAGE, VOCAB)
    assert low.dtype == np.float32 and np.isfinite(low).all()
    assert seg.protocol(VOCAB)["precision"]["autocast"] == "torch.bfloat16"
    fp32_error, bf16_error = np.abs(full - exact), np.abs(low - exact)
    assert bf16_error.max() > fp32_error.max()  # the low precision ran
    assert bf16_error.max() <= bfloat16_bound(float(fp32_error.max()))
    assert bf16_error.mean() <= bfloat16_bound(float(fp32_error.mean()))


def test_linear_class_attention_stays_float32_under_autocast() -> None:
    """LMSeg's linear attention statistics and output are computed in float32 even inside a
    bfloat16 autocast region (autocast would otherwise run its einsums in bfloat16)."""
    import torch

    from lmseg.models.lmseg.aggregation import linear_attend, linear_stats

    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 3, 40, 8, generator=g).bfloat16() for _ in range(3))
    plain = linear_attend(q, linear_stats(k, v))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        stats = linear_stats(k, v)
        out = linear_attend(q, stats)
    assert stats.kv.dtype == stats.k_sum.dtype == torch.float32 and out.dtype == torch.bfloat16
    assert torch.equal(out, plain)  # the same float32 operations as outside autocast
