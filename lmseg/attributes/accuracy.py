"""How often a table's attributes are true, judged against a hand-written truth set.

The truth set (``truth/attribute_truth.csv``, provenance in ``truth/README.md``) gives for
each class the colours, materials, surface qualities and shapes that are acceptable, or
``-`` where the group is not judged (any colour is plausible for a car). It is split into a
``dev`` half, for choosing methods and settings, and a ``test`` half, only for reporting.

Per judged group, over the classes of the chosen split that have a truth for it:

* **kept**: share of classes with at least one acceptable phrase among those the table kept;
* **first**: share of classes whose first phrase is acceptable;
* **precision**: share of all kept phrases that are acceptable (keeping more words raises
  "kept" and may lower this);
* **words**: mean number of phrases kept.

Groups of the truth and the table they are compared with:

============  ===============  =====================================
figure        table group      acceptable words
============  ===============  =====================================
colour        ``colour``       ``colours``
material      ``texture``      ``materials``
texture       ``texture``      ``materials`` and ``surfaces``
shape         ``shape``        ``shapes``
============  ===============  =====================================

A phrase is acceptable if one of its words, after :func:`normalise_word` (``gray`` ->
``grey``, ``golden`` -> ``gold``, ``wooden`` -> ``wood``, ...), is acceptable, so free
phrases of the ``generate`` method ("dark wood") are judged too. The truth lists only
the canonical spellings.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import pandas as pd

from lmseg.attributes.answer import clean_phrase, phrase_words
from lmseg.errors import LmsegError
from lmseg.io.files import read_text_file

SPLITS: tuple[str, ...] = ("dev", "test")
TRUTH_FIELDS: tuple[str, ...] = ("colours", "materials", "surfaces", "shapes")
COLUMNS: tuple[str, ...] = ("name", "split", "sources", *TRUTH_FIELDS)

# figure -> (table group, truth fields whose words are acceptable)
FIGURES: dict[str, tuple[str, tuple[str, ...]]] = {
    "colour": ("colour", ("colours",)),
    "material": ("texture", ("materials",)),
    "texture": ("texture", ("materials", "surfaces")),
    "shape": ("shape", ("shapes",)),
}

# Targets of the default model on the test half (issue 20): figure -> (kept, first); None: no target.
TRUTH_TARGETS: dict[str, tuple[float | None, float | None]] = {
    "colour": (0.80, 0.60),
    "material": (0.85, None),
}

# Spelling variants and word forms mapped to the one spelling the truth set uses.
WORD_FORMS: dict[str, str] = {
    "gray": "grey", "golden": "gold", "silvery": "silver", "aluminium": "aluminum", "wooden": "wood",
    "woollen": "wool", "woolen": "wool", "leaf": "leaves", "feather": "feathers", "hairs": "hair",
    "stones": "stone", "rocks": "rock", "bricks": "brick", "tiles": "tile",
}

_WORD_RE = re.compile(r"^[a-z][a-z-]*$")
NOT_JUDGED = "-"


def default_truth_path() -> Path:
    """The bundled truth set, ``lmseg/attributes/truth/attribute_truth.csv``."""
    return Path(str(resources.files("lmseg.attributes") / "truth" / "attribute_truth.csv"))


def normalise_word(word: str) -> str:
    """One word in the truth set's spelling: lower case, :data:`WORD_FORMS` applied."""
    word = word.lower()
    return WORD_FORMS.get(word, word)


@dataclass(frozen=True)
class TruthEntry:
    """The acceptable attributes of one class.

    Attributes:
        name: the class name as in the built-in vocabularies (matched with a table's ``class_name``).
        split: ``dev`` or ``test``.
        sources: the built-in vocabularies that have this name as a class's primary name.
        acceptable: truth field (``colours``, ``materials``, ``surfaces``, ``shapes``) -> its
            acceptable words, or None where the field is not judged.
    """

    name: str
    split: str
    sources: tuple[str, ...]
    acceptable: Mapping[str, frozenset[str] | None]

    def words_for(self, figure: str) -> frozenset[str] | None:
        """The acceptable words of a figure (``colour``, ``material``, ...); None if none of its fields is judged."""
        fields = [self.acceptable[f] for f in FIGURES[figure][1]]
        judged = [words for words in fields if words is not None]
        return frozenset().union(*judged) if judged else None


