"""Hungarian matching vs brute force, each loss term vs a direct computation, point sampling,
targets from semantic labels, and semantic inference."""

from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn.functional as F

from lmseg.models.mrovseg.config import LossConfig
from lmseg.models.mrovseg.criterion import SetCriterion, Target, class_loss, mask_losses, semantic_targets
from lmseg.models.mrovseg.decoder import Prediction
from lmseg.models.mrovseg.matcher import hungarian_match, match_costs
from lmseg.models.mrovseg.model import semantic_inference
from lmseg.models.mrovseg.points import importance_points, point_sample
from tests.tolerances import fp32_tolerance


def _direct_cost(cls, masks, labels, tgt_masks, coords, w):
    """The matching cost written out pair by pair."""
    q, t = cls.shape[0], labels.shape[0]
    prob = cls.softmax(-1)
    out = point_sample(masks, coords)
    tgt = point_sample(tgt_masks, coords)
    cost = torch.zeros(q, t)
    for i in range(q):
        for j in range(t):
            bce = F.binary_cross_entropy_with_logits(out[i], tgt[j])
            p = out[i].sigmoid()
            dice = 1 - (2 * (p * tgt[j]).sum() + 1) / (p.sum() + tgt[j].sum() + 1)
            cost[i, j] = -w[0] * prob[i, labels[j]] + w[1] * bce + w[2] * dice
    return cost


@pytest.mark.parametrize("q, t, seed", [(4, 2, 0), (5, 3, 1), (3, 3, 2), (6, 1, 3)])
def test_hungarian_equals_brute_force(q, t, seed) -> None:
    g = torch.Generator().manual_seed(seed)
    cls = torch.randn(q, 5, generator=g) * 3
    masks = torch.randn(q, 6, 7, generator=g) * 3
    labels = torch.randperm(4, generator=g)[:t]
    tgt = (torch.rand(t, 12, 14, generator=g) > 0.5).float()
    w = (2.0, 5.0, 5.0)
    rows, cols = hungarian_match(cls, masks, labels, tgt, num_points=200, weights=w,
                                 generator=torch.Generator().manual_seed(seed + 10))
    coords = torch.rand(1, 200, 2, generator=torch.Generator().manual_seed(seed + 10))
    cost = _direct_cost(cls, masks, labels, tgt, coords, w)
    # means over the 200 sampled points; softmax or sigmoid, the mean, the weighted sum (depth 3)
    torch.testing.assert_close(match_costs(cls, masks, labels, tgt, coords, w), cost,
                               **fp32_tolerance(terms=200, depth=3))
    best = min(sum(cost[p[j], j] for j in range(t)) for p in itertools.permutations(range(q), t))
    assert len(rows) == t and sorted(cols.tolist()) == list(range(t))
    # the same t float32 costs summed in another order: t terms, of magnitudes summing to |cost|'s sum
    bound = fp32_tolerance(terms=t)["rtol"] * float(cost[rows, cols].abs().sum())
    assert float(cost[rows, cols].sum()) == pytest.approx(float(best), abs=bound)


def test_matcher_draws_its_points_for_an_image_without_targets() -> None:
    """As Mask2Former's matcher: the random stream does not depend on whether an image has targets."""
    g = torch.Generator().manual_seed(7)
    rows, cols = hungarian_match(torch.randn(3, 4), torch.randn(3, 5, 5), torch.zeros(0, dtype=torch.int64),
                                 torch.zeros(0, 10, 10), num_points=50, weights=(2.0, 5.0, 5.0), generator=g)
    assert rows.numel() == cols.numel() == 0
    reference = torch.Generator().manual_seed(7)
    torch.rand(1, 50, 2, generator=reference)
    assert torch.equal(torch.rand(4, generator=g), torch.rand(4, generator=reference))


