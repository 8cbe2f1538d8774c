"""Class early rejection (``inference.max_classes``), the same setting in LMSeg, MROVSeg and
Trident: K >= N changes nothing; K < N equals the same model on the kept classes; rejected
classes score 0 and never win a pixel; the kept set is in the result and the rule in the
protocol record; bad K values fail before any model loads."""

from __future__ import annotations

import numpy as np
import pytest

import lmseg
from lmseg.errors import LmsegError
from lmseg.inference.protocol import protocol_record
from tests.tolerances import fp32_tolerance

pytest.importorskip("open_clip", reason="needs the vision environment (open_clip)")

METHODS = ("lmseg_tiny", "mrovseg_tiny", "trident_tiny")
IMAGE = np.random.default_rng(0).integers(0, 256, (72, 96, 3), dtype=np.uint8)
VOCAB = ["cat", "dog", "sofa, couch", "wall", "sky", "tree", "road"]

#: The kept classes against the same classes as the whole vocabulary: the same image path; the class
#: embeddings come from other text-tower batches (TINY_CLIP_TEXT's chain: 16 reductions, 128 terms), then
#: every step that reads them. LMSeg: the cost volume (2), cost embedding (1), 2 aggregation layers x 3
#: blocks x 6 products (36), the decoder's 4 convolutions and head (5): depth 60, its longest reduction the
#: decoder's 3 x 3 convolution over 24 channels (216 terms). MROVSeg: the classifier's normalisation and
#: cosine (2), the softmax (1), the sum over the queries (1): depth 20, 128 terms, logits of 1 / 0.07 times
#: the cosines (scale). Trident: normalisation and cosine (2), the softmax over the queries (1): depth 19,
#: 128 terms, logit scale 40. Measured (2026-12-07, shared 2-core CPU): LMSeg 1.8e-7 (atol 6.3e-4),
#: MROVSeg 1.5e-7 (atol 2.3e-3), Trident 0 (atol 6.2e-3).
KEPT = {"lmseg_tiny": fp32_tolerance(terms=216, depth=60),
        "mrovseg_tiny": fp32_tolerance(terms=128, depth=20, scale=1 / 0.07),
        "trident_tiny": fp32_tolerance(terms=128, depth=19, scale=40.0)}
#: One class per chunk against one chunk. LMSeg: class statistics summed chunk by chunk, from layer 0's
#: class attention on (tests/models/lmseg/test_modules.py: 216 terms, depth 29). MROVSeg: only the sum over
#: the 8 queries runs on other shapes (depth 1). Trident: the cosines over the 32-wide joint space on other
#: shapes (1) and the softmax's sum over the queries chunk by chunk (1): depth 2, logit scale 40.
#: Measured (2026-12-07, shared 2-core CPU): LMSeg 3.0e-7 (atol 3.0e-4), MROVSeg 4.5e-8 (atol 2.0e-6),
#: Trident 6.0e-7 (atol 3.2e-4).
CHUNKED = {"lmseg_tiny": fp32_tolerance(terms=216, depth=29),
           "mrovseg_tiny": fp32_tolerance(terms=8, depth=1),
           "trident_tiny": fp32_tolerance(terms=32, depth=2, scale=40.0)}


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("LMSEG_CACHE_DIR", str(tmp_path))


@pytest.mark.parametrize("name", METHODS)
def test_as_many_candidates_as_classes_change_nothing(name: str) -> None:
    off = lmseg.create_segmenter(name).predict(IMAGE, VOCAB, return_scores=True)
    for k in (len(VOCAB), len(VOCAB) + 5):
        got = lmseg.create_segmenter(name, inference={"max_classes": k}).predict(IMAGE, VOCAB, return_scores=True)
        np.testing.assert_array_equal(got.label_map, off.label_map)
        np.testing.assert_array_equal(got.scores, off.scores)
        assert got.kept is None and off.kept is None


@pytest.mark.parametrize("name", METHODS)
def test_fewer_candidates_equal_the_model_on_the_kept_classes(name: str) -> None:
    seg = lmseg.create_segmenter(name, inference={"max_classes": 3})
    got = seg.predict(IMAGE, VOCAB, return_scores=True)
    kept = list(got.kept)
    assert len(kept) == 3 and kept == sorted(kept)
    rejected = [c for c in range(len(VOCAB)) if c not in kept]
    assert not got.scores[rejected].any()  # rejected classes score 0 ...
    assert set(np.unique(got.label_map)) <= set(kept)  # ... and never win a pixel
    sub = lmseg.create_segmenter(name).predict(IMAGE, [VOCAB[c] for c in kept], return_scores=True)
    np.testing.assert_allclose(got.scores[kept], sub.scores, **KEPT[name])
    top2 = np.sort(sub.scores, axis=0)[-2:]
    clear = top2[1] - top2[0] > 2 * (KEPT[name]["atol"] + KEPT[name]["rtol"])  # winners no rounding can change
    assert clear.mean() > 0.25  # measured: 0.35 for LMSeg (its tiny model's sigmoid scores lie close)
    np.testing.assert_array_equal(got.label_map[clear], np.asarray(kept)[sub.label_map][clear])
    np.testing.assert_array_equal(seg.logits(IMAGE, VOCAB), got.scores)
    record = protocol_record(seg, VOCAB)["method"]["rejection"]
    assert record["max_classes"] == 3 and "softmax" in record["rule"]


@pytest.mark.parametrize("name", METHODS)
def test_chunks_of_classes_do_not_change_results(name: str) -> None:
    one = lmseg.create_segmenter(name).predict(IMAGE, VOCAB, return_scores=True)
    tiny = lmseg.create_segmenter(name, inference={"chunk_elements": 1}).predict(IMAGE, VOCAB, return_scores=True)
    np.testing.assert_allclose(tiny.scores, one.scores, **CHUNKED[name])


@pytest.mark.parametrize("name", METHODS)
@pytest.mark.parametrize(("value", "message"), [(-1, "0 \\(no rejection\\) or more"), (1.5, "max_classes must be"),
                                                ("many", "max_classes must be"), (True, "max_classes must be")])
def test_bad_k_fails_before_any_model_loads(name: str, value: object, message: str, monkeypatch) -> None:
    import lmseg.models.building as building
    import lmseg.models.trident.variants as trident

    for module in (building, trident):
        monkeypatch.setattr(module, "seeded", lambda *a, **k: pytest.fail("a model was built"))
    with pytest.raises(LmsegError, match=message):
        lmseg.create_segmenter(name, inference={"max_classes": value})


def test_k_for_a_method_without_rejection_is_refused() -> None:
    with pytest.raises(LmsegError, match="has no class early rejection"):
        lmseg.create_segmenter("mgca_tiny", inference={"max_classes": 8})
