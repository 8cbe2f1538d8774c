"""Every method takes a stage-1 attribute table (``attribute_table=``): it changes the classes it
has rows for, an empty table changes nothing, a table of another vocabulary is refused, and a
bad table fails before any model loads. Trident's and MGCA's blend is checked against an
independent computation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import lmseg
from lmseg.errors import LmsegError
from tests.attribute_tables import write_attribute_table
from tests.tolerances import TINY_CLIP_TEXT

pytest.importorskip("open_clip", reason="needs the vision environment (open_clip)")

METHODS = ("lmseg_tiny", "mrovseg_tiny", "mgca_tiny", "trident_tiny")
VOCAB = ["cat", "grass", "sky"]
ADE = Path(__file__).resolve().parents[1] / "fixtures" / "samples" / "ade150_sceneparsing_val3" / "images"


@pytest.fixture(scope="module")
def image() -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(sorted(ADE.iterdir())[0]).convert("RGB"))


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("LMSEG_CACHE_DIR", str(tmp_path / "cache"))


@pytest.mark.parametrize("name", METHODS)
def test_every_method_takes_a_table(name: str, image: np.ndarray, tmp_path: Path) -> None:
    table = write_attribute_table(tmp_path / "t.parquet", {0: "cat"})
    empty = write_attribute_table(tmp_path / "empty.parquet", {})
    plain = lmseg.create_segmenter(name)
    base = plain.logits(image, VOCAB)
    enriched = lmseg.create_segmenter(name, attribute_table=table)
    assert enriched.settings()["attribute_table"] == str(table) and plain.settings()["attribute_table"] is None
    text, own = enriched.text_embeddings(VOCAB), plain.text_embeddings(VOCAB)
    assert not np.array_equal(text.embeddings[0].cpu().numpy(), own.embeddings[0].cpu().numpy())  # cat: changed
    assert not np.array_equal(enriched.logits(image, VOCAB), base)
    np.testing.assert_array_equal(lmseg.create_segmenter(name, attribute_table=empty).logits(image, VOCAB), base)
    with pytest.raises(LmsegError, match="another vocabulary"):
        enriched.predict(image, ["dog", "grass", "sky"])


@pytest.mark.parametrize("name", ["lmseg_vitb16", "mrovseg_vitb16", "mgca_vitb16", "trident_vitb16"])
def test_an_unreadable_table_fails_before_the_model_loads(name: str, tmp_path: Path) -> None:
    """No weights are given: a builder that looked at them first would complain about them."""
    bad = tmp_path / "bad.parquet"
    bad.write_text("not parquet")
    for table, message in ((tmp_path / "missing.parquet", "does not exist"), (bad, "corrupt or not a Parquet")):
        with pytest.raises(LmsegError, match=message):
            lmseg.create_segmenter(name, attribute_table=table)


@pytest.mark.parametrize(("name", "weight_of"), [
    ("trident_tiny", lambda seg: seg.config.attribute_weight), ("mgca_tiny", lambda seg: seg.inference.attribute_weight),
])
def test_blend_of_trident_and_mgca_equals_an_independent_computation(name, weight_of, tmp_path: Path) -> None:
    import open_clip
    import torch
    import torch.nn.functional as F

    table = write_attribute_table(tmp_path / "t.parquet", {0: "cat"}, colour=("orange",))
    seg = lmseg.create_segmenter(name, attribute_table=table)
    clip = seg.model.clip

    def ensemble(sentences: list[str]) -> torch.Tensor:
        with torch.no_grad():
            feats = F.normalize(clip.model.encode_text(clip.tokenizer(sentences)), dim=-1).mean(0)
        return feats / feats.norm()

    w = weight_of(seg)
    assert w == 0.5  # the documented default
    template = ensemble([t("cat") for t in open_clip.OPENAI_IMAGENET_TEMPLATES])
    attributes = ensemble(["a photo of an orange cat.", "a photo of a round cat.", "a photo of a cat with fur."])
    expected = F.normalize((1 - w) * template + w * attributes, dim=-1)
    torch.testing.assert_close(seg.text_embeddings(VOCAB).embeddings[0, 0], expected, **TINY_CLIP_TEXT)
    other = lmseg.create_segmenter(name, attribute_table=table, **{"config" if name == "trident_tiny" else "inference":
                                                                   {"attribute_weight": 0.0}})
    torch.testing.assert_close(other.text_embeddings(VOCAB).embeddings[0, 0], template, **TINY_CLIP_TEXT)


def test_trident_records_the_table(tmp_path: Path) -> None:
    table = write_attribute_table(tmp_path / "t.parquet", {0: "cat"}, colour=("orange",))
    with_table = lmseg.create_segmenter("trident_tiny", attribute_table=table).protocol(VOCAB)["queries"]
    without = lmseg.create_segmenter("trident_tiny").protocol(VOCAB)["queries"]
    assert with_table["attribute_table_sha256"] != without["attribute_table_sha256"]
    assert with_table["embeddings_sha256"] != without["embeddings_sha256"]
    assert with_table["sha256"] == without["sha256"]  # the same queries are sent
    with pytest.raises(LmsegError, match=r"attribute_weight must lie in \[0, 1\]"):
        lmseg.create_segmenter("trident_tiny", config={"attribute_weight": -0.1})
    with pytest.raises(LmsegError, match=r"attribute_weight must lie in \[0, 1\]"):
        lmseg.create_segmenter("mgca_tiny", inference={"attribute_weight": 2})