def test_class_loss_direct() -> None:
    logits = torch.randn(2, 4, 6)
    matches = [(torch.tensor([2, 0]), torch.tensor([1, 0])), (torch.tensor([3]), torch.tensor([0]))]
    targets = [Target(torch.tensor([4, 1]), torch.zeros(2, 3, 3)), Target(torch.tensor([0]), torch.zeros(1, 3, 3))]
    wanted = [[4, 5, 1, 5], [5, 5, 5, 0]]  # class of the matched target, else "no object" (5)
    num = den = 0.0
    for b in range(2):
        for i in range(4):
            c = wanted[b][i]
            wt = 0.1 if c == 5 else 1.0
            num += wt * -logits[b, i].log_softmax(-1)[c]
            den += wt
    # the log-softmax over 6 classes and the weighted sum over 8 queries, vectorised or in a loop: depth 2
    # Measured (2026-12-07, shared 2-core CPU): 0 (atol 4.0e-6)
    torch.testing.assert_close(class_loss(logits, matches, targets, 0.1), num / den, **fp32_tolerance(terms=8, depth=2))


def test_mask_losses_direct_and_reproducible() -> None:
    cfg = LossConfig(num_points=64, oversample=3.0, importance=0.75)
    masks = torch.randn(1, 3, 8, 8, requires_grad=True)
    tgt = (torch.rand(2, 16, 16) > 0.5).float()
    matches = [(torch.tensor([2, 0]), torch.tensor([0, 1]))]
    targets = [Target(torch.tensor([0, 1]), tgt)]
    bce, dice = mask_losses(masks, matches, targets, 2.0, cfg, torch.Generator().manual_seed(5))
    coords = importance_points(masks[0, [2, 0]], 64, 3.0, 0.75, torch.Generator().manual_seed(5))
    src = point_sample(masks[0, [2, 0]], coords)
    lab = point_sample(tgt, coords)
    ref_bce = sum(F.binary_cross_entropy_with_logits(src[i], lab[i]) for i in range(2)) / 2
    p = src.sigmoid()
    ref_dice = sum(1 - (2 * (p[i] * lab[i]).sum() + 1) / (p[i].sum() + lab[i].sum() + 1) for i in range(2)) / 2
    # the means and sums over 64 points, then the mean over 2 masks, written with other operations: depth 2
    # Measured (2026-12-07, shared 2-core CPU): 0 (atol 1.1e-5)
    torch.testing.assert_close(bce, ref_bce, **fp32_tolerance(terms=64, depth=2))
    torch.testing.assert_close(dice, ref_dice, **fp32_tolerance(terms=64, depth=2))
    again = mask_losses(masks, matches, targets, 2.0, cfg, torch.Generator().manual_seed(5))
    assert torch.equal(again[0], bce) and torch.equal(again[1], dice)
    bce.backward()
    assert masks.grad[0, 1].abs().sum() == 0 and masks.grad[0, 2].abs().sum() > 0  # unmatched query: no mask loss


def test_importance_points() -> None:
    logits = torch.full((1, 10, 10), 9.0)
    logits[0, :, 5] = 0.0  # the only uncertain column
    a = importance_points(logits, 100, 3.0, 0.75, torch.Generator().manual_seed(1))
    b = importance_points(logits, 100, 3.0, 0.75, torch.Generator().manual_seed(1))
    assert a.shape == (1, 100, 2) and torch.equal(a, b)
    assert not torch.equal(a, importance_points(logits, 100, 3.0, 0.75, torch.Generator().manual_seed(2)))
    gen = torch.Generator().manual_seed(1)
    candidates = torch.rand(1, 300, 2, generator=gen)  # the draws, in the function's order
    fresh = torch.rand(1, 25, 2, generator=gen)
    certainty = point_sample(logits, candidates).abs()[0]
    most_uncertain = candidates[0, certainty.argsort()[:75]]
    assert {tuple(p) for p in a[0, :75].tolist()} == {tuple(p) for p in most_uncertain.tolist()}
    assert torch.equal(a[0, 75:], fresh[0])
    assert float(point_sample(logits, a[:, :75]).abs().max()) <= float(certainty.sort().values[74])
    assert float(a.min()) >= 0 and float(a.max()) <= 1


