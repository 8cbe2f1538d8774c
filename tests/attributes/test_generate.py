"""The generation loop: retries, failures, resume rules and interruption.

The backend here is a fault injector: it answers from a script so that malformed answers,
failed requests and interruptions happen exactly where a test needs them. Real answers
are tested with the real model in test_vllm_real.py and test_openai_real.py.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from lmseg.attributes import DEFAULT_INSTRUCTION, AnswerLimits, GenerationJob
from lmseg.attributes.generate import run_generation
from lmseg.attributes.store import read_table, table_to_rows
from lmseg.errors import LmsegError
from lmseg.llm import BackendUnavailable, RequestFailed, SamplingSettings
from lmseg.llm.instruction import ChatMessages, load_instruction
from lmseg.vocab import parse_class_list
from tests.attributes.table_checks import write_before_the_rename

GOOD = json.dumps({"colour": ["grey"], "shape": ["round"], "texture": ["smooth"]})


class ScriptedBackend:
    """Answers with ``script(class_name, attempt)``; records every call."""

    def __init__(self, script: Callable[[str, int], str | RequestFailed], model_name: str = "scripted") -> None:
        self.script = script
        self.model_name = model_name
        self.calls: list[tuple[list[str], int]] = []

    def generate(self, conversations: Sequence[ChatMessages], json_schema: dict[str, Any],
                 settings: SamplingSettings, attempt: int) -> list[str | RequestFailed]:
        names = [c[0]["content"].split('"')[1] for c in conversations]  # the instruction quotes the name first
        self.calls.append((names, attempt))
        return [self.script(name, attempt) for name in names]


def make_job(tmp_path: Path, classes: str = "cat,dog,sofa,lamp,tree", **kwargs: Any) -> GenerationJob:
    return GenerationJob(
        vocabulary=parse_class_list(classes, name="test"),
        instruction=kwargs.pop("instruction", load_instruction(None, default=DEFAULT_INSTRUCTION)),
        settings=kwargs.pop("settings", SamplingSettings()),
        limits=AnswerLimits(),
        output=tmp_path / "table.parquet",
        **kwargs,
    )


def test_all_classes_are_generated_in_chunks_and_saved(tmp_path: Path) -> None:
    backend = ScriptedBackend(lambda name, attempt: GOOD)
    report = run_generation(make_job(tmp_path, chunk_size=2), backend)
    assert (report.generated, report.skipped, report.failed) == (5, 0, {})
    assert [len(names) for names, _ in backend.calls] == [2, 2, 1]
    rows = table_to_rows(read_table(tmp_path / "table.parquet"))
    assert [r.class_name for r in rows] == ["cat", "dog", "sofa", "lamp", "tree"]
    assert all(r.model == "scripted" and r.colour == ("grey",) for r in rows)


def test_malformed_answers_are_retried_with_the_retry_settings(tmp_path: Path) -> None:
    backend = ScriptedBackend(lambda name, attempt: GOOD if name != "dog" or attempt == 2 else "not json")
    report = run_generation(make_job(tmp_path), backend)
    assert report.failed == {} and report.generated == 5
    assert backend.calls[1:] == [(["dog"], 1), (["dog"], 2)]


def test_a_class_that_stays_invalid_is_reported_and_not_written(tmp_path: Path) -> None:
    bad = json.dumps({"colour": ["sofa"], "shape": ["sofa"], "texture": ["sofa"]})
    backend = ScriptedBackend(lambda name, attempt: bad if name == "sofa" else GOOD)
    report = run_generation(make_job(tmp_path), backend)
    assert list(report.failed) == [2]
    name, reason = report.failed[2]
    assert name == "sofa" and "no usable colour" in reason
    indices = read_table(tmp_path / "table.parquet").column("class_index").to_pylist()
    assert indices == [0, 1, 3, 4]
    # A second run retries only the failed class.
    fixed = ScriptedBackend(lambda name, attempt: GOOD)
    again = run_generation(make_job(tmp_path), fixed)
    assert (again.generated, again.skipped, again.failed) == (1, 4, {})
    assert fixed.calls == [(["sofa"], 0)]


def test_failed_requests_are_reported_and_not_retried_as_answers(tmp_path: Path) -> None:
    backend = ScriptedBackend(lambda name, attempt: RequestFailed("APITimeoutError: timed out") if name == "dog" else GOOD)
    report = run_generation(make_job(tmp_path), backend)
    assert report.failed == {1: ("dog", "request failed: APITimeoutError: timed out")}
    assert len(backend.calls) == 1


def test_an_input_the_model_refuses_fails_alone_by_name(tmp_path: Path) -> None:
    """A class name too long for the model (the backend refuses it, as vLLM's too_long check and
    a server's 400 do) is one failure; the other classes are written, even in a chunk of its own."""
    refused = RequestFailed("input too long for the model: it is 1530 tokens, ...", input_refused=True)
    backend = ScriptedBackend(lambda name, attempt: refused if name == "sofa" else GOOD)
    report = run_generation(make_job(tmp_path, chunk_size=1), backend)
    assert report.failed == {2: ("sofa", refused.reason)} and report.generated == 4
    assert read_table(tmp_path / "table.parquet").column("class_name").to_pylist() == ["cat", "dog", "lamp", "tree"]


class LengthLimitedScorer:
    """A scorer (as the vLLM backend) that refuses texts longer than 80 characters: every
    default question about a short name (and about the reference names) fits, one about the
    99-character name below (within the 100-character bound of every vocabulary) does not."""

    model_name = "limited-scorer"

    def too_long(self, texts: Sequence[str], answer_tokens: int) -> list[str | None]:
        return [f"input too long for the model ({len(t)} characters)" if len(t) > 80 else None for t in texts]

    def next_word_logprobs(self, texts: Sequence[str], words: Sequence[str]) -> Any:
        import numpy as np

        assert all(len(t) <= 80 for t in texts), "a refused text was sent"
        return np.full((len(texts), len(words)), -1.0) - np.arange(len(words))


def test_a_class_name_too_long_to_score_fails_alone_by_name(tmp_path: Path) -> None:
    from lmseg.attributes import ScoringMethod

    long_name = "very " * 18 + "long name"
    job = make_job(tmp_path, classes=f"cat,{long_name},dog", scoring=ScoringMethod())
    report = run_generation(job, LengthLimitedScorer())
    assert list(report.failed) == [1] and report.failed[1][0] == long_name
    assert report.failed[1][1].startswith("input too long for the model")
    assert read_table(tmp_path / "table.parquet").column("class_name").to_pylist() == ["cat", "dog"]


def test_backend_down_mid_run_stops_the_run_and_keeps_finished_chunks(tmp_path: Path) -> None:
    def script(name: str, attempt: int) -> str | RequestFailed:
        return GOOD if name in ("cat", "dog") else RequestFailed("APIConnectionError: Connection refused")

    with pytest.raises(BackendUnavailable, match="every request to the model failed.*Connection refused"):
        run_generation(make_job(tmp_path, chunk_size=2), ScriptedBackend(script))
    assert read_table(tmp_path / "table.parquet").column("class_name").to_pylist() == ["cat", "dog"]


def test_interrupt_keeps_every_finished_chunk(tmp_path: Path) -> None:
    def script(name: str, attempt: int) -> str:
        if name == "sofa":
            raise KeyboardInterrupt
        return GOOD

    with pytest.raises(KeyboardInterrupt):
        run_generation(make_job(tmp_path, chunk_size=2), ScriptedBackend(script))
    assert read_table(tmp_path / "table.parquet").column("class_name").to_pylist() == ["cat", "dog"]
    report = run_generation(make_job(tmp_path, chunk_size=2), ScriptedBackend(lambda n, a: GOOD))
    assert (report.generated, report.skipped) == (3, 2)


def test_class_indices_restrict_the_run(tmp_path: Path) -> None:
    backend = ScriptedBackend(lambda name, attempt: GOOD)
    run_generation(make_job(tmp_path, class_indices=[1, 3]), backend)
    assert read_table(tmp_path / "table.parquet").column("class_index").to_pylist() == [1, 3]


def never_called(name: str, attempt: int) -> str:
    raise AssertionError("the backend must not be called")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"classes": "cat,dog,couch,lamp,tree"}, "class 2 = 'sofa'.*class 2 is 'couch'.*vocabulary changed"),
        ({"classes": "cat,dog"}, "has 2 classes.*vocabulary changed"),
        ({"model": "other-model"}, "written by model 'scripted', this run uses 'other-model'"),
        ({"settings": SamplingSettings(temperature=0.5)}, "other sampling settings"),
        ({"instruction": "t.j2"}, "another instruction"),
    ],
)
def test_an_existing_table_made_differently_is_never_extended(tmp_path: Path, change: dict, message: str) -> None:
    run_generation(make_job(tmp_path), ScriptedBackend(lambda n, a: GOOD))
    before = (tmp_path / "table.parquet").read_bytes()
    kwargs: dict[str, Any] = {}
    if "settings" in change:
        kwargs["settings"] = change["settings"]
    if "instruction" in change:
        path = tmp_path / change["instruction"]
        path.write_text('Describe "{{ class_name }}" briefly.')
        kwargs["instruction"] = load_instruction(path, default=DEFAULT_INSTRUCTION)
    job = make_job(tmp_path, classes=change.get("classes", "cat,dog,sofa,lamp,tree"), **kwargs)
    with pytest.raises(LmsegError, match=message):
        run_generation(job, ScriptedBackend(never_called, model_name=change.get("model", "scripted")))
    assert (tmp_path / "table.parquet").read_bytes() == before
    # --overwrite regenerates everything instead.
    overwrite = make_job(tmp_path, classes=change.get("classes", "cat,dog,sofa,lamp,tree"), overwrite=True, **kwargs)
    report = run_generation(overwrite, ScriptedBackend(lambda n, a: GOOD, model_name=change.get("model", "scripted")))
    assert report.skipped == 0 and report.generated == len(overwrite.vocabulary)


