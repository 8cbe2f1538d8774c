"""Benchmark vocabularies shipped as data, and loading of user vocabularies."""

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
    "parse_class_list",
    "vocabulary_from_names",
]
