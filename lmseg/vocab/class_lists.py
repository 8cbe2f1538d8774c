"""The class lists that published evaluations send as text queries, shipped as data.

A method's published number was measured with *its* class names: Trident's class file for
VOC-21 says "ship" and "table" and replaces "background" by 26 background words; CAT-Seg's
PC-459 list says "airconditioner". The built-in vocabularies (:mod:`lmseg.vocab.vocabulary`)
name the classes for people and reports; the lists here are what a method queries to
reproduce a number. ``data/class_lists.tsv`` records, for every list, its file, the benchmark
it belongs to, its class count, the repository, commit, path and licence it comes from and the
sha256 of the shipped file (byte-identical to the source; ``data/README.md``).

>>> queries = load_class_list("trident/voc21")
>>> queries.classes[4].names
('ship',)

File formats:
    ``trident``: one class per line; the names of one class separated by ``"; "`` (Trident's
        ``get_cls_idx``); commas are part of a name ("building, edifice" is one query).
    ``catseg``: a JSON list, one string per class; names separated by ``", "`` (CAT-Seg's
        ``class_embeddings`` splits them and averages their embeddings).
    ``lines``: one class per line, one name per line (the ``CLASSES`` tuples of
        mmsegmentation that TCL sends, written one per line).

Names are stripped of surrounding spaces ("wood " in Trident's PC-60 file, "bed " in CAT-Seg's
ADE-150): CLIP's tokenizer collapses whitespace and splits punctuation, so the token ids are
the same either way (checked in the tests).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import cache
from importlib import resources

from lmseg.errors import LmsegError
from lmseg.vocab.vocabulary import ClassEntry, Vocabulary

__all__ = ["ClassListSource", "benchmark_class_list", "class_list_sources", "get_class_list_source", "load_class_list"]


@dataclass(frozen=True)
class ClassListSource:
    """One shipped class list and where it comes from (a row of ``data/class_lists.tsv``).

    Attributes:
        id: ``<family>/<benchmark>`` (``trident/voc21``, ``catseg/pc459``, ``tcl/pc59``).
        file: path under ``lmseg/vocab/data``.
        format: ``trident``, ``catseg`` or ``lines`` (see the module docstring).
        benchmark: the dataset registry name whose labels the list follows (``voc21``).
        num_classes: classes in the list (label order).
        repository, commit, source_path: where the file was copied from.
        licence: the source repository's licence (SPDX id).
        sha256: of the shipped file (checked on every load).
    """

    id: str
    file: str
    format: str
    benchmark: str
    num_classes: int
    repository: str
    commit: str
    source_path: str
    licence: str
    sha256: str

    @property
    def url(self) -> str:
        """The source file at its commit."""
        return f"{self.repository}/blob/{self.commit}/{self.source_path}"


def _data_dir() -> resources.abc.Traversable:
    return resources.files("lmseg.vocab") / "data"


@cache
def class_list_sources() -> dict[str, ClassListSource]:
    """Every shipped class list by id, in manifest order."""
    lines = (_data_dir() / "class_lists.tsv").read_text(encoding="utf-8").splitlines()
    rows = [line.split("\t") for line in lines if line and not line.startswith("#")]
    header, body = rows[0], rows[1:]
    sources = {}
    for row in body:
        fields = dict(zip(header, row, strict=True))
        fields["num_classes"] = int(fields["num_classes"])
        sources[fields["id"]] = ClassListSource(**fields)
    return sources


def get_class_list_source(list_id: str) -> ClassListSource:
    """The manifest row of ``list_id``.

    Raises:
        LmsegError: unknown id (the message lists the known ones).
    """
    sources = class_list_sources()
    if list_id not in sources:
        raise LmsegError(f"unknown class list {list_id!r}; known: {', '.join(sources)}")
    return sources[list_id]


def benchmark_class_list(family: str, benchmark: str) -> str:
    """The id of ``family``'s list for ``benchmark`` (``("catseg", "ade150")`` -> ``"catseg/ade150"``).

    Raises:
        LmsegError: ``family`` ships no list for ``benchmark`` (the message lists those it has).
    """
    list_id = f"{family}/{benchmark}"
    if list_id not in class_list_sources():
        known = sorted(s.benchmark for s in class_list_sources().values() if s.id.startswith(f"{family}/"))
        raise LmsegError(f"no {family} class list for benchmark {benchmark!r}; known: {', '.join(known)}")
    return list_id


def _parse(text: str, fmt: str) -> list[tuple[str, ...]]:
    if fmt == "trident":
        entries = [line.split("; ") for line in text.splitlines()]
    elif fmt == "lines":
        entries = [[line] for line in text.splitlines()]
    elif fmt == "catseg":
        entries = [item.split(", ") for item in json.loads(text)]
    else:
        raise LmsegError(f"unknown class list format {fmt!r}")
    return [tuple(name.strip() for name in names) for names in entries]


@cache
def load_class_list(list_id: str) -> Vocabulary:
    """The classes of a shipped list, each with its query names exactly as the source sends them.

    The vocabulary is named ``<benchmark>.<family>`` (``voc21.trident``); class ``i`` is label ``i``.

    Raises:
        LmsegError: unknown id, or the file does not match its recorded sha256 or class count.
    """
    source = get_class_list_source(list_id)
    data = (_data_dir() / source.file).read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if digest != source.sha256:
        raise LmsegError(f"class list {source.file} has sha256 {digest}, expected {source.sha256}: it was changed")
    classes = _parse(data.decode("utf-8"), source.format)
    if len(classes) != source.num_classes or not all(all(names) for names in classes):
        raise LmsegError(f"class list {source.file}: {len(classes)} classes, expected {source.num_classes} named ones")
    family = list_id.split("/", 1)[0]
    return Vocabulary(f"{source.benchmark}.{family}", tuple(ClassEntry(names) for names in classes))
