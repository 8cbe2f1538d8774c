"""The sam3 label-map rule on synthetic outputs with known answers, and the prompts of a vocabulary."""

from __future__ import annotations

import pytest
import torch

from lmseg.errors import LmsegError
from lmseg.models.sam3.config import Sam3Config
from lmseg.models.sam3.evidence import ClassPool, compete, label_map, labels_in_chunks, prompt_evidence, to_image
from lmseg.models.sam3.prompts import build_prompts
from lmseg.vocab import vocabulary_from_names
from tests.tolerances import fp32_tolerance


def _outputs(seed: int = 0, prompts: int = 3, queries: int = 4, grid: int = 6) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {
        "pred_logits": torch.randn(prompts, queries, 1, generator=g) * 2,
        "presence_logit_dec": torch.randn(prompts, 1, generator=g),
        "pred_masks": torch.randn(prompts, queries, grid, grid, generator=g) * 3,
        "semantic_seg": torch.randn(prompts, 1, grid, grid, generator=g) * 3,
    }


def _straight(out: dict[str, torch.Tensor], p: int, cfg: Sam3Config) -> torch.Tensor:
    """The documented formula for prompt ``p``, one pixel and one query at a time."""
    presence = float(torch.sigmoid(out["presence_logit_dec"][p, 0])) if cfg.use_presence else 1.0
    grid = out["pred_masks"].shape[-1]
    result = torch.zeros(grid, grid)
    for y in range(grid):
        for x in range(grid):
            inst = 0.0
            for q in range(out["pred_logits"].shape[1]):
                s = float(torch.sigmoid(out["pred_logits"][p, q, 0])) * presence
                if s > cfg.instance_threshold:
                    inst = max(inst, s * float(torch.sigmoid(out["pred_masks"][p, q, y, x])))
            sem = float(torch.sigmoid(out["semantic_seg"][p, 0, y, x])) * presence
            both = {"max": max(inst, sem), "mean": (inst + sem) / 2}[cfg.evidence_combine]
            result[y, x] = {"instances": inst, "semantic": sem, "both": both}[cfg.evidence]
    return result


@pytest.mark.parametrize("cfg", [
    Sam3Config(),
    Sam3Config(evidence="instances", instance_threshold=0.3),
    Sam3Config(evidence="semantic", use_presence=False),
    Sam3Config(evidence="both", evidence_combine="mean", instance_threshold=0.6),
])
def test_prompt_evidence_is_the_documented_formula(cfg: Sam3Config) -> None:
    out = _outputs()
    evidence = prompt_evidence(out, cfg)
    assert evidence.shape == (3, 6, 6)
    for p in range(3):
        # elementwise: sigmoid, products with the presence score, max or the mean of 2 (depth 3)
        torch.testing.assert_close(evidence[p], _straight(out, p, cfg), **fp32_tolerance(terms=2, depth=3))


def test_class_pool_max_and_mean_over_batches() -> None:
    g = torch.Generator().manual_seed(1)
    evidence = torch.rand(5, 4, 4, generator=g)
    classes = torch.tensor([0, 2, 0, 2, 2])  # class 1 has no prompt
    for pooling in ("max", "mean"):
        pool = ClassPool(3, (4, 4), pooling, torch.device("cpu"))
        pool.add(evidence[:2], classes[:2])
        pool.add(evidence[2:], classes[2:])  # two batches
        result = pool.result()
        reduce = (lambda t: t.amax(0)) if pooling == "max" else (lambda t: t.mean(0))
        # maxima are exact; the means of up to 3 maps are summed across batches in another order (measured
        # 2026-12-07 on the shared 2-core CPU: 0, atol 1.2e-6)
        tol = {"rtol": 0.0, "atol": 0.0} if pooling == "max" else fp32_tolerance(terms=3)
        torch.testing.assert_close(result[0], reduce(evidence[[0, 2]]), **tol)
        torch.testing.assert_close(result[2], reduce(evidence[[1, 3, 4]]), **tol)
        assert float(result[1].abs().max()) == 0.0


@pytest.mark.parametrize("cfg", [
    Sam3Config(class_chunk=2),
    Sam3Config(class_chunk=3, background_threshold=0.5, background_index=1),
    Sam3Config(class_chunk=2, competition="softmax", temperature=0.1),
    Sam3Config(class_chunk=4, competition="softmax", temperature=0.2, background_threshold=0.3),
])
def test_labels_in_chunks_equal_the_one_shot_rule(cfg: Sam3Config) -> None:
    maps = torch.rand(7, 9, 11, generator=torch.Generator().manual_seed(2))
    scores = compete(to_image(maps, (30, 40)), cfg)
    if cfg.competition == "softmax":
        # the softmax's normaliser over 7 maps and the sum of its 7 quotients: depth 2. Measured (2026-12-07,
        # shared 2-core CPU): 2.4e-7 (atol 3.8e-6, margin 16)
        torch.testing.assert_close(scores.sum(0), torch.ones(30, 40), **fp32_tolerance(terms=7, depth=2))
    expected = label_map(scores, cfg)
    assert torch.equal(labels_in_chunks(maps, (30, 40), cfg), expected)
    if cfg.background_threshold:
        assert bool((expected == cfg.background_index).any())


def test_prompts_synonyms_and_published_names() -> None:
    vocab = vocabulary_from_names(["person", "dog;puppy", "sky"])
    prompts = build_prompts(vocab, Sam3Config())
    assert prompts.texts == ("person", "dog", "puppy", "sky") and prompts.classes == (0, 1, 1, 2)
    assert build_prompts(vocab, Sam3Config(synonyms=False)).texts == ("person", "dog", "sky")
    published = build_prompts(vocab, Sam3Config(), published={0: ("man", "woman"), 1: ("dog",), 2: ("sky",)})
    assert published.texts == ("man", "woman", "dog", "sky") and published.classes == (0, 0, 1, 2)
    assert prompts.sha256 != published.sha256


def test_bad_settings_are_refused() -> None:
    with pytest.raises(LmsegError, match="evidence must be one of instances, semantic, both"):
        Sam3Config(evidence="boxes")
    with pytest.raises(LmsegError, match="temperature must be positive; prompt_batch must be positive"):
        Sam3Config(temperature=0, prompt_batch=0)
    with pytest.raises(LmsegError, match="unknown class list"):
        Sam3Config(class_list="nobody/voc21")
