"""TextEmbedder: one result type for every way of writing and pooling prompts; attribute
sentences combined as documented, checked against independent computations with open_clip."""

from __future__ import annotations

from datetime import datetime, timezone

import open_clip
import pytest
import torch
import torch.nn.functional as F

from lmseg.attributes.store import AttributeRow, rows_to_table, write_table
from lmseg.errors import LmsegError
from lmseg.text.embedder import ClassEmbeddings, TextEmbedder
from lmseg.text.prompts import PromptSpec
from lmseg.vocab import vocabulary_from_names
from tests.tolerances import TINY_CLIP_TEXT, fp32_tolerance

VOCAB = vocabulary_from_names(["cat", "sofa, couch", "tree"], name="pets")
W = 0.3


def _row(i: int, name: str, colour=(), shape=(), texture=()) -> AttributeRow:
    return AttributeRow("pets", i, name, tuple(colour), tuple(shape), tuple(texture), "test-llm", "0" * 64,
                        datetime(2026, 1, 1, tzinfo=timezone.utc), "{}")


ROWS = {0: _row(0, "cat", colour=("orange",), texture=("fur",)), 1: _row(1, "sofa", texture=("leather",))}


@pytest.fixture(scope="module")
def clip():
    from lmseg.backbones.clip_factory import create_dense_clip

    torch.manual_seed(0)
    return create_dense_clip("lmseg-tiny-ViT", pretrained=None).eval()


@torch.no_grad()
def _ensemble(clip, sentences: list[str]) -> torch.Tensor:
    """Open_clip's zero-shot ensemble of ``sentences``, written out: ``(D,)``."""
    feats = clip.model.encode_text(clip.tokenizer(sentences))
    mean = F.normalize(feats, dim=-1).mean(dim=0)
    return mean / mean.norm()


def _templates(name: str) -> list[str]:
    return [t(name) for t in open_clip.OPENAI_IMAGENET_TEMPLATES]


def _blend(template: torch.Tensor, attributes: torch.Tensor) -> torch.Tensor:
    return F.normalize((1 - W) * template + W * attributes, dim=-1)


def test_queries_blend_equals_an_independent_computation(clip) -> None:
    """Trident's way: one row per name, the class's attribute sentences blended into each."""
    plain = TextEmbedder(clip, spec=PromptSpec(imagenet_templates=True), combination="blend", attribute_weight=W,
                         synonyms="separate", cache=None)
    text = TextEmbedder(clip, spec=PromptSpec(imagenet_templates=True), combination="blend", attribute_weight=W,
                        synonyms="separate", attribute_table=ROWS, cache=None)(VOCAB)
    assert isinstance(text, ClassEmbeddings)
    assert text.embeddings.shape == (4, 1, 32) and text.embeddings.dtype == torch.float32
    assert text.queries == ("cat", "sofa", "couch", "tree") and text.query_to_class.tolist() == [0, 1, 1, 2]
    cat = ["a photo of an orange cat.", "a photo of a cat with fur."]
    expected = {0: _blend(_ensemble(clip, _templates("cat")), _ensemble(clip, cat)),
                1: _blend(_ensemble(clip, _templates("sofa")), _ensemble(clip, ["a photo of a sofa made of leather."])),
                2: _blend(_ensemble(clip, _templates("couch")),
                          _ensemble(clip, ["a photo of a couch made of leather."]))}
    for row, vector in expected.items():
        torch.testing.assert_close(text.embeddings[row, 0], vector, **TINY_CLIP_TEXT)
    untouched = plain(VOCAB)  # the tree has no row: its query is exactly the template ensemble
    assert torch.equal(text.embeddings[3], untouched.embeddings[3])
    torch.testing.assert_close(text.embeddings[3, 0], _ensemble(clip, _templates("tree")), **TINY_CLIP_TEXT)


def test_class_blend_equals_an_independent_computation(clip) -> None:
    """MGCA's way: one row per class, synonyms averaged, attribute sentences of every name blended."""
    spec = PromptSpec(imagenet_templates=True)
    text = TextEmbedder(clip, spec=spec, combination="blend", attribute_weight=W, attribute_table=ROWS,
                        cache=None)(VOCAB)
    assert text.embeddings.shape == (3, 1, 32) and text.query_to_class.tolist() == [0, 1, 2]
    assert text.queries == ("cat", "sofa; couch", "tree")
    sofa = _blend(_ensemble(clip, _templates("sofa") + _templates("couch")),
                  _ensemble(clip, ["a photo of a sofa made of leather.", "a photo of a couch made of leather."]))
    torch.testing.assert_close(text.embeddings[1, 0], sofa, **TINY_CLIP_TEXT)