def test_overwrite_keeps_the_old_table_until_new_rows_exist(tmp_path: Path) -> None:
    run_generation(make_job(tmp_path), ScriptedBackend(lambda n, a: GOOD))
    before = (tmp_path / "table.parquet").read_bytes()
    report = run_generation(make_job(tmp_path, overwrite=True), ScriptedBackend(lambda n, a: "garbage"))
    assert len(report.failed) == 5
    assert (tmp_path / "table.parquet").read_bytes() == before


def test_a_rerun_with_more_attempts_extends_the_same_table(tmp_path: Path) -> None:
    def script(name: str, attempt: int) -> str:
        return GOOD if name != "dog" or attempt >= 2 else "not json"  # deterministic, like greedy decoding

    first = run_generation(make_job(tmp_path, max_attempts=2), ScriptedBackend(script))
    assert list(first.failed) == [1]
    again = run_generation(make_job(tmp_path, max_attempts=2), ScriptedBackend(script))
    assert list(again.failed) == [1]  # the same tries give the same answers
    more = run_generation(make_job(tmp_path, max_attempts=3), ScriptedBackend(script))
    assert (more.generated, more.skipped, more.failed) == (1, 4, {})


def test_a_save_that_fails_mid_run_is_a_clear_error_and_keeps_the_saved_table(tmp_path: Path, monkeypatch) -> None:
    from lmseg.attributes import generate

    calls = {"n": 0}
    real_write = generate.write_table

    def write_then_fail(table, path) -> None:
        calls["n"] += 1
        if calls["n"] > 1:
            raise OSError(28, "No space left on device")
        real_write(table, path)

    monkeypatch.setattr(generate, "write_table", write_then_fail)
    with pytest.raises(LmsegError, match="cannot save .*No space left on device.*re-running the same command"):
        run_generation(make_job(tmp_path, chunk_size=2), ScriptedBackend(lambda n, a: GOOD))
    assert read_table(tmp_path / "table.parquet").column("class_name").to_pylist() == ["cat", "dog"]


