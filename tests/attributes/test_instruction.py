"""The LLM instructions, jinja2 files (lmseg.llm.instruction), and the attribute stage's variables."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from lmseg.attributes import DEFAULT_INSTRUCTION, AnswerLimits, GenerationJob
from lmseg.errors import LmsegError
from lmseg.llm import SamplingSettings
from lmseg.llm.instruction import Instruction, load_instruction
from lmseg.vocab import parse_class_list

REPO = Path(__file__).resolve().parents[2]


def conversation(instruction: Instruction, classes: str = "cat", max_items: int = 5) -> str:
    """The content of the attribute stage's message for class 0 of ``classes``."""
    job = GenerationJob(parse_class_list(classes, name="d"), instruction, SamplingSettings(),
                        AnswerLimits(max_items=max_items), Path("-"))
    messages = job.conversation(0)
    assert len(messages) == 1 and messages[0]["role"] == "user"
    return messages[0]["content"]


def test_default_instruction_is_the_project_file_and_renders_names_and_synonyms() -> None:
    instruction = load_instruction(None, default=DEFAULT_INSTRUCTION)
    source_text = (REPO / "instructions" / "attributes.j2").read_text(encoding="utf-8")
    assert instruction.text == source_text and instruction.source == "instructions/attributes.j2"
    assert instruction.sha256 == hashlib.sha256(source_text.encode()).hexdigest()
    content = conversation(instruction, "sofa;couch", max_items=4)
    assert '"sofa"' in content and "couch" in content and "at most 4" in content


def test_instruction_without_synonyms_does_not_mention_them() -> None:
    assert "also called" not in conversation(load_instruction(None, default=DEFAULT_INSTRUCTION))


def test_undefined_variable_is_an_error_not_an_empty_string(tmp_path: Path) -> None:
    path = tmp_path / "t.j2"
    path.write_text("Describe {{ class_name }} in {{ language }}.")
    with pytest.raises(LmsegError, match="'language' is undefined"):
        conversation(load_instruction(path, default=DEFAULT_INSTRUCTION))


def test_malformed_or_missing_instruction(tmp_path: Path) -> None:
    path = tmp_path / "t.j2"
    path.write_text("{% if class_name %}unclosed")
    with pytest.raises(LmsegError, match=str(path)):
        conversation(load_instruction(path, default=DEFAULT_INSTRUCTION))
    with pytest.raises(LmsegError, match="does not exist"):
        load_instruction(tmp_path / "missing.j2", default=DEFAULT_INSTRUCTION)


def test_changing_the_text_changes_the_hash(tmp_path: Path) -> None:
    a, b = tmp_path / "a.j2", tmp_path / "b.j2"
    a.write_text("Describe {{ class_name }}.")
    b.write_text("Describe {{ class_name }}!")
    assert (load_instruction(a, default=DEFAULT_INSTRUCTION).sha256
            != load_instruction(b, default=DEFAULT_INSTRUCTION).sha256)