def test_channels_and_mean(clip) -> None:
    """LMSeg's and MROVSeg's way: template, colour, shape, texture channels; or their mean."""
    channels = TextEmbedder(clip, attribute_table=ROWS, cache=None)(VOCAB)
    assert channels.embeddings.shape == (3, 4, 32)
    torch.testing.assert_close(channels.embeddings[0, 1], _ensemble(clip, ["a photo of an orange cat."]),
                               **TINY_CLIP_TEXT)
    torch.testing.assert_close(channels.embeddings[0, 2], _ensemble(clip, ["a photo of a cat."]), **TINY_CLIP_TEXT)
    mean = TextEmbedder(clip, combination="mean", attribute_table=ROWS, cache=None)(VOCAB)
    assert mean.embeddings.shape == (3, 1, 32)
    # the same channels' mean and normalisation (32 terms) in another order: depth 2. Measured (2026-12-07, shared
    # 2-core CPU): 0 (atol 8.1e-6)
    torch.testing.assert_close(mean.embeddings[:, 0], F.normalize(channels.embeddings.mean(1), dim=-1),
                               **fp32_tolerance(terms=32, depth=2))


@pytest.mark.parametrize("kind", [
    {"combination": "channels"}, {"combination": "mean"}, {"combination": "blend", "attribute_weight": W},
    {"combination": "blend", "attribute_weight": W, "synonyms": "separate"},
])
def test_an_empty_table_or_a_zero_weight_changes_nothing(clip, kind, tmp_path) -> None:
    empty = tmp_path / "empty.parquet"
    write_table(rows_to_table([]), empty)
    alone = TextEmbedder(clip, **kind, cache=None)(VOCAB)
    with_empty = TextEmbedder(clip, **kind, attribute_table=empty, cache=None)(VOCAB)
    assert torch.equal(alone.embeddings, with_empty.embeddings)
    assert alone.prompts_sha256 == with_empty.prompts_sha256 and alone.table_sha256 == with_empty.table_sha256
    if kind["combination"] == "blend":
        weightless = TextEmbedder(clip, **{**kind, "attribute_weight": 0.0}, attribute_table=ROWS, cache=None)
        assert torch.equal(weightless(VOCAB).embeddings, alone.embeddings)


def test_a_table_of_another_vocabulary_is_refused(clip, tmp_path) -> None:
    path = tmp_path / "pets.parquet"
    write_table(rows_to_table(list(ROWS.values())), path)
    embedder = TextEmbedder(clip, attribute_table=path, cache=None)
    with pytest.raises(LmsegError, match=r"row 0 is for 'cat' but class 0 of .* is 'dog'.*another vocabulary"):
        embedder(vocabulary_from_names(["dog", "sofa"]))
    with pytest.raises(LmsegError, match="outside the vocabulary"):
        embedder(vocabulary_from_names(["cat"]))
    with pytest.raises(LmsegError, match="does not exist"):
        TextEmbedder(clip, attribute_table=tmp_path / "missing.parquet")


def test_memo_cache_and_table_swaps(clip, tmp_path) -> None:
    """What is encoded when: every sentence once (in batches), nothing again from the memo or the
    disk cache, and only the attribute sentences when a table is added."""
    sent: list[str] = []

    class Counting:
        model, model_name, tokenizer = clip.model, clip.model_name, clip.tokenizer

        def encode_text(self, texts, **kwargs):
            sent.extend(texts)
            return clip.encode_text(texts, **kwargs)

    embedder = TextEmbedder(Counting(), combination="blend", attribute_weight=W, synonyms="separate",
                            spec=PromptSpec(imagenet_templates=True))
    first = embedder(VOCAB)
    templates = set(sent)
    assert templates and len(sent) == len(templates)  # templates only, each once; on the disk cache
    assert embedder(VOCAB) is first and len(sent) == len(templates)  # memoised
    embedder.attribute_table = ROWS
    blended = embedder(VOCAB)
    added = sent[len(templates):]
    assert added and templates.isdisjoint(added)  # only the attribute sentences
    assert not torch.equal(blended.embeddings, first.embeddings)
    embedder.attribute_table = None
    encoded = len(sent)
    assert embedder(VOCAB) is first and len(sent) == encoded  # every table's result stays memoised
    fresh = TextEmbedder(Counting(), combination="blend", attribute_weight=W, synonyms="separate",
                         spec=PromptSpec(imagenet_templates=True), attribute_table=ROWS)
    assert torch.equal(fresh(VOCAB).embeddings, blended.embeddings) and len(sent) == encoded  # from the disk cache


def test_bad_settings_are_refused(clip) -> None:
    with pytest.raises(ValueError, match="needs combination='blend'"):
        TextEmbedder(clip, synonyms="separate")
    with pytest.raises(ValueError, match=r"attribute_weight must lie in \[0, 1\]"):
        TextEmbedder(clip, combination="blend", attribute_weight=1.5)
