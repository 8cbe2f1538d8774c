"""Each MGCA loss term against a direct, loop-by-loop computation on small tensors; the
hard-negative sampler and the pseudo pixel labels on scripted cases whose answers are known."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from lmseg.models.mgca import losses
from lmseg.models.mgca.grouping import GroupTokens, kmeans_assignment, region_embeddings
from lmseg.models.mgca.model import PhraseBatch
from tests.tolerances import U64, fp32_tolerance


def _unit(*shape: int, seed: int = 0) -> torch.Tensor:
    return F.normalize(torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64), dim=-1)


def _nce(query: torch.Tensor, keys: list[torch.Tensor], positive: int, t: float) -> float:
    """-log( exp(q.k_pos/t) / sum_k exp(q.k/t) ) over the given keys, in plain Python."""
    scores = [float(query @ k) / t for k in keys]
    return -(scores[positive] - math.log(sum(math.exp(s) for s in scores)))


# Batch of 3 images; phrases: image 0 -> 0, 1; image 1 -> 2, 3 (3 repeats phrase 0's text); image 2 -> 4.
OWNER = torch.tensor([0, 0, 1, 1, 2])
TEXT_ID = torch.tensor([0, 1, 2, 0, 3])


def test_negative_mask_scripted() -> None:
    # Phrase embeddings on a circle: known similarity order.
    angles = torch.tensor([0.0, 0.3, 0.5, 0.0, 2.0], dtype=torch.float64)
    phrases = torch.stack([angles.cos(), angles.sin()], dim=1)
    full = losses.negative_mask(phrases, OWNER, TEXT_ID, k=0)
    expected = torch.tensor([
        [0, 0, 1, 0, 1],   # phrase 0: not its own caption (0, 1), not the same text (3)
        [0, 0, 1, 1, 1],
        [1, 1, 0, 0, 1],
        [0, 1, 0, 0, 1],   # phrase 3 has phrase 0's text: 0 is excluded although another caption
        [1, 1, 1, 1, 0],
    ], dtype=torch.bool)
    assert torch.equal(full, expected)
    hard = losses.negative_mask(phrases, OWNER, TEXT_ID, k=1)
    # the most similar allowed phrase: 0 -> 2 (0.5 rad), 1 -> 2 (0.2), 2 -> 1 (0.2), 3 -> 1, 4 -> 2 (1.5)
    assert [row.nonzero().flatten().tolist() for row in hard] == [[2], [2], [1], [1], [2]]
    two = losses.negative_mask(phrases, OWNER, TEXT_ID, k=2)
    assert [row.nonzero().flatten().tolist() for row in two] == [[2, 4], [2, 3], [0, 1], [1, 4], [1, 2]]
    assert not (two & ~full).any()


def test_image_caption_loss_matches_direct_computation() -> None:
    images, captions, t = _unit(4, 8, seed=1), _unit(4, 8, seed=2), 0.1
    direct = 0.0
    for i in range(4):
        direct += 0.5 * _nce(images[i], list(captions), i, t) / 4
        direct += 0.5 * _nce(captions[i], list(images), i, t) / 4
    # float64 both sides: inner products over 8 dimensions, the log-sum-exp over 4, the mean: depth 3; logits
    # of 1 / t times the cosines (scale)
    tol = fp32_tolerance(terms=8, depth=3, scale=1 / t, u=U64)
    assert math.isclose(float(losses.image_caption_loss(images, captions, t)), direct, rel_tol=tol["rtol"],
                        abs_tol=tol["atol"])


def test_object_loss_matches_direct_computation() -> None:
    patches, phrases = _unit(3, 6, 8, seed=3), _unit(5, 8, seed=4)
    negatives = losses.negative_mask(phrases, OWNER, TEXT_ID, k=2)
    ta, t = 0.05, 0.07
    got = losses.object_loss(patches, phrases, OWNER, negatives, attention_temperature=ta, temperature=t)
    direct = 0.0
    for m in range(5):
        own = patches[OWNER[m]]
        weights = [math.exp(float(p @ phrases[m]) / ta) for p in own]
        pooled = sum(w * p for w, p in zip(weights, own)) / sum(weights)
        pooled = pooled / pooled.norm()
        keys = [m] + negatives[m].nonzero().flatten().tolist()
        direct += _nce(pooled, [phrases[k] for k in keys], 0, t) / 5
    # float64 both sides: the attention logits and pooling (2), the norm (1), the logits, log-sum-exp and mean
    # (3): depth 6 over 8 dimensions; pooling errors of 1 / ta reach logits of 1 / t (scale 1 / (ta t))
    tol = fp32_tolerance(terms=8, depth=6, scale=1 / (ta * t), u=U64)
    assert math.isclose(float(got), direct, rel_tol=tol["rtol"], abs_tol=tol["atol"])


def test_region_loss_matches_direct_computation() -> None:
    regions, phrases = _unit(3, 4, 8, seed=5), _unit(5, 8, seed=6)
    negatives = losses.negative_mask(phrases, OWNER, TEXT_ID, k=0)
    got = losses.region_loss(regions, phrases, OWNER, negatives, temperature=0.2)
    direct, count = 0.0, 0
    for b in range(3):
        own = [m for m in range(5) if OWNER[m] == b]
        for r in regions[b]:
            best = max(own, key=lambda m: float(r @ phrases[m]))
            keys = [best] + negatives[best].nonzero().flatten().tolist()
            direct += _nce(r, [phrases[k] for k in keys], 0, 0.2)
            count += 1
    # float64 both sides: the logits (8 dimensions), the log-sum-exp, the mean over 12 regions: depth 3; scale 1 / 0.2
    tol = fp32_tolerance(terms=12, depth=3, scale=1 / 0.2, u=U64)
    assert math.isclose(float(got), direct / count, rel_tol=tol["rtol"], abs_tol=tol["atol"])


def test_pseudo_pixel_labels_scripted() -> None:
    # Image 0 owns phrases 0 ("x" axis) and 1 ("y" axis); image 1 owns phrase 2 only; image 2 none.
    phrases = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    owner = torch.tensor([0, 0, 1])

    def at(deg: float) -> list[float]:
        return [math.cos(math.radians(deg)), math.sin(math.radians(deg))]

    patches = torch.tensor([
        [at(0), at(80), at(40), at(50)],      # cosines to own best: 1.0, 0.98, 0.77, 0.77
        [at(180), at(120), at(90), at(0)],    # to phrase 2: 1.0, 0.5, 0.0, -1.0
        [at(0), at(10), at(20), at(30)],
    ])
    labels, keep = losses.pseudo_pixel_labels(patches, phrases, owner, selection="threshold", threshold=0.6,
                                              top_fraction=1.0)
    assert labels[0].tolist() == [0, 1, 0, 1] and labels[1].tolist() == [2, 2, 2, 2]
    assert keep.tolist() == [[True, True, True, True], [True, False, False, False], [False] * 4]
    labels, keep = losses.pseudo_pixel_labels(patches, phrases, owner, selection="top_fraction", threshold=0.0,
                                              top_fraction=0.5)
    assert keep.tolist() == [[True, True, False, False], [True, True, False, False], [False] * 4]


def test_pixel_loss_matches_direct_computation() -> None:
    patches, phrases = _unit(3, 5, 8, seed=7), _unit(5, 8, seed=8)
    negatives = losses.negative_mask(phrases, OWNER, TEXT_ID, k=3)
    labels, keep = losses.pseudo_pixel_labels(patches, phrases, OWNER, selection="top_fraction", threshold=0.0,
                                              top_fraction=0.6)
    got = losses.pixel_loss(patches, phrases, labels, keep, negatives, temperature=0.1)
    terms = []
    for b, n in keep.nonzero().tolist():
        m = int(labels[b, n])
        assert OWNER[m] == b  # a pseudo label is always a phrase of the image's own caption
        keys = [m] + negatives[m].nonzero().flatten().tolist()
        terms.append(_nce(patches[b, n], [phrases[k] for k in keys], 0, 0.1))
    assert len(terms) == 3 * 3  # ceil(0.6 * 5) patches of each image
    # float64 both sides: the logits (8 dimensions), the log-sum-exp, the mean over 9 patches: depth 3; scale 1 / 0.1
    tol = fp32_tolerance(terms=9, depth=3, scale=1 / 0.1, u=U64)
    assert math.isclose(float(got), sum(terms) / len(terms), rel_tol=tol["rtol"], abs_tol=tol["atol"])


def test_grouping_assignments_and_regions() -> None:
    patches = _unit(2, 6, 8, seed=9).float()
    tokens = GroupTokens(3, 8, temperature=0.1)
    a = tokens(patches)
    assert a.shape == (2, 6, 3)
    # the softmax's normaliser over 3 groups and the sum of its quotients: depth 2. Measured (2026-12-07, shared
    # 2-core CPU): up to 1.2e-7 over runs (atol 2.5e-6, margin 21)
    torch.testing.assert_close(a.sum(-1), torch.ones(2, 6), **fp32_tolerance(terms=3, depth=2))
    regions = region_embeddings(patches, a)
    direct = (a[1, :, 2:3] * patches[1]).sum(0) / a[1, :, 2].sum()
    # the weighted sum over 6 patches, the weights' sum, the norm over 8 dimensions, in other operations:
    # 8 terms, depth 3. Measured (2026-12-07, shared 2-core CPU): 6.0e-8 (atol 6.1e-6)
    torch.testing.assert_close(regions[1, 2], direct / direct.norm(), **fp32_tolerance(terms=8, depth=3))
    # k-means separates two well-separated clusters exactly
    x = F.normalize(torch.tensor([[[1.0, 0.05], [1.0, -0.05], [0.05, 1.0], [-0.05, 1.0]]]), dim=-1)
    hard = kmeans_assignment(x, 2, iterations=3, temperature=0.05).argmax(-1)[0].tolist()
    assert hard[0] == hard[1] != hard[2] == hard[3]


def test_phrase_batch_flattening() -> None:
    batch = PhraseBatch.from_lists([("cat", "sofa"), (), ("cat",)])
    assert batch.texts == ("cat", "sofa", "cat")
    assert batch.owner.tolist() == [0, 0, 2] and batch.text_id.tolist() == [0, 1, 0]
