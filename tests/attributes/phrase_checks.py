"""Checks of a caption-phrase table that every run must satisfy, locally or on Ray."""

from __future__ import annotations

import re
from collections.abc import Collection
from pathlib import Path

import pyarrow.parquet as pq

from lmseg.captions.phrase_table import SCHEMA, PhraseTable, caption_sha256, part_files, read_phrase_table


def _words(text: str) -> set[str]:
    return set(re.findall(r"[a-z0-9]+(?:'[a-z]+)?", text.lower()))


def check_phrase_table(folder: Path, captions: list[str], failed: Collection[str], max_phrases: int) -> PhraseTable:
    """The table in ``folder`` has the schema, a row for every caption not in ``failed`` (hashes),
    at least one phrase in every row, and only clean phrases: lower case, no edge punctuation, no leading article, at most 4 words,
    each word the caption's own, no duplicates. Returns the table."""
    files = part_files(folder)
    assert files and all(pq.read_schema(f).equals(SCHEMA, check_metadata=False) for f in files)
    table = read_phrase_table(folder)
    assert len(table) == len({caption_sha256(c) for c in captions} - set(failed))
    for caption in captions:
        phrases = table.get(caption)
        if phrases is None:
            assert caption_sha256(caption) in failed
            continue
        assert 1 <= len(phrases) <= max_phrases and len(set(phrases)) == len(phrases)  # a row names something
        for phrase in phrases:
            assert phrase == phrase.lower().strip(" .,;:!?\"'") and phrase
            assert not re.match(r"(a|an|the)\s", phrase) and len(phrase.split()) <= 4
            assert _words(phrase) <= _words(caption), (phrase, caption)
    return table
