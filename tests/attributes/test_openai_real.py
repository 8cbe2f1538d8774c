"""The OpenAI-compatible backend against a real vLLM server (SmolLM2) on loopback.

The server is the session's one (``server_url`` in conftest.py). Besides a sharded run of
six VOC-20 classes merged into one table, this is where durability is shown for real: a run killed with
SIGKILL mid-way keeps its finished classes, and re-running generates only the rest.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

from lmseg.attributes.store import read_table, table_to_rows
from lmseg.vocab import get_vocabulary, parse_class_list
from tests.attributes.conftest import REPO, run_cli, summary
from tests.attributes.conftest import SERVED_MODEL as MODEL
from tests.attributes.table_checks import check_table


def openai_args(url: str, output: Path) -> list[str]:
    return ["--backend", "openai", "--base-url", url, "--output", str(output)]


def test_kill_9_mid_run_keeps_finished_classes_and_resume_does_the_rest(server_url: str, tmp_path: Path) -> None:
    classes = ",".join(get_vocabulary("ade150").names[:8])  # four chunks of two: killed after the first
    output = tmp_path / "t.parquet"
    args = ["--classes", classes, "--name", "kill-test", "--chunk-size", "2", "--concurrency", "2",
            *openai_args(server_url, output)]
    run = subprocess.Popen([sys.executable, "-m", "pipelines.gen_prompts", *args], cwd=REPO,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    saved: list = []
    while time.monotonic() < deadline and len(saved) < 2:
        time.sleep(0.2)
        if output.exists():
            saved = table_to_rows(read_table(output))  # a reader never sees half a table
    run.send_signal(signal.SIGKILL)
    run.wait()
    kept = {r.class_index: r for r in table_to_rows(read_table(output))}
    assert 2 <= len(kept) < 8, "the run finished before it could be killed"
    assert all(kept[r.class_index] == r for r in saved)  # nothing seen finished was lost

    resumed = run_cli(*args)
    generated, skipped, failed = summary(resumed.stderr)
    assert skipped == len(kept) and generated + len(failed) == 8 - len(kept)
    assert resumed.returncode == (1 if failed else 0)
    final = {r.class_index: r for r in table_to_rows(read_table(output))}
    assert all(final[i] == row for i, row in kept.items())  # kept rows untouched
    present = sorted(final)
    assert present == sorted(set(range(8)) - set(failed))
    check_table(output, parse_class_list(classes, name="kill-test"), MODEL, indices=present)
    assert not list(tmp_path.glob(".t.parquet.tmp-*"))


def test_six_classes_through_the_server_in_two_shards_merged_into_one_table(server_url: str, tmp_path: Path) -> None:
    """The default cache paths of shard parts and of the merged table (a whole dataset goes
    through the in-process engine in test_vllm_real.py; six classes keep this run short)."""
    env = {"LMSEG_CACHE_DIR": str(tmp_path / "cache")}
    names = ",".join(get_vocabulary("voc20").names[:6])
    vocabulary = ["--classes", names, "--name", "voc20-six"]
    base = [*vocabulary, "--backend", "openai", "--base-url", server_url, "--num-shards", "2"]
    for shard in ("0", "1"):
        done = run_cli(*base, "--shard-index", shard, env=env)
        assert done.returncode == 0, done.stderr[-3000:]
    folder = tmp_path / "cache" / "attributes" / "voc20-six"
    assert sorted(p.name for p in folder.glob("*.parquet")) == [
        f"{MODEL}.shard-000-of-002.parquet", f"{MODEL}.shard-001-of-002.parquet"]
    early = run_cli(*vocabulary, "--backend", "openai", "--model", MODEL, "--num-shards", "3", "--merge-shards", env=env)
    assert early.returncode == 2 and "missing shard part" in early.stderr
    merged = run_cli(*vocabulary, "--backend", "openai", "--model", MODEL, "--num-shards", "2", "--merge-shards",
                     env=env)
    assert merged.returncode == 0, merged.stderr
    check_table(folder / f"{MODEL}.parquet", parse_class_list(names, name="voc20-six"), MODEL)
