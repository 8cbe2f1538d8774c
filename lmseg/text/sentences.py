"""Sentences that read right to CLIP: indefinite articles, and a sentence form per kind of phrase.

Templates are Python format strings. ``{a}`` stands for the indefinite article of the word
that follows it ("a photo of {a} {}." gives "a photo of an aeroplane." and "a photo of a
dog."), chosen by :func:`indefinite_article` from the word's spelling.

Attribute phrases (stage 1 answers) are written in the form that suits what they are:

======== ============================================ ======================================
kind     form (``PromptSpec`` field)                  example
======== ============================================ ======================================
quality  ``quality_form`` "a photo of {a} {value}     "a photo of a brown dog.", "a photo of
         {name}."                                     a round table.", "an orange cat"
material ``material_form`` "a photo of {a} {name}     "a photo of a mug made of ceramic."
         made of {value}."
part     ``part_form`` "a photo of {a} {name} with    "a photo of a dog with fur.", "a photo
         {value}."                                    of a dog with four legs."
======== ============================================ ======================================

The kind of a phrase comes from its last word and the stage-1 word lists
(``lmseg/attributes/lexicons``, the words of the default ``scored`` tables): a colour, shape or
surface word is a quality; a material word is a material, except coverings (:data:`COVERINGS`:
fur, feathers, leaves, ...), which a thing has rather than is made of; any other phrase of
several words is a part ("four legs", "black stripes"), any other single word a quality
("sleek").
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Literal

__all__ = ["COVERINGS", "PhraseKind", "fill", "indefinite_article", "phrase_kind"]

PhraseKind = Literal["quality", "material", "part"]

#: Material words that a thing is covered with or bears rather than made of ("a dog with fur",
#: "a tree with leaves", "a floor with carpet").
COVERINGS = frozenset({"fur", "feathers", "hair", "skin", "leaves", "grass", "flowers", "fruit", "water", "snow",
                       "carpet"})

# Spellings whose sound decides against their first letter ("an hour", "a unicorn", "a one-way sign").
_AN_BEFORE = ("hour", "honest", "honor", "honour", "heir")
_A_BEFORE = ("uni", "use", "usu", "uten", "uti", "eu", "ewe", "one", "once")
_MARK = "\x00"


def indefinite_article(word: str) -> str:
    """``"an"`` before a vowel sound, else ``"a"``, from the spelling of ``word`` (with the
    usual exceptions: "an hour", "a unit", "a European", "a one-way street")."""
    w = word.lower()
    if w.startswith(_AN_BEFORE):
        return "an"
    if w.startswith(_A_BEFORE):
        return "a"
    return "an" if w[:1] in ("a", "e", "i", "o", "u") else "a"


def fill(template: str, *args: str, **fields: str) -> str:
    """``template.format(*args, **fields)`` with each ``{a}`` the article of the word after it."""
    text = template.format(*args, a=_MARK, **fields)
    return re.sub(f"{_MARK}( +)(\\S+)", lambda m: indefinite_article(m.group(2)) + m.group(1) + m.group(2), text)


@lru_cache(maxsize=1)
def _lexicon_words() -> tuple[frozenset[str], frozenset[str]]:
    """(quality words, material words) of the stage-1 word lists."""
    from lmseg.attributes.lexicon import load_lexicon

    qualities = frozenset(w for name in ("colour", "colour_words", "shape", "surface") for w in load_lexicon(name))
    return qualities, frozenset(load_lexicon("material"))


def phrase_kind(phrase: str) -> PhraseKind:
    """How an attribute phrase is written (see the module docstring)."""
    words = phrase.lower().split()
    qualities, materials = _lexicon_words()
    last = words[-1] if words else ""
    if last in COVERINGS:
        return "part"
    if last in materials:
        return "material"
    if last in qualities or len(words) <= 1:
        return "quality"
    return "part"
