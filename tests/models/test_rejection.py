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

pytest.importorskip("open_clip", reason="needs the vision environment (open_clip)")

METHODS = ("lmseg_tiny", "mrovseg_tiny", "trident_tiny")
IMAGE = np.random.default_rng(0).integers(0, 256, (72, 96, 3), dtype=np.uint8)
VOCAB = ["cat", "dog", "sofa, couch", "wall", "sky", "tree", "road"]


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
    np.testing.assert_allclose(got.scores[kept], sub.scores, rtol=1e-5, atol=1e-6)
    top2 = np.sort(sub.scores, axis=0)[-2:]
    clear = top2[1] - top2[0] > 1e-4  # pixels whose winner no rounding can change
    assert clear.mean() > 0.9
    np.testing.assert_array_equal(got.label_map[clear], np.asarray(kept)[sub.label_map][clear])
    np.testing.assert_array_equal(seg.logits(IMAGE, VOCAB), got.scores)
    record = protocol_record(seg, VOCAB)["method"]["rejection"]
    assert record["max_classes"] == 3 and "softmax" in record["rule"]


@pytest.mark.parametrize("name", METHODS)
def test_chunks_of_classes_do_not_change_results(name: str) -> None:
    one = lmseg.create_segmenter(name).predict(IMAGE, VOCAB, return_scores=True)
    tiny = lmseg.create_segmenter(name, inference={"chunk_elements": 1}).predict(IMAGE, VOCAB, return_scores=True)
    np.testing.assert_allclose(tiny.scores, one.scores, rtol=1e-5, atol=1e-6)


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
