"""Curated word lists (data files in ``lexicons/``): candidates of the scored method, colour words.

See ``lexicons/README.md`` for what each list holds and where its categories come from.
"""

from __future__ import annotations

from functools import cache
from importlib import resources

LEXICONS: tuple[str, ...] = ("colour", "material", "surface", "shape")


@cache
def load_lexicon(name: str) -> tuple[str, ...]:
    """The words of ``lexicons/<name>.txt`` in file order (comments and blank lines skipped).

    Raises:
        ValueError: ``name`` is not a bundled list.
    """
    if name not in (*LEXICONS, "colour_words"):
        raise ValueError(f"no lexicon {name!r}; bundled: {', '.join(LEXICONS)}")
    text = (resources.files("lmseg.attributes") / "lexicons" / f"{name}.txt").read_text(encoding="utf-8")
    words = (line.split("#", 1)[0].strip().lower() for line in text.splitlines())
    return tuple(dict.fromkeys(w for w in words if w))


@cache
def colour_words() -> frozenset[str]:
    """Every word that names a colour: the colour candidates plus ``colour_words.txt``."""
    return frozenset(load_lexicon("colour")) | frozenset(load_lexicon("colour_words"))
