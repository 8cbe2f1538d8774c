"""Vocabularies: ordered class lists with synonyms, built in or given by the user.

A vocabulary is the list of class names that a segmentation is asked about. Class ``i`` of
the vocabulary is class index ``i`` of the label maps. Each class has a primary name (the
first one) and optional synonyms that name the same thing ("sofa, couch").

Text formats:
    file:     UTF-8 (a byte-order mark is allowed), one class per line; synonyms separated by
              ``,`` or ``;``; blank lines and lines starting with ``#`` are ignored.
    --classes ``"cat,dog,sofa;couch"``: classes separated by ``,``; synonyms of one class
              separated by ``;``; a blank entry (``"cat, ,dog"``) is ignored with a warning.

In a user's vocabulary (file, ``--classes``, Python list) a name belongs to one class only: a
class listed twice, or a synonym listed under two classes (``sofa;couch`` then ``couch``), is
refused with the lines or entries that repeat it. Built-in vocabularies follow their
benchmarks, whose official names do repeat across classes (ADE's "ground", "screen").

A class name or synonym that a user gives (a file, ``--classes``, a Python list, the web
page's box) has at most :data:`MAX_NAME_CHARS` characters: names are drawn into legends and
sent to text encoders, so a megabyte "name" is refused here, in one rule for every front end.
The built-in vocabularies are checked data (ImageNet-21k's WordNet glosses reach 144
characters) and exempt.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from lmseg.errors import LmsegError
from lmseg.io.files import read_text_file

log = logging.getLogger(__name__)

_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")

#: The longest class name or synonym a user may give, in characters.
MAX_NAME_CHARS = 100


@dataclass(frozen=True)
class ClassEntry:
    """One class of a vocabulary.

    Attributes:
        names: the primary name first, then its synonyms; all non-empty, stripped, unique.
    """

    names: tuple[str, ...]

    @property
    def name(self) -> str:
        """The primary name."""
        return self.names[0]

    @property
    def synonyms(self) -> tuple[str, ...]:
        """The other names of the class (may be empty)."""
        return self.names[1:]


@dataclass(frozen=True)
class Vocabulary:
    """An ordered list of classes with a name that identifies it in caches.

    Attributes:
        name: identifier used in cache paths and in the ``dataset`` column of the attribute
            table (lower case, ``[a-z0-9_.-]``).
        classes: the classes in class-index order.
    """

    name: str
    classes: tuple[ClassEntry, ...]

    def __len__(self) -> int:
        return len(self.classes)

    @property
    def names(self) -> list[str]:
        """Primary names in class-index order."""
        return [c.name for c in self.classes]

    def content_sha256(self) -> str:
        """A hash of the classes and their synonyms (not of the name)."""
        text = "\n".join("\t".join(c.names) for c in self.classes)
        return hashlib.sha256(text.encode()).hexdigest()


def _builtin_dir() -> resources.abc.Traversable:
    return resources.files("lmseg.vocab") / "data"


def builtin_vocabularies() -> list[str]:
    """Names of the vocabularies shipped with lmseg, sorted."""
    return sorted(p.name[:-4] for p in _builtin_dir().iterdir() if p.name.endswith(".txt"))


def get_vocabulary(name: str) -> Vocabulary:
    """Return a built-in vocabulary by name (``ade150``, ``ade847``, ``voc21``, ...).

    Raises:
        LmsegError: the name is unknown; the message lists the known names.
    """
    known = builtin_vocabularies()
    if name not in known:
        raise LmsegError(f"unknown dataset {name!r}; known vocabularies: {', '.join(known)}")
    text = (_builtin_dir() / f"{name}.txt").read_text(encoding="utf-8")
    return Vocabulary(name, _parse_lines(text.splitlines(), source=f"built-in {name}", seps=",", user=False))


def load_vocabulary_file(path: str | Path, name: str | None = None) -> Vocabulary:
    """Read a user vocabulary: one class per line, synonyms separated by ``,`` or ``;``.

    Args:
        path: a UTF-8 text file (a leading byte-order mark is dropped).
        name: vocabulary name; defaults to the file's stem, normalised.

    Raises:
        LmsegError: the file is missing, unreadable, empty, lists a class twice, lists a
            name under two classes (the message gives the lines), or holds a name longer than
            :data:`MAX_NAME_CHARS`.
    """
    path = Path(path)
    text = read_text_file(path, what="vocabulary file", encoding="utf-8-sig")
    return Vocabulary(
        _normalise_name(name or path.stem),
        _parse_lines(text.splitlines(), source=str(path), seps=",;", unit="lines"),
    )


def parse_class_list(text: str, name: str | None = None) -> Vocabulary:
    """Parse a command-line class list such as ``"cat,dog,sofa;couch"``.

    Args:
        text: classes separated by ``,``; synonyms of one class separated by ``;``.
        name: vocabulary name; defaults to ``custom-<first 8 hex digits of its hash>`` so
            that different lists never share a cache entry.

    Raises:
        LmsegError: an empty list, a repeated class, or a name longer than :data:`MAX_NAME_CHARS`.
    """
    return _custom_vocabulary(_parse_lines(text.split(","), source="--classes", seps=";"), name)


def vocabulary_from_names(names: Sequence[str], name: str | None = None) -> Vocabulary:
    """A vocabulary from a list of class names, as given in Python (``["cat", "sofa, couch"]``).

    Args:
        names: one class per item; synonyms of a class follow its name after ``,`` or ``;``.
        name: vocabulary name; defaults to ``custom-<first 8 hex digits of its hash>``.

    Raises:
        LmsegError: the list is empty, holds something other than strings, repeats a class,
            or holds a name longer than :data:`MAX_NAME_CHARS`.
    """
    if isinstance(names, str) or any(not isinstance(n, str) for n in names):
        raise LmsegError("a vocabulary must be a list of class names (strings)")
    return _custom_vocabulary(_parse_lines(list(names), source="class list", seps=",;"), name)


def _custom_vocabulary(classes: tuple[ClassEntry, ...], name: str | None) -> Vocabulary:
    """A user vocabulary named ``name``, or after the hash of its classes."""
    default = f"custom-{Vocabulary('custom', classes).content_sha256()[:8]}"
    return Vocabulary(_normalise_name(name) if name else default, classes)


def _normalise_name(name: str) -> str:
    normalised = re.sub(r"[^a-z0-9_.-]+", "-", name.strip().lower()).strip("-.")
    if not _NAME_RE.match(normalised):
        raise LmsegError(f"cannot make a vocabulary name out of {name!r}; use letters, digits, '_', '-' or '.'")
    return normalised


def _parse_lines(
    lines: list[str], *, source: str, seps: str, user: bool = True, unit: str = "entries"
) -> tuple[ClassEntry, ...]:
    """Turn raw lines into class entries, rejecting empty lists, repeated classes and
    over-long names.

    Args:
        lines: one class per item.
        source: what the lines come from, for messages.
        seps: the characters that separate synonyms.
        user: a user's vocabulary: a name may belong to one class only, has at most
            :data:`MAX_NAME_CHARS` characters, and blank entries of a list are reported (blank
            lines of a file are normal).
        unit: what the positions in messages count (``entries``, ``lines``).
    """
    numbered: list[tuple[int, ClassEntry]] = []
    blank: list[int] = []
    for line_no, raw in enumerate(lines, start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            blank.extend([line_no] if not line else [])
            continue
        names = tuple(dict.fromkeys(n.strip() for n in re.split(f"[{re.escape(seps)}]", line) if n.strip()))
        if not names:
            raise LmsegError(f"{source}, entry {line_no}: {raw!r} has no class name")
        long = [n for n in names if user and len(n) > MAX_NAME_CHARS]
        if long:
            raise LmsegError(f"{source}, entry {line_no}: the class name {long[0][:30]!r}... is {len(long[0]):,} "
                             f"characters long; class names and synonyms have at most {MAX_NAME_CHARS} characters")
        numbered.append((line_no, ClassEntry(names)))
    if not numbered:
        raise LmsegError(f"{source}: the vocabulary is empty (no class names found)")
    if user and blank and unit == "entries":
        log.warning("%s: blank %s ignored: %s", source, "entry" if len(blank) == 1 else "entries",
                    ", ".join(map(str, blank)))
    _check_repeats(numbered, source=source, unit=unit, any_name=user)
    return tuple(entry for _, entry in numbered)


def _check_repeats(numbered: list[tuple[int, ClassEntry]], *, source: str, unit: str, any_name: bool) -> None:
    """Refuse a class listed twice and, with ``any_name``, a name listed under two classes.

    Raises:
        LmsegError: naming each repeat with the two positions (lines or entries) it is at.
    """
    owner: dict[str, tuple[int, tuple[str, ...]]] = {}
    repeated: list[str] = []
    shared: list[str] = []
    for line_no, entry in numbered:
        key = tuple(n.lower() for n in entry.names)
        for name in key if any_name else key[:1]:
            first = owner.setdefault(name, (line_no, key))
            if first[0] == line_no:
                continue
            if first[1] == key:
                repeated.append(f"{entry.name!r} ({unit} {first[0]} and {line_no})")
                break
            if any_name:
                shared.append(f"{name!r} ({unit} {first[0]} and {line_no})")
    problems = ([f"classes listed more than once: {'; '.join(repeated)}"] if repeated else []) + (
        [f"names listed under two classes: {'; '.join(shared)} (a name may belong to one class only)"]
        if shared else [])
    if problems:
        raise LmsegError(f"{source}: {'; '.join(problems)}")
