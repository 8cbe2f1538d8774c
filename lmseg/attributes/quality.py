"""How much an attribute table tells its classes apart, measured on its pandas DataFrame.

Per group (colour, shape, texture):

* distinct sets: how many different phrase sets the classes got (order ignored);
* most common set and its share of the classes (a set shared by many classes says nothing
  about any of them);
* common phrases: phrases that appear for more than half of the classes;
* colour phrases (shape and texture only): the share of phrases that contain a colour word
  (``lexicon.colour_words``): a colour under "texture" is an answer in the wrong group.

The project's targets for the default model (README): no set shared by more than 15% of the
classes (10% before issue 20, which traded some variety for truer words: see
``lmseg.attributes.accuracy``), and at least 95% of shape and texture phrases free of colour
words.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import pandas as pd

from lmseg.attributes.answer import GROUPS, phrase_words
from lmseg.attributes.lexicon import colour_words

MAX_SET_SHARE = 0.15
MIN_COLOUR_FREE = 0.95


@dataclass(frozen=True)
class GroupQuality:
    """The figures of one group (see the module docstring).

    Attributes:
        group: ``colour``, ``shape`` or ``texture``.
        distinct_sets: number of different phrase sets.
        top_set: the most common set (sorted phrases).
        top_share: share of classes with ``top_set``, in [0, 1].
        common_phrases: (phrase, share of classes) for phrases in more than half of the classes.
        colour_phrase_share: share of the group's phrases that contain a colour word, in [0, 1];
            None for the colour group.
    """

    group: str
    distinct_sets: int
    top_set: tuple[str, ...]
    top_share: float
    common_phrases: tuple[tuple[str, float], ...]
    colour_phrase_share: float | None


@dataclass(frozen=True)
class TableQuality:
    """The figures of a whole table: its size, methods and models, and each group's figures."""

    classes: int
    methods: tuple[str, ...]
    models: tuple[str, ...]
    groups: tuple[GroupQuality, ...]

    @property
    def meets_targets(self) -> bool:
        """No set above ``MAX_SET_SHARE`` and shape/texture at least ``MIN_COLOUR_FREE`` colour-free."""
        return all(g.top_share <= MAX_SET_SHARE and (g.colour_phrase_share is None
                                                     or 1 - g.colour_phrase_share >= MIN_COLOUR_FREE)
                   for g in self.groups)


def has_colour_word(phrase: str) -> bool:
    """Whether a clean phrase contains a colour word ("dark wood": yes; "rubber": no)."""
    return any(word in colour_words() for word in phrase_words(phrase))


def group_quality(frame: pd.DataFrame, group: str) -> GroupQuality:
    """The figures of one group of a non-empty attribute DataFrame."""
    sets = Counter(tuple(sorted(phrases)) for phrases in frame[group])
    top_set, top_count = min(sets.items(), key=lambda item: (-item[1], item[0]))  # ties: the first in order
    per_class = Counter(p for phrases in frame[group] for p in set(phrases))
    ranked = sorted(per_class.items(), key=lambda item: (-item[1], item[0]))  # ties in alphabetical order
    common = tuple((p, n / len(frame)) for p, n in ranked if n > len(frame) / 2)
    phrases = [p for phrases in frame[group] for p in phrases]
    colour_share = None if group == "colour" else sum(map(has_colour_word, phrases)) / max(len(phrases), 1)
    return GroupQuality(group, len(sets), top_set, top_count / len(frame), common, colour_share)


def table_report(frame: pd.DataFrame) -> TableQuality:
    """The figures of every group of an attribute DataFrame (``reader.attribute_frame``).

    Raises:
        ValueError: the frame has no rows.
    """
    if frame.empty:
        raise ValueError("the attribute table has no rows")
    return TableQuality(len(frame), tuple(sorted(frame["method"].unique())), tuple(sorted(frame["model"].unique())),
                        tuple(group_quality(frame, g) for g in GROUPS))


def format_report(report: TableQuality) -> str:
    """A short plain-text report for people (one line per group, then the verdict)."""
    lines = [f"attribute quality: {report.classes} classes, method {', '.join(report.methods)}, "
             f"model {', '.join(report.models)}"]
    for g in report.groups:
        line = (f"  {g.group:<8} {g.distinct_sets:>5} distinct sets; most common {{{', '.join(g.top_set)}}} "
                f"for {g.top_share:.1%} of classes")
        if g.colour_phrase_share is not None:
            line += f"; {g.colour_phrase_share:.1%} of phrases name a colour"
        if g.common_phrases:
            line += "; in most classes: " + ", ".join(f"{p} ({s:.0%})" for p, s in g.common_phrases[:5])
        lines.append(line)
    verdict = "meets" if report.meets_targets else "misses"
    lines.append(f"  {verdict} the targets (no set above {MAX_SET_SHARE:.0%} of classes; shape and texture "
                 f">= {MIN_COLOUR_FREE:.0%} colour-free)")
    return "\n".join(lines)
