"""Template-ensemble text embeddings and synonym pooling vs straightforward computations."""

from __future__ import annotations

import open_clip
import pytest
import torch

from lmseg.text.ensemble import encode_vocabulary, ensemble_embeddings, max_over_synonyms, vocabulary_queries
from lmseg.text.templates import IMAGENET_TEMPLATES, fill_templates
from lmseg.vocab import vocabulary_from_names
from tests.tolerances import TINY_CLIP_TEXT, fp32_tolerance


@pytest.fixture(scope="module")
def clip():
    from lmseg.backbones.clip_factory import create_dense_clip

    torch.manual_seed(0)
    return create_dense_clip("lmseg-tiny-ViT", pretrained=None)


def test_templates_are_open_clips_80_in_order() -> None:
    assert len(IMAGENET_TEMPLATES) == 80
    assert fill_templates("cat") == [t("cat") for t in open_clip.OPENAI_IMAGENET_TEMPLATES]
    assert fill_templates("cat")[0] == "a bad photo of a cat."


def test_vocabulary_queries_and_background_replacement() -> None:
    vocab = vocabulary_from_names(["background", "sofa, couch", "cat"])
    assert vocabulary_queries(vocab) == (["background", "sofa", "couch", "cat"], [0, 1, 1, 2])
    queries, owners = vocabulary_queries(vocab, replace={0: ("sky", "wall")})
    assert queries == ["sky", "wall", "sofa", "couch", "cat"] and owners == [0, 0, 1, 1, 2]


@torch.no_grad()
def test_ensemble_equals_per_query_loop(clip) -> None:
    queries = ["cat", "sofa", "traffic light"]
    got = ensemble_embeddings(clip, queries, batch_size=37)
    model, tokenizer = clip.model, open_clip.get_tokenizer("lmseg-tiny-ViT")
    for i, name in enumerate(queries):  # the public code's loop, one query at a time
        feats = model.encode_text(tokenizer([t(name) for t in open_clip.OPENAI_IMAGENET_TEMPLATES]))
        feats = feats / feats.norm(dim=-1, keepdim=True)
        mean = feats.mean(dim=0)
        torch.testing.assert_close(got[i], mean / mean.norm(), **TINY_CLIP_TEXT)
    # the normalisation and the norm, 32 terms each: depth 2. Measured (2026-12-07, shared 2-core CPU): 6.0e-8
    # (atol 8.1e-6, margin 135)
    torch.testing.assert_close(got.norm(dim=-1), torch.ones(3), **fp32_tolerance(terms=32, depth=2))


@torch.no_grad()
def test_encode_vocabulary_rows_follow_queries(clip) -> None:
    vocab = vocabulary_from_names(["sofa, couch", "cat"])
    out = encode_vocabulary(clip, vocab)
    assert out.queries == ("sofa", "couch", "cat") and out.num_classes == 2
    assert out.query_to_class.tolist() == [0, 0, 1]
    torch.testing.assert_close(out.embeddings[1], ensemble_embeddings(clip, ["couch"])[0], **TINY_CLIP_TEXT)


def test_max_over_synonyms_equals_loop() -> None:
    g = torch.Generator().manual_seed(0)
    probs = torch.rand(6, 3, 4, generator=g)
    owners = torch.tensor([0, 0, 0, 1, 2, 2])
    got = max_over_synonyms(probs, owners, 3)
    expected = torch.stack([probs[owners == c].max(dim=0).values for c in range(3)])
    torch.testing.assert_close(got, expected, rtol=0, atol=0)
    # the public code's special case: only class 0 (background) has several queries
    bg = torch.cat([probs[:3].max(0, keepdim=True).values, probs[3:]])
    torch.testing.assert_close(max_over_synonyms(probs, torch.tensor([0, 0, 0, 1, 2, 3]), 4), bg, rtol=0, atol=0)
    # one query per class is the identity
    torch.testing.assert_close(max_over_synonyms(probs, torch.arange(6), 6), probs, rtol=0, atol=0)
    with pytest.raises(ValueError, match="at least one query"):
        max_over_synonyms(probs, torch.tensor([0, 0, 0, 2, 2, 2]), 3)
