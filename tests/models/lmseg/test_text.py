"""Attribute prompts (P channels, fall-backs, synonyms, pooling) and the on-disk embedding cache."""

from __future__ import annotations

import warnings
from datetime import datetime, timezone

import pytest
import torch

from lmseg.attributes.reader import load_attributes
from lmseg.attributes.store import AttributeRow, rows_to_table, write_table
from lmseg.errors import LmsegError
from lmseg.text.cache import CorruptCacheWarning, EmbeddingCache, clip_text_fingerprint, table_sha256
from lmseg.text.prompts import PromptSpec, build_prompts, encode_prompts, pool_embeddings
from lmseg.vocab import vocabulary_from_names
from tests.tolerances import fp32_tolerance


def _row(i: int, name: str, colour=("brown",), shape=("round",), texture=("furry",), dataset="pets") -> AttributeRow:
    return AttributeRow(dataset, i, name, tuple(colour), tuple(shape), tuple(texture), "test-llm", "0" * 64,
                        datetime(2026, 1, 1, tzinfo=timezone.utc), "{}")


@pytest.fixture
def table(tmp_path):
    """A real Parquet attribute table written by the stage-1 store (class 2 has no row)."""
    path = tmp_path / "pets.parquet"
    write_table(rows_to_table([_row(0, "cat", colour=("black", "white")), _row(1, "sofa", texture=("leather",))]), path)
    return path


VOCAB = vocabulary_from_names(["cat", "sofa, couch", "tree"], name="pets")


def test_channels_fallback_and_synonyms(table) -> None:
    attrs = load_attributes("pets", "", path=table)
    prompts = build_prompts(VOCAB, attrs)
    s = prompts.sentences
    assert len(prompts.channels) == 3 and all(len(c) == 4 for c in prompts.channels)
    cat = prompts.channels[0]
    assert [s[i] for i in cat[0]] == ["a photo of a cat."]
    assert [s[i] for i in cat[1]] == ["a photo of a black cat.", "a photo of a white cat."]
    assert [s[i] for i in cat[3]] == ["a photo of a furry cat."]
    sofa = prompts.channels[1]  # synonyms: every sentence once per name
    assert [s[i] for i in sofa[0]] == ["a photo of a sofa.", "a photo of a couch."]
    assert [s[i] for i in sofa[3]] == ["a photo of a sofa made of leather.", "a photo of a couch made of leather."]
    tree = prompts.channels[2]  # no row: every channel falls back to the template
    assert all(ch == tree[0] for ch in tree) and [s[i] for i in tree[0]] == ["a photo of a tree."]
    assert prompts.fallback == (False, False, True)
    assert len(set(s)) == len(s)  # every sentence encoded once


def test_table_of_another_vocabulary_is_refused(table) -> None:
    attrs = load_attributes("pets", "", path=table)
    other = vocabulary_from_names(["dog", "sofa", "tree"], name="pets")
    with pytest.raises(LmsegError, match="another vocabulary"):
        build_prompts(other, attrs)
    with pytest.raises(LmsegError, match="outside the vocabulary"):
        build_prompts(vocabulary_from_names(["cat"], name="pets"), attrs)


