"""Sentences that read right: articles, and the sentence form of each kind of attribute phrase."""

from __future__ import annotations

import pytest

from lmseg.errors import LmsegError
from lmseg.text.prompts import PromptSpec, build_prompts
from lmseg.text.sentences import fill, indefinite_article, phrase_kind
from lmseg.vocab import vocabulary_from_names


@pytest.mark.parametrize(("word", "article"), [
    ("aeroplane", "an"), ("orange", "an"), ("umbrella", "an"), ("elephant", "an"), ("igloo", "an"), ("hour", "an"),
    ("dog", "a"), ("unicycle", "a"), ("utensil", "a"), ("European", "a"), ("one-way sign", "a"), ("horse", "a"),
])
def test_indefinite_article(word: str, article: str) -> None:
    assert indefinite_article(word) == article


def test_fill_puts_the_article_of_the_next_word() -> None:
    assert fill("a photo of {a} {}.", "aeroplane") == "a photo of an aeroplane."
    assert fill("a photo of {a} {value} {name}.", name="cat", value="orange") == "a photo of an orange cat."
    assert fill("a photo of {a} {name} with {value}.", name="eagle", value="feathers") == \
        "a photo of an eagle with feathers."
    assert fill("a {}.", "owl") == "a owl."  # only {a} is an article; a template's own words stay


@pytest.mark.parametrize(("phrase", "kind"), [
    ("brown", "quality"), ("light brown", "quality"), ("round", "quality"), ("shiny", "quality"), ("sleek", "quality"),
    ("ceramic", "material"), ("stainless steel", "material"), ("fur", "part"), ("leaves", "part"),
    ("four legs", "part"), ("black stripes", "part"),
])
def test_phrase_kind(phrase: str, kind: str) -> None:
    assert phrase_kind(phrase) == kind


def test_each_kind_has_its_own_form() -> None:
    spec = PromptSpec()
    assert spec.attribute_sentence("dog", "brown") == "a photo of a brown dog."
    assert spec.attribute_sentence("dog", "fur") == "a photo of a dog with fur."
    assert spec.attribute_sentence("mug", "ceramic") == "a photo of a mug made of ceramic."
    assert spec.attribute_sentence("dog", "four legs") == "a photo of a dog with four legs."
    custom = PromptSpec(quality_form="{name}, {value}")
    assert custom.attribute_sentence("apple", "red") == "apple, red"
    with pytest.raises(LmsegError, match="needs '{name}' and '{value}'"):
        PromptSpec(part_form="a photo of {name}")


def test_class_templates_take_articles_but_clips_own_templates_stay_as_published() -> None:
    vocab = vocabulary_from_names(["aeroplane", "dog"])
    own = build_prompts(vocab, None)
    assert own.sentences == ("a photo of an aeroplane.", "a photo of a dog.")
    published = build_prompts(vocab, None, spec=PromptSpec(imagenet_templates=True))
    assert "a photo of a aeroplane." in published.sentences  # open_clip's OPENAI_IMAGENET_TEMPLATES, unchanged
