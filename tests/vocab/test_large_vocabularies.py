"""The large built-in vocabularies (LVIS, ImageNet-21k) load, and match their sources."""

from __future__ import annotations

import csv
import pkgutil

import pytest

from lmseg.vocab import get_vocabulary


def test_lvis1203_has_the_lvis_v1_categories_in_id_order() -> None:
    vocabulary = get_vocabulary("lvis1203")
    assert len(vocabulary) == 1203
    assert vocabulary.classes[0].names == ("aerosol can", "spray can")  # id 1
    assert vocabulary.classes[63].names == ("bat (animal)",)  # id 64
    assert vocabulary.classes[1202].name == "zucchini"  # id 1203
    assert len(set(vocabulary.names)) == 1203


def timm_info(name: str) -> list[str]:
    return pkgutil.get_data("timm.data", f"_info/{name}").decode("utf-8").splitlines()


def test_imagenet21k_matches_timms_synsets_and_lemmas() -> None:
    pytest.importorskip("timm", reason="timm is in the vision environment (run `make test`)")
    synsets = [s for s in timm_info("imagenet21k_goog_synsets.txt") if s]
    lemmas = dict(csv.reader(timm_info("imagenet_synset_to_lemma.txt"), delimiter="\t"))
    vocabulary = get_vocabulary("imagenet21k")
    assert len(vocabulary) == len(synsets) == 21843
    glossed = 0
    for entry, synset in zip(vocabulary.classes, synsets, strict=True):
        names = tuple(n.strip() for n in lemmas[synset].split(","))
        if entry.names[1:] == names:  # a shared lemma list: the primary name carries the definition
            assert entry.name.startswith(f"{names[0]} (")
            glossed += 1
        else:
            assert entry.names == names
    assert glossed == 1152


def test_user_class_names_are_bounded_and_built_in_ones_exempt() -> None:
    """One bound for every front end (the web page's box, --classes, files, Python lists)."""
    from lmseg.errors import LmsegError
    from lmseg.vocab import get_vocabulary, parse_class_list, vocabulary_from_names
    from lmseg.vocab.vocabulary import MAX_NAME_CHARS

    assert MAX_NAME_CHARS == 100
    assert vocabulary_from_names(["road", "c" * 100]).names == ["road", "c" * 100]
    for make in (lambda n: vocabulary_from_names(["road", n]), lambda n: parse_class_list(f"road,sky;{n}")):
        with pytest.raises(LmsegError, match="is 101 characters long; class names and synonyms have at most 100"):
            make("d" * 101)
    assert max(len(n) for c in get_vocabulary("imagenet21k").classes for n in c.names) > MAX_NAME_CHARS