@dataclass(frozen=True)
class TruthSet:
    """The entries of a truth file, in file order, and where they came from."""

    source: str
    entries: tuple[TruthEntry, ...]

    def select(self, split: str | None) -> tuple[TruthEntry, ...]:
        """The entries of one split, or all of them for None."""
        return tuple(e for e in self.entries if split is None or e.split == split)


def load_truth(path: str | Path | None = None) -> TruthSet:
    """Read and check a truth file (CSV; ``#`` lines are comments; see the module docstring).

    Args:
        path: the file; None for the bundled truth set.

    Raises:
        LmsegError: the file is missing or unreadable, or malformed: a header other than
            ``name,split,sources,colours,materials,surfaces,shapes``, a row with another number
            of fields, an empty or repeated name, a split other than dev/test, a list that is
            empty or holds something other than lower-case words, or no rows at all. The
            message names the file and line.
    """
    file = default_truth_path() if path is None else Path(path)
    text = read_text_file(file, what="truth file")
    lines = [(number, line) for number, line in enumerate(text.splitlines(), 1)
             if line.strip() and not line.lstrip().startswith("#")]
    if not lines:
        raise LmsegError(f"truth file {file} has no header and no rows")
    records = list(csv.reader(io.StringIO("\n".join(line for _, line in lines))))
    header = [cell.strip() for cell in records[0]]
    if tuple(header) != COLUMNS:
        raise LmsegError(f"truth file {file}, line {lines[0][0]}: the header must be {','.join(COLUMNS)} "
                         f"(got {','.join(header)})")
    entries: list[TruthEntry] = []
    seen: set[str] = set()
    for (number, _), record in zip(lines[1:], records[1:], strict=True):
        entry = _parse_entry(record, f"truth file {file}, line {number}")
        if entry.name in seen:
            raise LmsegError(f"truth file {file}, line {number}: class {entry.name!r} is listed twice")
        seen.add(entry.name)
        entries.append(entry)
    if not entries:
        raise LmsegError(f"truth file {file} has a header but no classes")
    return TruthSet(str(file), tuple(entries))


def _parse_entry(record: list[str], where: str) -> TruthEntry:
    """One CSV record as a :class:`TruthEntry`; ``where`` names the file and line in errors."""
    if len(record) != len(COLUMNS):
        raise LmsegError(f"{where}: expected {len(COLUMNS)} comma-separated fields ({','.join(COLUMNS)}), "
                         f"got {len(record)}")
    name, split, sources, *fields = (cell.strip() for cell in record)
    if not name:
        raise LmsegError(f"{where}: the class name is empty")
    if split not in SPLITS:
        raise LmsegError(f"{where}: split must be one of {', '.join(SPLITS)} (got {split!r})")
    acceptable: dict[str, frozenset[str] | None] = {}
    for field, value in zip(TRUTH_FIELDS, fields, strict=True):
        if value == NOT_JUDGED:
            acceptable[field] = None
            continue
        words = value.split()
        bad = [w for w in words if not _WORD_RE.match(w)]
        if not words or bad:
            raise LmsegError(f"{where}: {field} of {name!r} must be lower-case words separated by spaces, or "
                             f"'{NOT_JUDGED}' (got {value!r})")
        acceptable[field] = frozenset(normalise_word(w) for w in words)
    return TruthEntry(name, split, tuple(sources.split()), acceptable)


def check_truth_classes(entries: Iterable[TruthEntry], class_names: Iterable[str], where: str) -> None:
    """Make sure every entry's class is among ``class_names`` (before any model loads).

    Raises:
        LmsegError: some are not; the message names up to ten of them and ``where``.
    """
    known = set(class_names)
    missing = [e.name for e in entries if e.name not in known]
    if missing:
        shown = ", ".join(repr(n) for n in missing[:10]) + (f" and {len(missing) - 10} more" if len(missing) > 10 else "")
        raise LmsegError(f"the truth set names {len(missing)} class(es) that are not in {where}: {shown}")


def phrase_is_acceptable(phrase: str, acceptable: frozenset[str]) -> bool:
    """Whether one of a phrase's words (normalised) is acceptable ("dark wood" for ``wood``: yes)."""
    return any(normalise_word(w) in acceptable for w in phrase_words(clean_phrase(phrase)))


