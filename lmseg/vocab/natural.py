"""Natural names for the LLM: "tv monitor" where a benchmark list writes "tvmonitor".

VOC and Pascal Context list ``tvmonitor``, ``pottedplant`` and ``diningtable``, COCO-Stuff
``playingfield``: names glued for file formats, which a language model reads as unknown words.
Stage 1 (:mod:`lmseg.attributes`) asks the LLM about :func:`natural_entry` of each class; the
vocabulary itself, the rows of the attribute table (``class_name``) and the published class
lists that benchmarks query CLIP with keep their own spellings. The mapping is data:
``data/natural_names.tsv``.
"""

from __future__ import annotations

from functools import cache
from importlib import resources

from lmseg.vocab.vocabulary import ClassEntry

__all__ = ["natural_entry", "natural_name"]


@cache
def _table() -> dict[str, str]:
    text = (resources.files("lmseg.vocab") / "data" / "natural_names.tsv").read_text(encoding="utf-8")
    rows = [line.split("\t") for line in text.splitlines() if line and not line.startswith("#")]
    return {name: natural for name, natural in rows[1:]}  # rows[0] is the header


def natural_name(name: str) -> str:
    """The natural spelling of one class name (the name itself when it has none)."""
    return _table().get(name, name)


def natural_entry(entry: ClassEntry) -> ClassEntry:
    """``entry`` with every name in its natural spelling (repeats dropped, order kept)."""
    return ClassEntry(tuple(dict.fromkeys(natural_name(n) for n in entry.names)))