@pytest.mark.parametrize("version", ["1", "2"])
def test_a_table_written_before_the_rename_is_extended_by_a_generate_run(tmp_path: Path, version: str) -> None:
    """A table of schema version 1 or 2 (column ``template_sha256``; version 1 without ``method``)
    is resumed: its rows pass the provenance check (the instruction's sha256 is unchanged) and
    are kept, the missing class is generated, and the table is written back as version 3."""
    import pyarrow.parquet as pq

    path = tmp_path / "table.parquet"
    run_generation(make_job(tmp_path, classes="cat,dog"), ScriptedBackend(lambda n, a: GOOD))
    before = table_to_rows(read_table(path))
    write_before_the_rename(pq.read_table(path), path, version)
    report = run_generation(make_job(tmp_path, classes="cat,dog,sofa"), ScriptedBackend(lambda n, a: GOOD))
    assert (report.generated, report.skipped) == (1, 2)
    rows = table_to_rows(read_table(path))
    assert rows[:2] == before and [r.method for r in rows] == ["generate"] * 3
    assert {r.instruction_sha256 for r in rows} == {load_instruction(None, default=DEFAULT_INSTRUCTION).sha256}
    schema = pq.read_schema(path)
    assert schema.metadata[b"lmseg.schema_version"] == b"3" and "template_sha256" not in schema.names
