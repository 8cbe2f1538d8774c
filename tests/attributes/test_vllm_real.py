"""The vLLM backend with the real SmolLM2-135M-Instruct model, as a user runs it (one engine start)."""

from __future__ import annotations

import time
from pathlib import Path

from lmseg.vocab import get_vocabulary, parse_class_list
from tests.attributes.conftest import run_cli, summary
from tests.attributes.table_checks import check_table


def test_voc20_default_method_completes_quietly_then_resume_is_instant(llm_dir: Path, tmp_path: Path) -> None:
    env = {"LMSEG_CACHE_DIR": str(tmp_path / "cache")}
    done = run_cli("--dataset", "voc20", "--model", str(llm_dir), env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert summary(done.stderr) == (20, 0, [])  # the scored method never fails a class
    table = tmp_path / "cache" / "attributes" / "voc20" / "SmolLM2-135M-Instruct.parquet"
    check_table(table, get_vocabulary("voc20"), "SmolLM2-135M-Instruct", method="scored")
    # The console shows lmseg's progress, summary and table report; vLLM's own output is in the log.
    assert "voc20: 20 classes, model SmolLM2-135M-Instruct, method scored" in done.stderr
    assert "attribute quality: 20 classes, method scored" in done.stderr
    assert "Attempted to load weight" not in done.stderr and "WARNING" not in done.stderr
    assert "Attempted to load weight" not in done.stdout and "WARNING" not in done.stdout
    assert (tmp_path / "cache" / "logs" / "vllm.log").stat().st_size > 0

    # Same command again: nothing to do, so no engine starts.
    start = time.monotonic()
    again = run_cli("--dataset", "voc20", "--model", str(llm_dir), env=env)
    assert again.returncode == 0 and summary(again.stderr) == (0, 20, [])
    assert "starting vLLM" not in again.stderr
    assert time.monotonic() - start < 60


def test_a_class_name_longer_than_the_context_fails_alone(llm_dir: Path, tmp_path: Path) -> None:
    """A class name too long for the context used to stop the whole run (vLLM refuses a whole batch
    when one input is too long); now it is named as failed, the others are written, exit status 1.
    Names have at most 100 characters, so the context is made short (--max-model-len 64, the
    least allowed): 99 digits are 99 tokens (SmolLM2 splits numbers into digits)."""
    long_name = ("0123456789" * 10)[:99]
    output = tmp_path / "t.parquet"
    done = run_cli("--classes", f"cat,{long_name},dog", "--name", "long", "--model", str(llm_dir),
                   "--max-model-len", "64",
                   "--output", str(output), env={"LMSEG_CACHE_DIR": str(tmp_path / "cache")})
    assert done.returncode == 1, done.stderr[-3000:]
    assert summary(done.stderr) == (2, 0, [1])
    assert "failed: class 1 '012345678" in done.stderr and "input too long for the model: it is" in done.stderr
    check_table(output, parse_class_list(f"cat,{long_name},dog", name="long"), "SmolLM2-135M-Instruct",
                method="scored", indices=[0, 2])
