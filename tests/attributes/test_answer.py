"""Validation and cleaning of the LLM's answers."""

from __future__ import annotations

import json

import pytest

from lmseg.attributes.answer import AnswerLimits, InvalidAnswer, parse_answer

LIMITS = AnswerLimits(max_items=3, max_words=4, max_chars=40)


def answer(**groups: object) -> str:
    base = {"colour": ["grey"], "shape": ["round"], "texture": ["fur"]}
    return json.dumps({**base, **groups})


def test_phrases_are_lower_cased_trimmed_deduplicated_and_capped() -> None:
    text = answer(colour=["  Orange ", "orange", "BLACK  stripes.", "white", "brown", "red"])
    attrs = parse_answer(text, ("cat",), LIMITS)
    assert attrs.colour == ("orange", "black stripes", "white")


def test_class_name_repeats_and_overlong_phrases_are_dropped() -> None:
    text = answer(
        shape=["bird", "a bird", "bird-bird-bird", "The Bird!", "small", "a very very very long phrase"],
        texture=["wooden_glass_glass_glass_glass_glass", "feathers"],
    )
    attrs = parse_answer(text, ("bird", "birdie"), LIMITS)
    assert attrs.shape == ("small",)
    assert attrs.texture == ("feathers",)


def test_synonyms_count_as_the_class_name() -> None:
    with pytest.raises(InvalidAnswer, match="no usable shape"):
        parse_answer(answer(shape=["couch", "Sofa"]), ("sofa", "couch"), LIMITS)


def test_a_lone_string_is_read_as_a_one_phrase_list() -> None:
    assert parse_answer(answer(texture="smooth"), ("cat",), LIMITS).texture == ("smooth",)


def test_phrase_over_the_character_limit_is_dropped() -> None:
    long_word = "x" * 41
    with pytest.raises(InvalidAnswer, match="no usable colour"):
        parse_answer(answer(colour=[long_word]), ("cat",), LIMITS)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"colour": ["grey"], "shape": ["round"], "texture": ["fu', "not valid JSON"),
        ("Sure! colour: grey", "not valid JSON"),
        ('["grey"]', "expected a JSON object"),
        ('{"colour": ["grey"], "shape": ["round"]}', "missing group.*texture"),
        (answer(colour={"a": 1}), "'colour' must be a list"),
        (answer(colour=["", "  ", "..."]), "no usable colour"),
        (answer(shape=[1, None, True]), "no usable shape"),
    ],
)
def test_malformed_answers_raise_with_a_reason(text: str, message: str) -> None:
    with pytest.raises(InvalidAnswer, match=message):
        parse_answer(text, ("cat",), LIMITS)


def test_json_schema_bounds_every_group() -> None:
    schema = LIMITS.json_schema()
    assert schema["required"] == ["colour", "shape", "texture"]
    assert schema["additionalProperties"] is False
    for group in ("colour", "shape", "texture"):
        prop = schema["properties"][group]
        assert prop["maxItems"] == 3 and prop["minItems"] == 1
        assert prop["items"]["maxLength"] == 40
