"""Noun phrases of a caption: the shared output form, and the fast deterministic parser.

Both parsers (this rule-based one and the LLM stage, :mod:`lmseg.captions.llm`) return the
same thing: a tuple of clean phrases (lower case, single spaces, no edge punctuation, at most
``max_words`` words), unique, in caption order, at most ``max_phrases``.

Why rules and not an NLP library: spaCy's English models are not published on the package
registry (only third-party re-uploads are), and NLTK's tagger downloads its data at run time,
which CI cannot do. The rules below are a closed-class chunker, the classic baseline:

1. lower-case and split into words; punctuation ends a phrase;
2. a word of a closed class ends a phrase: determiners, numbers and quantifiers, pronouns,
   prepositions, conjunctions, auxiliaries and frequent caption verbs, adverbs (``-ly``
   words), verb forms in ``-ing`` / ``-ed`` (except listed nouns such as "building");
3. every remaining run of words is a phrase; non-visual modifiers ("different", "other") are
   dropped from its front, it keeps its last ``max_words`` words (the head is last in English
   noun phrases);
4. a phrase whose head is a container word ("bunch", "group", "top", "picture") is dropped:
   in "a bunch of trays" or "the top of a tree" the object is the phrase after "of"; so is
   a lone predicate adjective from a short list ("it is nice").
"""

from __future__ import annotations

import re

_EDGE_PUNCT = " \t\n\"'`.,;:!?()[]{}*-_/\\"

_CLOSED_CLASS = frozenset("""
a an the this that these those some any each every no all both either neither another such
one two three four five six seven eight nine ten eleven twelve dozen dozens hundreds many much several few
lot lots plenty
i me my mine you your he him his she her hers it its we us our they them their theirs there here
who whom whose which what where when while why how
of in on at to into onto from with without by near next beside besides behind above below under
underneath over across along around through toward towards inside outside against between among
up down out off away back about after before during for like than as via atop upon within
and or but nor so yet then also if because though although
is are was were be been being am has have had having do does did can could will would shall should
may might must not
sits sit sat stands stand stood holds hold held eats eat ate looks look rides ride rode walks walk
lays lay lies lie lying sitting standing walking riding eating holding looking laying flying playing
waits wait plays play flies fly grazes graze carries carry uses use shows show wears wear
include includes contain contains make makes made get gets got take takes took put puts see seen
very too just only still even really quite almost together outdoors indoors nearby
closeup close
""".split())

_NON_VISUAL_MODIFIERS = frozenset("different other various assorted certain same similar own".split())

_CONTAINER_HEADS = frozenset("""
bunch bunches group groups couple pair pairs set lot lots kind kinds type types sort variety number piece pieces
top side front middle edge corner end back bottom center centre view picture photo photograph
image shot scene closeup close-up
""".split())

_LONE_ADJECTIVES = frozenset("""
nice good great big small large little tiny huge beautiful pretty cute old new young empty full open
closed clean dirty wet dry busy ready able happy sunny cloudy dark bright
""".split())

_ING_NOUNS = frozenset("""
building buildings ceiling ceilings painting paintings clothing icing frosting topping toppings
filling railing railings awning awnings wedding stuffing dumpling dumplings pudding king ring
rings string strings wing wings thing things morning evening ping lightning sibling siblings
""".split())

_LY_NOUNS = frozenset("family lily belly jelly butterfly holly trolley bully rally ally fly".split())
_ED_NOUNS = frozenset("bed shed sled bread seed weed reed shred".split())


def clean_phrase(phrase: str) -> str:
    """Lower case, underscores as spaces, whitespace collapsed, edge punctuation trimmed."""
    return re.sub(r"\s+", " ", phrase.lower().replace("_", " ")).strip(_EDGE_PUNCT)


def _ends_phrase(word: str) -> bool:
    """Whether ``word`` (lower case) belongs to a closed class or is a verb form / adverb."""
    if word in _CLOSED_CLASS or word.isdigit():
        return True
    if word.endswith("ing") and len(word) > 4 and word not in _ING_NOUNS:
        return True
    if word.endswith("ly") and len(word) > 4 and word not in _LY_NOUNS:
        return True
    return word.endswith("ed") and len(word) > 4 and word not in _ED_NOUNS


def _finish(run: list[str], max_words: int) -> str | None:
    while run and run[0] in _NON_VISUAL_MODIFIERS:
        run = run[1:]
    if not run or run[-1] in _CONTAINER_HEADS or (len(run) == 1 and run[0] in _LONE_ADJECTIVES):
        return None
    return " ".join(run[-max_words:])


def rule_phrases(caption: str, *, max_phrases: int = 8, max_words: int = 4) -> tuple[str, ...]:
    """The noun phrases of ``caption`` by the rules of the module docstring.

    >>> rule_phrases("A giraffe standing next to a forest filled with trees.")
    ('giraffe', 'forest', 'trees')
    """
    phrases: list[str] = []
    for chunk in re.split(r"[^\w'\- ]+", caption.lower()):
        run: list[str] = []
        for word in re.findall(r"[a-z0-9]+(?:['-][a-z0-9]+)*", chunk) + [""]:
            if word and not _ends_phrase(word) and not word.endswith("'s"):
                run.append(word)
                continue
            phrase = _finish(run, max_words)
            if phrase and phrase not in phrases:
                phrases.append(phrase)
            run = []
    return tuple(phrases[:max_phrases])
