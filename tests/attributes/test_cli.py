"""The gen_prompts and attribute_report commands: bad input gets a clear message (exit 2) and
loses nothing; the default model is found from any working folder."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lmseg.attributes.store import read_table
from lmseg.vocab import parse_class_list
from pipelines.attribute_report import main as report_main
from pipelines.gen_prompts import main
from tests.attributes.conftest import REPO


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--dataset", "ade151"], "error: unknown dataset 'ade151'; known vocabularies: ade150, ade847"),
        (["--classes", " , "], "error: --classes: the vocabulary is empty"),
        (["--classes", "cat,dog,cat"], "error: --classes: classes listed more than once: 'cat' (entries 1 and 3)"),
        (["--vocabulary", "/nonexistent/v.txt"], "error: vocabulary file /nonexistent/v.txt does not exist"),
        (["--classes", "cat", "--model", "./no/such/model"], "error: model folder ./no/such/model does not exist"),
        (["--classes", "cat", "--backend", "openai"], "error: --backend openai needs --base-url"),
        (["--classes", "cat", "--shard-index", "0"], "error: give both --shard-index and --num-shards"),
        (["--classes", "cat", "--shard-index", "2", "--num-shards", "2"],
         "error: --shard-index must be in 0..1 for --num-shards 2"),
        (["--dataset", "voc20", "--name", "x"], "error: --name applies to --vocabulary or --classes"),
        (["--classes", "cat", "--instruction", "/nonexistent.j2", "--method", "generate"],
         "error: instruction /nonexistent.j2 does not exist"),
        (["--classes", "cat", "--prompt", "t.j2", "--method", "generate"],
         "error: --prompt was renamed --instruction (the jinja2 file sent to the LLM)"),
        (["--classes", "cat", "--template", "t.j2"],
         "error: --template was renamed --instruction (the jinja2 file sent to the LLM)"),
        (["--classes", "cat", "--instruction", "t.j2"],
         "error: --instruction applies to --method generate only; the scored method"),
        (["--classes", "cat", "--temperature", "0.5", "--max-attempts", "5"],
         "error: --max-attempts, --temperature apply to --method generate only"),
        (["--classes", "cat", "--backend", "openai", "--base-url", "http://127.0.0.1:9", "--concurrency", "0"],
         "error: --concurrency must be >= 1 (got 0)"),
        (["--classes", "cat", "--max-items", "0"], "error: --max-items must be >= 1 (got 0)"),
        (["--classes", "cat", "--max-items", "-3"], "error: --max-items must be >= 1 (got -3)"),
        (["--classes", "cat", "--num-shards", "0", "--shard-index", "0"], "error: --num-shards must be >= 1 (got 0)"),
        (["--classes", "cat", "--num-shards", "0", "--merge-shards"], "error: --num-shards must be >= 1 (got 0)"),
        (["--classes", "cat", "--chunk-size", "0"], "error: --chunk-size must be >= 1 (got 0)"),
        (["--classes", "cat", "--timeout", "nan", "--backend", "openai", "--base-url", "http://127.0.0.1:9"],
         "error: --timeout must be > 0 and at most 86400 seconds (got nan)"),
        (["--classes", "cat", "--timeout", "inf", "--backend", "openai", "--base-url", "http://127.0.0.1:9"],
         "error: --timeout must be > 0 and at most 86400 seconds (got inf)"),
        (["--classes", "cat", "--temperature", "nan"], "error: --temperature must be a finite number >= 0 (got nan)"),
        (["--classes", "cat", "--temperature", "inf", "--method", "generate"],
         "error: --temperature must be a finite number >= 0 (got inf)"),
        (["--classes", "cat", "--retry-temperature=-inf"], "error: --retry-temperature must be a finite number > 0"),
        (["--classes", "cat", "--executor", "ray", "--ray-gpus-per-worker", "nan"],
         "error: --ray-gpus-per-worker must be a finite number >= 0, got nan"),
        (["--classes", "cat", "--gpu-memory-utilization", "1.5"], "error: --gpu-memory-utilization must be in (0, 1]"),
        (["--classes", "cat", "--backend", "openai", "--base-url", "http://127.0.0.1:9", "--method", "scored"],
         "error: --method scored needs the log-probabilities"),
        (["--classes", "cat", "--output", "/proc/lmseg-no/t.parquet"], "error: cannot write output /proc/lmseg-no"),
    ],
)
def test_bad_input_is_a_one_line_error(capsys, cache: Path, args: list[str], message: str) -> None:
    code, _, err = run(capsys, *args)
    assert code == 2
    assert message in err
    assert "Traceback" not in err


def test_missing_default_model_says_to_run_setup(capsys, cache: Path) -> None:
    code, _, err = run(capsys, "--classes", "cat")
    assert code == 2
    assert "the default model is not prepared" in err and "make setup" in err


def model_folder(tmp_path: Path) -> Path:
    """An existing (if useless) model folder, so that runs get as far as the table checks."""
    folder = tmp_path / "some-model"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    return folder


@pytest.mark.parametrize("content", [b"not parquet at all", b"PAR1\x00\x00truncated"])
def test_corrupt_existing_table_is_never_overwritten(capsys, cache: Path, tmp_path: Path, content: bytes) -> None:
    output = tmp_path / "t.parquet"
    output.write_bytes(content)
    code, _, err = run(capsys, "--classes", "cat", "--model", str(model_folder(tmp_path)), "--output", str(output))
    assert code == 2
    assert f"attribute table {output} is corrupt or not a Parquet file" in err and "--overwrite" in err
    assert output.read_bytes() == content


def test_table_of_another_schema_is_never_overwritten(capsys, cache: Path, tmp_path: Path) -> None:
    output = tmp_path / "t.parquet"
    pq.write_table(pa.table({"category": ["cat"]}), output)
    before = output.read_bytes()
    code, _, err = run(capsys, "--classes", "cat", "--model", str(model_folder(tmp_path)), "--output", str(output))
    assert code == 2 and "not an lmseg attribute table" in err
    assert output.read_bytes() == before


def test_dry_run_prints_every_instruction_and_calls_no_model(capsys, cache: Path) -> None:
    code, out, _ = run(capsys, "--dataset", "voc21", "--dry-run", "--model", "/nonexistent/model")
    assert code == 0
    assert out.count("\n## class ") == 21
    assert "## class 0: background" in out and "## class 20: tvmonitor" in out  # the vocabulary's name
    # the natural name, for the LLM (lmseg.vocab.natural)
    assert "[colour] The tv monitor is usually <colour word> | A typical tv monitor is <colour word>" in out
    assert "# method scored" in out
    assert not cache.exists()
    code, out, _ = run(capsys, "--dataset", "voc21", "--dry-run", "--method", "generate")
    assert code == 0 and 'Describe what a typical "tv monitor" looks like' in out
    assert 'a typical "aeroplane"' in out
    assert "# instruction instructions/attributes.j2 (sha256 " in out
    assert not cache.exists()


def test_dry_run_of_one_shard_shows_only_its_classes(capsys, cache: Path) -> None:
    code, out, _ = run(capsys, "--dataset", "voc20", "--dry-run", "--shard-index", "1", "--num-shards", "4")
    assert code == 0
    assert out.count("\n## class ") == 5 and "## class 5: bus" in out and "## class 10:" not in out


def test_merge_takes_no_shard_index(capsys, cache: Path) -> None:
    code, _, err = run(capsys, "--dataset", "voc20", "--merge-shards", "--num-shards", "2", "--shard-index", "0")
    assert code == 2 and "--merge-shards takes --num-shards but not --shard-index" in err


def test_merge_reports_missing_parts(capsys, cache: Path, tmp_path: Path) -> None:
    code, _, err = run(capsys, "--dataset", "voc20", "--merge-shards", "--num-shards", "2",
                       "--model", str(model_folder(tmp_path)))
    assert code == 2 and "cannot merge: missing shard part(s)" in err and "some-model.shard-000-of-002" in err


def test_an_output_folder_is_refused_before_any_model_loads(capsys, cache: Path, tmp_path: Path) -> None:
    code, _, err = run(capsys, "--classes", "cat", "--model", "/nonexistent/model", "--output", str(tmp_path))
    assert code == 2 and f"error: output {tmp_path} is a folder" in err  # not the missing model: output first


def test_shard_parts_and_the_merge_follow_output(capsys, cache: Path, tmp_path: Path) -> None:
    from lmseg.attributes.store import rows_to_table, write_table
    from tests.attributes.test_store import make_row

    vocab = "cat,dog,sofa"
    output = tmp_path / "mine" / "t.parquet"
    rows = [replace(make_row(i, n), dataset=parse_class_list(vocab, name="pets").name)
            for i, n in enumerate(vocab.split(","))]
    write_table(rows_to_table(rows[:1]), tmp_path / "mine" / "t.shard-000-of-002.parquet")
    write_table(rows_to_table(rows[1:]), tmp_path / "mine" / "t.shard-001-of-002.parquet")
    stale = cache / "attributes" / "pets"  # parts in the default place must not be used
    write_table(rows_to_table(rows[:1]), stale / "m.shard-000-of-002.parquet")
    code, _, err = run(capsys, "--classes", vocab, "--name", "pets", "--merge-shards", "--num-shards", "2",
                       "--output", str(output))
    assert code == 0, err
    assert read_table(output).column("class_name").to_pylist() == ["cat", "dog", "sofa"]
    code, out, _ = run(capsys, "--classes", vocab, "--name", "pets", "--dry-run", "--shard-index", "1",
                       "--num-shards", "2", "--output", str(output))
    assert code == 0 and "## class 1: dog" in out


def test_a_hub_model_offline_fails_at_once_naming_the_variable(capsys, cache: Path, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LMSEG_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")  # restored after the test (the run sets it to 1)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))  # an empty Hugging Face cache
    code, _, err = run(capsys, "--classes", "cat", "--model", "some-org/some-model", "--output",
                       str(tmp_path / "t.parquet"))
    assert code == 2
    assert "error: model 'some-org/some-model' is not in the local Hugging Face cache and LMSEG_OFFLINE is set" in err
    assert not (tmp_path / "t.parquet").exists()


def test_blank_class_list_entries_are_named_not_dropped_silently(capsys, caplog, cache: Path) -> None:
    code, out, _ = run(capsys, "--classes", "cat, ,dog", "--dry-run")
    assert code == 0 and out.count("\n## class ") == 2
    assert "--classes: blank entry ignored: 2" in caplog.text  # a warning line on the console


def test_a_synonym_listed_under_two_classes_is_refused_with_its_lines(capsys, cache: Path, tmp_path: Path) -> None:
    vocabulary = tmp_path / "v.txt"
    vocabulary.write_bytes("\ufeffsofa;couch\ncat\ncouch\n".encode())
    code, _, err = run(capsys, "--vocabulary", str(vocabulary), "--dry-run")
    assert code == 2 and f"error: {vocabulary}: names listed under two classes: 'couch' (lines 1 and 3)" in err


def test_the_default_model_is_found_from_any_working_folder(tmp_path: Path, llm_dir: Path) -> None:
    """Cache paths come from the project, not the working folder: run from elsewhere, the default
    model is found (the run then stops at the corrupt --output, before the model loads)."""
    output = tmp_path / "t.parquet"
    output.write_bytes(b"not parquet")
    env = {k: v for k, v in os.environ.items() if k != "LMSEG_CACHE_DIR"} | {"PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-m", "pipelines.gen_prompts", "--classes", "cat", "--output", str(output)],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 2, done.stderr[-2000:]
    assert "is not prepared" not in done.stderr
    assert f"error: attribute table {output} is corrupt" in done.stderr and "--overwrite" in done.stderr


def test_attribute_report_on_a_corrupt_table_gives_advice_it_can_follow(capsys, tmp_path: Path) -> None:
    table = tmp_path / "t.parquet"
    table.write_bytes(b"not parquet")
    code = report_main([str(table)])
    err = capsys.readouterr().err
    assert code == 2 and f"error: attribute table {table} is corrupt or not a Parquet file" in err
    # the advice names the command that writes tables, not an --overwrite flag attribute_report lacks
    assert f"write it again (python -m pipelines.gen_prompts ... --overwrite --output {table})" in err

