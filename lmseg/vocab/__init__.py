"""Benchmark vocabularies shipped as data, loading of user vocabularies, natural names for the LLM."""

from lmseg.vocab.natural import natural_entry, natural_name
from lmseg.vocab.vocabulary import (
    ClassEntry,
    Vocabulary,
    builtin_vocabularies,
    get_vocabulary,
    load_vocabulary_file,
    parse_class_list,
    vocabulary_from_names,
)

__all__ = [
    "ClassEntry",
    "Vocabulary",
    "builtin_vocabularies",
    "get_vocabulary",
    "load_vocabulary_file",
    "natural_entry",
    "natural_name",
    "parse_class_list",
    "vocabulary_from_names",
]