def test_point_sample_reads_pixel_centres() -> None:
    maps = torch.arange(12, dtype=torch.float32).view(1, 3, 4)
    coords = torch.tensor([[[0.125, 1 / 6], [0.875, 5 / 6], [0.375, 0.5]]])  # centres of (0,0), (2,3), (1,1)
    # the coordinates' unnormalisation and the 4-term bilinear sum: depth 2, of values up to 11 (scale)
    # Measured (2026-12-07, shared 2-core CPU): 2.4e-7 (atol 3.1e-5, margin 130)
    torch.testing.assert_close(point_sample(maps, coords), torch.tensor([[0.0, 11.0, 5.0]]),
                               **fp32_tolerance(terms=4, depth=2, scale=11.0))


def test_semantic_targets() -> None:
    labels = torch.tensor([[[0, 0, 3], [255, 3, 3]], [[255, 255, 255], [255, 255, 255]]])
    t = semantic_targets(labels, 4, 255)
    assert t[0].labels.tolist() == [0, 3]
    assert t[0].masks.tolist() == [[[1, 1, 0], [0, 0, 0]], [[0, 0, 1], [0, 1, 1]]]
    assert t[1].labels.numel() == 0 and t[1].masks.shape == (0, 2, 3)
    with pytest.raises(ValueError, match="outside"):
        semantic_targets(torch.tensor([[[5]]]), 4, 255)


def test_set_criterion_sums_weighted_terms_over_layers() -> None:
    cfg = LossConfig(num_points=32)
    g = torch.Generator().manual_seed(0)
    preds = [Prediction(torch.randn(2, 4, 4, generator=g), torch.randn(2, 4, 6, 6, generator=g)) for _ in range(3)]
    targets = semantic_targets(torch.randint(0, 3, (2, 12, 12), generator=g), 3, 255)
    crit = SetCriterion(cfg)
    total = crit(preds, targets, torch.Generator().manual_seed(1))
    gen = torch.Generator().manual_seed(1)
    ref = 0.0
    for p in preds:
        t = crit.terms(p, targets, gen)
        ref = ref + 2.0 * t["loss_class"] + 5.0 * t["loss_mask"] + 5.0 * t["loss_dice"]
    # the same 9 terms (one function, one random stream), weighted and summed in another order
    # Measured (2026-12-07, shared 2-core CPU): 0 (atol 2.1e-6)
    torch.testing.assert_close(total["loss"], ref, **fp32_tolerance(terms=9))
    torch.testing.assert_close(total["loss_dice"], t["loss_dice"], rtol=0, atol=0)  # the same computation
    last_only = SetCriterion(LossConfig(num_points=32, deep_supervision=False))(preds, targets,
                                                                               torch.Generator().manual_seed(1))
    assert float(last_only["loss"]) < float(total["loss"])
    empty = semantic_targets(torch.full((2, 12, 12), 255), 3, 255)  # no labelled pixel: class loss only
    assert torch.isfinite(crit(preds, empty)["loss"])


def test_semantic_inference_direct() -> None:
    cls, masks = torch.randn(2, 3, 5), torch.randn(2, 3, 4, 6)
    out = semantic_inference(cls, masks)
    ref = torch.zeros(2, 4, 4, 6)
    for b in range(2):
        for q in range(3):
            p = cls[b, q].exp() / cls[b, q].exp().sum()
            for c in range(4):
                ref[b, c] += p[c] * torch.sigmoid(masks[b, q])
    # the softmax over 5 classes and the sum over 3 queries, vectorised or in loops: depth 2
    # Measured (2026-12-07, shared 2-core CPU): 1.2e-7 (atol 3.2e-6, margin 27)
    torch.testing.assert_close(out, ref, **fp32_tolerance(terms=5, depth=2))
