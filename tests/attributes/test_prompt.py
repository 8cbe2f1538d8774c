"""The jinja2 prompt template."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from lmseg.llm.prompt import load_template
from lmseg.errors import LmsegError
from lmseg.vocab import ClassEntry

REPO = Path(__file__).resolve().parents[2]


def test_default_template_is_the_project_file_and_renders_names_and_synonyms() -> None:
    template = load_template()
    source_text = (REPO / "prompts" / "attributes.j2").read_text(encoding="utf-8")
    assert template.text == source_text
    assert template.sha256 == hashlib.sha256(source_text.encode()).hexdigest()
    messages = template.render(ClassEntry(("sofa", "couch")), dataset="d", max_items=4)
    assert len(messages) == 1 and messages[0]["role"] == "user"
    content = messages[0]["content"]
    assert '"sofa"' in content and "couch" in content and "at most 4" in content


def test_template_without_synonyms_does_not_mention_them() -> None:
    content = load_template().render(ClassEntry(("cat",)), dataset="d", max_items=5)[0]["content"]
    assert "also called" not in content


def test_undefined_variable_is_an_error_not_an_empty_string(tmp_path: Path) -> None:
    path = tmp_path / "t.j2"
    path.write_text("Describe {{ class_name }} in {{ language }}.")
    with pytest.raises(LmsegError, match="'language' is undefined"):
        load_template(path).render(ClassEntry(("cat",)), dataset="d", max_items=5)


def test_malformed_or_missing_template(tmp_path: Path) -> None:
    path = tmp_path / "t.j2"
    path.write_text("{% if class_name %}unclosed")
    with pytest.raises(LmsegError, match=str(path)):
        load_template(path).render(ClassEntry(("cat",)), dataset="d", max_items=5)
    with pytest.raises(LmsegError, match="does not exist"):
        load_template(tmp_path / "missing.j2")


def test_changing_the_text_changes_the_hash(tmp_path: Path) -> None:
    a, b = tmp_path / "a.j2", tmp_path / "b.j2"
    a.write_text("Describe {{ class_name }}.")
    b.write_text("Describe {{ class_name }}!")
    assert load_template(a).sha256 != load_template(b).sha256
