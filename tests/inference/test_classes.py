"""The large-vocabulary helpers: chunks, the chunked softmax, the rejection rule, the label reduction."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch", reason="torch is in the vision environment (run `make test`)")

import torch.nn.functional as F  # noqa: E402

from lmseg.errors import LmsegError  # noqa: E402
from lmseg.inference.classes import (  # noqa: E402
    ClassBudget,
    LabelReduction,
    aligned_chunks,
    candidate_scores,
    check_max_classes,
    chunked_softmax,
    class_chunks,
    select_candidates,
)
from tests.tolerances import U32, reduction_bound  # noqa: E402


def _g(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _softmax_tolerance(rows: int, largest: float, logit_error: float = 0.0) -> dict[str, float]:
    """Two float32 softmaxes over ``rows`` logits of magnitude <= ``largest`` (one direct, one through
    the log-sum-exp): per side the logits' own absolute error ``logit_error``, the normaliser's sum
    (``reduction_bound(rows)``) and 3 roundings of size ``largest`` (the log-sum-exp's final addition,
    ``x - lse`` of up to twice ``largest``), which ``exp`` turns into relative errors of the
    probabilities; probabilities are <= 1, so the same number bounds their absolute error."""
    bound = 2 * (logit_error + reduction_bound(rows) + 3 * largest * U32)
    return {"rtol": bound, "atol": bound}


def test_chunks_cover_every_class_within_the_budget() -> None:
    assert class_chunks(10, 3, 7) == [slice(0, 2), slice(2, 4), slice(4, 6), slice(6, 8), slice(8, 10)]
    assert class_chunks(5, 100, 10) == [slice(i, i + 1) for i in range(5)]  # at least one class per chunk
    assert class_chunks(5, 1, 1 << 20) == [slice(0, 5)]
    owners = torch.tensor([0, 0, 1, 2, 2, 2, 3, 4, 4])
    assert aligned_chunks(owners, 1, 4) == [slice(0, 3), slice(3, 7), slice(7, 9)]
    assert aligned_chunks(owners, 1, 2) == [slice(0, 2), slice(2, 3), slice(3, 6), slice(6, 7), slice(7, 9)]
    assert aligned_chunks(owners, 1, 100) == [slice(0, 9)]


@pytest.mark.parametrize("rows_per_chunk", [1, 3, 7, 100])
def test_chunked_softmax_is_the_softmax_over_all_rows(rows_per_chunk: int) -> None:
    logits = torch.randn(11, 4, 5, generator=_g(1)) * 30
    chunks = class_chunks(11, 1, rows_per_chunk)
    calls = []

    def part(chunk: slice) -> torch.Tensor:
        calls.append(chunk)
        return logits[chunk]

    got = torch.cat([p for _, p in chunked_softmax(part, chunks)])
    # 11 rows of logits up to |100|. Measured (2026-12-07, shared 2-core CPU): 2.4e-6 (atol 3.8e-5, margin 16)
    torch.testing.assert_close(got, logits.softmax(dim=0), **_softmax_tolerance(11, float(logits.abs().max())))
    assert len(calls) == (1 if len(chunks) == 1 else 2 * len(chunks))


def test_candidate_scores_follow_the_rule_in_any_chunks() -> None:
    tokens, rows = torch.randn(30, 8, generator=_g(2)), torch.randn(12, 8, generator=_g(3))
    owners = torch.tensor([0, 0, 1, 2, 3, 3, 3, 4, 5, 6, 7, 7])
    probs = (50.0 * F.normalize(tokens, dim=-1) @ F.normalize(rows, dim=-1).T).softmax(dim=1)  # (T, R)
    per_row = probs.amax(dim=0)
    expected = torch.stack([per_row[owners == c].max() for c in range(8)])
    # the cosines (the 8-term norms and products: depth 2) scaled by 50 (|logits| <= 50), written in another order,
    # then the softmax over 12 rows. Measured (2026-12-07, shared 2-core CPU): 2.9e-6 (atol 2.2e-4, margin 77)
    tol = _softmax_tolerance(12, 50.0, logit_error=50.0 * 2 * reduction_bound(8))
    for budget in (1, 30 * 5, 1 << 20):
        torch.testing.assert_close(candidate_scores(tokens, rows, 50.0, budget=budget), per_row, **tol)
        got = candidate_scores(tokens, rows, 50.0, budget=budget, row_to_class=owners, num_classes=8)
        torch.testing.assert_close(got, expected, **tol)


def test_selection_keeps_the_top_k_lower_index_first_and_forced_classes() -> None:
    scores = torch.tensor([0.1, 0.9, 0.5, 0.9, 0.2, 0.5])
    assert select_candidates(scores, 3).tolist() == [1, 2, 3]  # 0.5 tie: class 2 before class 5
    assert select_candidates(scores, 2, always=(0,)).tolist() == [0, 1]
    assert select_candidates(scores, 6).tolist() == list(range(6))
    assert select_candidates(scores, 60).tolist() == list(range(6))


def test_label_reduction_is_the_argmax_over_the_classes_added() -> None:
    scores = torch.rand(9, 5, 6, generator=_g(4))
    scores[4, 0, 0] = scores[7, 0, 0] = 2.0  # a tie: the lower class wins, as argmax
    whole = LabelReduction(9, (5, 6), device="cpu", keep_scores=True)
    for chunk in class_chunks(9, 1, 2):
        whole.add(torch.arange(chunk.start, chunk.stop), scores[chunk])
    assert torch.equal(whole.labels, scores.argmax(dim=0)) and whole.labels[0, 0] == 4
    # maxima and copies of the same values: exact
    torch.testing.assert_close(whole.best, scores.max(dim=0).values, rtol=0, atol=0)
    torch.testing.assert_close(whole.scores, scores, rtol=0, atol=0)
    kept = torch.tensor([1, 3, 8])
    part = LabelReduction(9, (5, 6), device="cpu", keep_scores=True)
    part.add(kept, scores[kept])
    assert set(part.labels.unique().tolist()) <= {1, 3, 8}
    assert torch.equal(part.labels, kept[scores[kept].argmax(dim=0)])
    assert not part.scores[[0, 2, 4, 5, 6, 7]].any()


@pytest.mark.parametrize("bad", [-1, 1.5, "64", True, None])
def test_bad_max_classes_are_refused(bad) -> None:
    with pytest.raises(LmsegError, match="inference.max_classes must be"):
        check_max_classes(bad)
    with pytest.raises(LmsegError, match="inference.max_classes must be"):
        ClassBudget(max_classes=bad)
    assert ClassBudget(max_classes=3).rejects(4) and not ClassBudget(max_classes=4).rejects(4)
    assert not ClassBudget().rejects(10**6)