@dataclass(frozen=True)
class FigureAccuracy:
    """How true one figure of a table is (see the module docstring).

    Attributes:
        figure: ``colour``, ``material``, ``texture`` or ``shape``.
        judged: classes with a truth for this figure.
        kept: share of them with an acceptable phrase among those kept, in [0, 1].
        first: share of them whose first phrase is acceptable.
        precision: share of their kept phrases that are acceptable.
        words: mean number of phrases kept per class.
    """

    figure: str
    judged: int
    kept: float
    first: float
    precision: float
    words: float


@dataclass(frozen=True)
class TruthReport:
    """The truth figures of a table on one split (None: both halves)."""

    split: str | None
    classes: int
    figures: tuple[FigureAccuracy, ...]

    def figure(self, name: str) -> FigureAccuracy:
        """The figure called ``name`` (``colour``, ``material``, ``texture``, ``shape``)."""
        return next(f for f in self.figures if f.figure == name)

    @property
    def meets_targets(self) -> bool:
        """Whether every figure with a target (:data:`TRUTH_TARGETS`) reaches it."""
        for name, (kept, first) in TRUTH_TARGETS.items():
            figure = self.figure(name)
            if (kept is not None and figure.kept < kept) or (first is not None and figure.first < first):
                return False
        return True


def figure_accuracy(figure: str, phrases: list[tuple[str, ...]], acceptable: list[frozenset[str] | None]) -> FigureAccuracy:
    """The figure over classes given as their kept phrases and acceptable words (None: not judged)."""
    pairs = [(p, a) for p, a in zip(phrases, acceptable, strict=True) if a is not None]
    if not pairs:
        return FigureAccuracy(figure, 0, 0.0, 0.0, 0.0, 0.0)
    hits = [[phrase_is_acceptable(phrase, a) for phrase in p] for p, a in pairs]
    kept_words = sum(len(h) for h in hits)
    return FigureAccuracy(
        figure, len(pairs),
        kept=sum(any(h) for h in hits) / len(pairs),
        first=sum(bool(h) and h[0] for h in hits) / len(pairs),
        precision=sum(sum(h) for h in hits) / max(kept_words, 1),
        words=kept_words / len(pairs),
    )


def truth_report(frame: pd.DataFrame, truth: TruthSet, split: str | None = None, where: str = "the table"
                 ) -> TruthReport:
    """Judge an attribute DataFrame (``reader.attribute_frame``) against a truth set.

    Each entry of the split is matched with the table's row of the same ``class_name`` (the
    first such row where a vocabulary repeats a name, as ade847 does for 'pipe' and 'basket').
    ``where`` names the table in errors.

    Raises:
        LmsegError: ``split`` is not dev/test/None, or an entry's class is not in the table.
    """
    if split is not None and split not in SPLITS:
        raise LmsegError(f"split must be one of {', '.join(SPLITS)} (got {split!r})")
    entries = truth.select(split)
    check_truth_classes(entries, frame["class_name"], where)
    rows = frame.sort_values("class_index").drop_duplicates("class_name").set_index("class_name")
    figures = []
    for name, (group, _) in FIGURES.items():
        phrases = [tuple(rows.at[e.name, group]) for e in entries]
        figures.append(figure_accuracy(name, phrases, [e.words_for(name) for e in entries]))
    return TruthReport(split, len(entries), tuple(figures))


def format_truth_report(report: TruthReport, source: str = "") -> str:
    """Plain-text lines for people: one per figure, then the verdict on the targets."""
    which = "both halves" if report.split is None else f"the {report.split} half"
    lines = [f"truth: {report.classes} classes of {which}" + (f" of {source}" if source else "")]
    for f in report.figures:
        if not f.judged:
            lines.append(f"  {f.figure:<8} no class judged")
            continue
        kept, first = TRUTH_TARGETS.get(f.figure, (None, None))
        goal = ", ".join(g for g in (f"kept >= {kept:.0%}" if kept else "", f"first >= {first:.0%}" if first else "") if g)
        lines.append(f"  {f.figure:<8} {f.judged:>4} judged; acceptable among kept {f.kept:6.1%}, first {f.first:6.1%}; "
                     f"{f.precision:6.1%} of {f.words:.2f} kept words per class acceptable"
                     + (f"  (target {goal})" if goal else ""))
    verdict = "meets" if report.meets_targets else "misses"
    lines.append(f"  {verdict} the truth targets")
    return "\n".join(lines)
