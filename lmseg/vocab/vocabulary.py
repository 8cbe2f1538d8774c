"""Vocabularies: ordered class lists with synonyms, built in or given by the user.

A vocabulary is the list of class names that a segmentation is asked about. Class ``i`` of
the vocabulary is class index ``i`` of the label maps. Each class has a primary name (the
first one) and optional synonyms that name the same thing ("sofa, couch").

Text formats:
    file:     one class per line; synonyms separated by ``,`` or ``;``; blank lines and lines
              starting with ``#`` are ignored.
    --classes ``"cat,dog,sofa;couch"``: classes separated by ``,``; synonyms of one class
              separated by ``;``.

A class name or synonym that a user gives (a file, ``--classes``, a Python list, the web
page's box) has at most :data:`MAX_NAME_CHARS` characters: names are drawn into legends and
sent to text encoders, so a megabyte "name" is refused here, in one rule for every front end.
The built-in vocabularies are checked data (ImageNet-21k's WordNet glosses reach 144
characters) and exempt.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from lmseg.errors import LmsegError

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
    return Vocabulary(name, _parse_lines(text.splitlines(), source=f"built-in {name}", seps=",", max_chars=None))


def load_vocabulary_file(path: str | Path, name: str | None = None) -> Vocabulary:
    """Read a user vocabulary: one class per line, synonyms separated by ``,`` or ``;``.

    Args:
        path: a UTF-8 text file.
        name: vocabulary name; defaults to the file's stem, normalised.

    Raises:
        LmsegError: the file is missing, unreadable, empty, lists a class twice, or holds a
            name longer than :data:`MAX_NAME_CHARS`.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise LmsegError(f"vocabulary file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise LmsegError(f"cannot read vocabulary file {path}: {exc}") from None
    return Vocabulary(
        _normalise_name(name or path.stem),
        _parse_lines(text.splitlines(), source=str(path), seps=",;"),
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


def _parse_lines(lines: list[str], *, source: str, seps: str,
                 max_chars: int | None = MAX_NAME_CHARS) -> tuple[ClassEntry, ...]:
    """Turn raw lines into class entries, rejecting empty lists, repeated classes and names
    longer than ``max_chars`` (None: no bound)."""
    entries: list[ClassEntry] = []
    first_seen: dict[tuple[str, ...], int] = {}
    duplicates: list[str] = []
    for line_no, raw in enumerate(lines, start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        names = tuple(dict.fromkeys(n.strip() for n in re.split(f"[{re.escape(seps)}]", line) if n.strip()))
        if not names:
            raise LmsegError(f"{source}, entry {line_no}: {raw!r} has no class name")
        long = [n for n in names if max_chars is not None and len(n) > max_chars]
        if long:
            raise LmsegError(f"{source}, entry {line_no}: the class name {long[0][:30]!r}... is {len(long[0]):,} "
                             f"characters long; class names and synonyms have at most {max_chars} characters")
        key = tuple(n.lower() for n in names)
        if key in first_seen:
            duplicates.append(f"{names[0]!r} (entries {first_seen[key]} and {line_no})")
        else:
            first_seen[key] = line_no
        entries.append(ClassEntry(names))
    if not entries:
        raise LmsegError(f"{source}: the vocabulary is empty (no class names found)")
    if duplicates:
        raise LmsegError(f"{source}: classes listed more than once: {'; '.join(duplicates)}")
    return tuple(entries)
