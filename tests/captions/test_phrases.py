"""Noun phrases: the rule-based parser on fixed cases, the validation of LLM answers, and the
resumable, sharded caption-phrase table (the LLM is replaced here only to inject faults:
malformed answers and dropped requests; tests/attributes/test_captions_vllm.py runs the real one)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from lmseg.captions.llm import DEFAULT_INSTRUCTION, CaptionJob, PhraseLimits, parse_phrases, run_caption_parsing
from lmseg.captions.phrase_table import caption_sha256, read_phrase_table, shard_of
from lmseg.captions.phrases import rule_phrases
from lmseg.errors import LmsegError
from lmseg.llm.backends.base import RequestFailed, SamplingSettings
from lmseg.llm.instruction import load_instruction
from lmseg.llm.jobs import InvalidAnswer

RULE_CASES = {
    "Closeup of bins of food that include broccoli and bread.": ("bins", "food", "broccoli", "bread"),
    "A meal is presented in brightly colored plastic trays.": ("meal", "plastic trays"),
    "A bunch of trays that have different food.": ("trays", "food"),
    "A giraffe eating food from the top of the tree.": ("giraffe", "food", "tree"),
    "Two giraffes standing in a tree filled area.": ("giraffes", "tree", "area"),
    "A man in a red shirt rides a horse on the beach": ("man", "red shirt", "horse", "beach"),
    "The man's hat is on the table": ("hat", "table"),
    "Colorful dishes holding meat, vegetables, fruit, and bread.": ("colorful dishes", "meat", "vegetables", "fruit",
                                                                  "bread"),
    "It is very nice.": (),  # no noun
    "   ": (),
}


@pytest.mark.parametrize("caption", list(RULE_CASES))
def test_rule_parser_fixed_cases(caption: str) -> None:
    assert rule_phrases(caption) == RULE_CASES[caption]


def test_rule_parser_limits() -> None:
    assert rule_phrases("cats, dogs, birds, fish and a cow", max_phrases=2) == ("cats", "dogs")
    assert rule_phrases("a big old red wooden farm barn", max_words=2) == ("farm barn",)


def test_llm_answers_are_validated_and_cleaned() -> None:
    caption = "A giraffe standing next to a forest filled with trees."
    limits = PhraseLimits(max_phrases=3)
    got = parse_phrases('{"phrases": ["Giraffe", "the forest.", "giraffe", "trees", "elephant", "tall green '
                        'trees in a forest"]}', caption, limits)
    assert got == ("giraffe", "forest", "trees")  # invented and over-long phrases dropped, duplicates too
    for bad in ('{"phrases": ["zebra"]}', "giraffe, forest", '["giraffe"]', '{"items": ["giraffe"]}'):
        with pytest.raises(InvalidAnswer):
            parse_phrases(bad, caption, limits)
    # an empty list trains nothing: invalid (retried, then failed: training parses the caption by rules)
    with pytest.raises(InvalidAnswer, match="no phrase: the model answered an empty list"):
        parse_phrases('{"phrases": []}', caption, limits)


class FaultyBackend:
    """Answers by copying the caption's rule phrases, after injected faults: the first attempt of
    every second caption is malformed, and requests whose caption contains "drop" always fail."""

    model_name = "fault-injector"

    def __init__(self) -> None:
        self.calls: list[int] = []

    def generate(self, conversations: Sequence[list[dict[str, str]]], json_schema: dict[str, Any],
                 settings: SamplingSettings, attempt: int) -> list[str | RequestFailed]:
        assert json_schema["required"] == ["phrases"]
        self.calls.append(len(conversations))
        out: list[str | RequestFailed] = []
        for i, conversation in enumerate(conversations):
            caption = conversation[0]["content"].split('Caption: "', 1)[1].split('"\n', 1)[0]
            if "drop" in caption:
                out.append(RequestFailed("connection reset"))
            elif attempt == 0 and i % 2:
                out.append('{"phrases": ["not in the caption"]}')
            else:
                out.append(json.dumps({"phrases": list(rule_phrases(caption))}))
        return out


def _job(out: Path, **kw: Any) -> CaptionJob:
    return CaptionJob(load_instruction(None, default=DEFAULT_INSTRUCTION), SamplingSettings(), PhraseLimits(), out,
                      chunk_size=3, **kw)


def test_caption_table_retries_resumes_and_shards(tmp_path: Path) -> None:
    captions = [f"A red car parked next to tree {i}." for i in range(7)] + ["A dog", "A dog", "drop this"]
    backend = FaultyBackend()
    report = run_caption_parsing(iter(captions), _job(tmp_path / "t"), backend)
    assert report.generated == 8
    dropped = (caption_sha256("drop this"), "drop this")
    assert report.failed == {dropped: ("drop this", "request failed: connection reset")}
    table = read_phrase_table(tmp_path / "t")
    assert table.get("A dog") == ("dog",) and table.get(captions[0]) == ("red car", "tree")
    assert len(list((tmp_path / "t").glob("*.parquet"))) == 3  # one file per finished chunk

    again = run_caption_parsing(iter(captions[:-1]), _job(tmp_path / "t"), FaultyBackend())
    assert again.generated == 0 and again.skipped == 8  # resumed: nothing done twice

    parts = [run_caption_parsing(iter(captions[:-1]), _job(tmp_path / "s", shard=(k, 2)), FaultyBackend())
             for k in (0, 1)]
    assert sum(p.generated for p in parts) == 8
    merged = read_phrase_table(tmp_path / "s")
    assert merged.as_dict() == table.as_dict() and len(table) == 8
    assert {shard_of(caption_sha256(c), 2) for c in captions[:3]} <= {0, 1}

    class Other(FaultyBackend):
        model_name = "another-model"

    with pytest.raises(LmsegError, match="made another way"):
        run_caption_parsing(iter(captions), _job(tmp_path / "t"), Other())


def test_a_folder_written_before_the_column_rename_is_read_and_resumed(tmp_path: Path) -> None:
    """Schema version 1 named ``instruction_sha256`` ``template_sha256``: such files are read with
    the new name (same provenance: the instruction's text, hence its sha256, is unchanged), a
    resumed run skips their captions and adds files of version 2 beside them."""
    captions = [f"A red car parked next to tree {i}." for i in range(4)]
    run_caption_parsing(iter(captions[:3]), _job(tmp_path / "t"), FaultyBackend())
    (old,) = (tmp_path / "t").glob("*.parquet")
    table = pq.read_table(old)
    names = ["template_sha256" if n == "instruction_sha256" else n for n in table.column_names]
    pq.write_table(table.rename_columns(names).replace_schema_metadata({b"lmseg.caption_phrases_version": b"1"}), old)
    before = read_phrase_table(tmp_path / "t")
    assert len(before) == 3 and before.provenance == {
        (FaultyBackend.model_name, _job(tmp_path).instruction.sha256, _job(tmp_path).settings_json())}
    again = run_caption_parsing(iter(captions), _job(tmp_path / "t"), FaultyBackend())
    assert (again.generated, again.skipped) == (1, 3)
    after = read_phrase_table(tmp_path / "t")
    assert len(after) == 4 and after.provenance == before.provenance
    versions = sorted(pq.read_schema(f).metadata[b"lmseg.caption_phrases_version"]
                      for f in (tmp_path / "t").glob("*.parquet"))
    assert versions == [b"1", b"2"]
