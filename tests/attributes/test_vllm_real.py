"""The vLLM backend with the real SmolLM2-135M-Instruct model, as a user runs it."""

from __future__ import annotations

import time
from pathlib import Path

from lmseg.vocab import get_vocabulary
from tests.attributes.conftest import run_cli, summary
from tests.attributes.table_checks import check_table


def test_voc20_end_to_end_then_resume_is_instant(llm_dir: Path, tmp_path: Path) -> None:
    env = {"LMSEG_CACHE_DIR": str(tmp_path / "cache")}
    done = run_cli("--dataset", "voc20", "--model", str(llm_dir), env=env)
    generated, skipped, failed = summary(done.stderr)
    assert done.returncode == (1 if failed else 0)
    # A failed class is named and absent from the table; every row present is clean.
    present = [i for i in range(20) if i not in failed]
    assert generated == len(present) >= 18 and skipped == 0, done.stderr[-3000:]
    table = tmp_path / "cache" / "attributes" / "voc20" / "SmolLM2-135M-Instruct.parquet"
    check_table(table, get_vocabulary("voc20"), "SmolLM2-135M-Instruct", indices=present)

    # Same command again: only what failed is generated; with nothing to do, no engine starts.
    start = time.monotonic()
    again = run_cli("--dataset", "voc20", "--model", str(llm_dir), env=env)
    _, skipped_again, _ = summary(again.stderr)
    assert skipped_again == len(present)
    if not failed:
        assert again.returncode == 0
        assert "loading" not in again.stderr
        assert time.monotonic() - start < 20