def test_pooling_variants_average_normalised_embeddings() -> None:
    vocab = vocabulary_from_names(["cat", "dog"])
    attrs = {0: _row(0, "cat", colour=("black", "white"))}
    emb = torch.randn(100, 16)
    for pooling, p in (("channels", 4), ("mean", 1)):
        prompts = build_prompts(vocab, attrs, pooling=pooling)
        out = pool_embeddings(prompts, emb[: len(prompts.sentences)])
        assert out.shape == (2, p, 16)
        # the last normalisation and the norm, 16 terms each: depth 2. Measured (2026-12-07, shared 2-core CPU):
        # up to 1.2e-7 (atol 5.7e-6, margin 48)
        torch.testing.assert_close(out.norm(dim=-1), torch.ones(2, p), **fp32_tolerance(terms=16, depth=2))
    prompts = build_prompts(vocab, attrs)
    e = torch.nn.functional.normalize(emb[: len(prompts.sentences)], dim=-1)
    colour = torch.nn.functional.normalize(e[list(prompts.channels[0][1])].mean(0), dim=0)
    # the normalisations (16 terms), the mean and the normalisation of the mean written out: depth 3. Measured
    # (2026-12-07, shared 2-core CPU): 0 (atol 8.6e-6)
    pooled = fp32_tolerance(terms=16, depth=3)
    torch.testing.assert_close(pool_embeddings(prompts, emb[: len(prompts.sentences)])[0, 1], colour, **pooled)
    chans = pool_embeddings(prompts, emb[: len(prompts.sentences)])
    mean = pool_embeddings(build_prompts(vocab, attrs, pooling="mean"), emb[: len(prompts.sentences)])
    torch.testing.assert_close(mean[:, 0], torch.nn.functional.normalize(chans.mean(1), dim=-1), **pooled)


def test_imagenet_templates_option() -> None:
    prompts = build_prompts(vocabulary_from_names(["cat"]), None, spec=PromptSpec(imagenet_templates=True))
    assert len(prompts.channels[0][0]) == 80 and "a bad photo of a cat." in prompts.sentences


class _CountingEncoder:
    def __init__(self, clip) -> None:
        self.clip, self.calls = clip, 0

    def __call__(self, texts):
        self.calls += 1
        return self.clip.encode_text(texts)


def test_cache_hit_keys_and_corruption(tiny_model, table, tmp_path) -> None:
    clip = tiny_model.clip
    attrs = load_attributes("pets", "", path=table)
    prompts = build_prompts(VOCAB, attrs)
    cache = EmbeddingCache(tmp_path / "emb")
    enc = _CountingEncoder(clip)
    wid = clip_text_fingerprint(clip.model)
    kw = dict(model_name=clip.model_name, weights_id=wid, table_id=table_sha256(attrs))
    first = cache.get_or_compute(prompts, enc, **kw)
    assert first.shape == (3, 4, 32) and enc.calls == 1
    torch.testing.assert_close(first, encode_prompts(prompts, clip.encode_text), rtol=0, atol=0)  # the same call
    again = cache.get_or_compute(prompts, enc, **kw)
    assert enc.calls == 1 and torch.equal(first, again)
    files = list((tmp_path / "emb").rglob("*.safetensors"))
    assert len(files) == 1 and not list((tmp_path / "emb").rglob(".*tmp*"))
    # other weights, other table content, other templates: other entries
    cache.get_or_compute(prompts, enc, **{**kw, "weights_id": "other"})
    changed = dict(attrs)
    changed[0] = _row(0, "cat", colour=("grey",))
    cache.get_or_compute(build_prompts(VOCAB, changed), enc, **{**kw, "table_id": table_sha256(changed)})
    cache.get_or_compute(build_prompts(VOCAB, attrs, spec=PromptSpec(templates=("a {}.",))), enc, **kw)
    assert enc.calls == 4 and len(list((tmp_path / "emb").rglob("*.safetensors"))) == 4
    # a corrupt entry is reported and recomputed, never used
    files[0].write_bytes(files[0].read_bytes()[:-7] + b"garbage")
    with pytest.warns(CorruptCacheWarning):
        fixed = cache.get_or_compute(prompts, enc, **kw)
    assert enc.calls == 5 and torch.equal(fixed, first)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cache.get_or_compute(prompts, enc, **kw)  # rewritten: a clean hit
    assert enc.calls == 5


def test_text_fingerprint_tracks_weights(tiny_model) -> None:
    from .conftest import fresh_tiny_model

    a = clip_text_fingerprint(tiny_model.clip.model)
    assert a == clip_text_fingerprint(tiny_model.clip.model)
    assert a != clip_text_fingerprint(fresh_tiny_model(seed=1).clip.model)
