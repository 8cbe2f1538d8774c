"""The OpenAI-compatible backend under injected faults (a misbehaving server on loopback)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lmseg.attributes import AnswerLimits
from lmseg.attributes.store import read_table
from lmseg.captions.phrase_table import read_phrase_table
from lmseg.llm import BackendUnavailable, RequestFailed, SamplingSettings
from lmseg.llm.backends.openai_backend import OpenAIBackend
from pipelines.parse_captions import main as parse_captions_main
from tests.attributes.conftest import REPO, run_cli, summary
from tests.attributes.fake_openai_server import VALID_ANSWER, fake_server

SCHEMA = AnswerLimits().json_schema()
SETTINGS = SamplingSettings()
CONVERSATION = [{"role": "user", "content": 'Describe "cat".'}]


def backend_for(url: str, **kwargs: object) -> OpenAIBackend:
    options = {"timeout": 1.0, "max_retries": 1, **kwargs}
    return OpenAIBackend(url, **options)


def test_structured_output_request_carries_schema_and_sampling() -> None:
    with fake_server(["ok"]) as server:
        answers = backend_for(server.base_url).generate([CONVERSATION], SCHEMA, SETTINGS, attempt=1)
    assert answers == [json.dumps(VALID_ANSWER)]
    request = server.requests[0]
    assert request["model"] == "fake-model"  # the server's model, found by listing /models
    assert request["response_format"]["json_schema"]["schema"] == SCHEMA
    assert request["temperature"] == SETTINGS.retry_temperature and request["seed"] == SETTINGS.seed + 1
    assert request["max_tokens"] == SETTINGS.max_tokens


def test_server_errors_are_retried_with_backoff() -> None:
    with fake_server(["500", "500", "ok"]) as server:
        answers = backend_for(server.base_url, max_retries=2).generate([CONVERSATION], SCHEMA, SETTINGS, 0)
    assert answers == [json.dumps(VALID_ANSWER)]
    assert len(server.requests) == 3


@pytest.mark.parametrize(("behaviour", "error"), [("stall", "Timeout"), ("drop", "Connection"), ("500", "InternalServerError")])
def test_a_request_that_keeps_failing_becomes_a_reported_failure(behaviour: str, error: str) -> None:
    with fake_server([behaviour]) as server:
        start = time.monotonic()
        answers = backend_for(server.base_url).generate([CONVERSATION], SCHEMA, SETTINGS, 0)
        elapsed = time.monotonic() - start
    assert isinstance(answers[0], RequestFailed) and error in answers[0].reason
    assert len(server.requests) == 2  # one try and one retry
    assert elapsed < 20  # bounded by the timeout, not by the 30 s stall


def test_a_body_that_is_not_json_is_a_reported_failure() -> None:
    with fake_server(["garbage"]) as server:
        answers = backend_for(server.base_url).generate([CONVERSATION], SCHEMA, SETTINGS, 0)
    assert answers == [RequestFailed("the server's reply is not a chat completion: "
                                     "'<html><body>502 Bad Gateway</body></html>'")]


def test_requests_run_concurrently_up_to_the_limit() -> None:
    with fake_server(["slow"]) as server:
        backend_for(server.base_url, concurrency=3, timeout=5.0).generate([CONVERSATION] * 9, SCHEMA, SETTINGS, 0)
    assert server.max_in_flight == 3


def test_unreachable_server_is_reported_before_any_work() -> None:
    with fake_server(["ok"]) as server:
        url = server.base_url
    with pytest.raises(BackendUnavailable, match=f"cannot reach an OpenAI-compatible server at {url}"):
        backend_for(url)


def test_unknown_model_and_rejected_key(monkeypatch: pytest.MonkeyPatch) -> None:
    with fake_server(["ok"]) as server:
        with pytest.raises(BackendUnavailable, match="does not serve 'gpt-9'.*fake-model"):
            backend_for(server.base_url, model="gpt-9")
    monkeypatch.setenv("MY_KEY", "sk-test-SECRET")
    with fake_server(["ok"], reject_key=True) as server:
        with pytest.raises(BackendUnavailable, match=r"rejected the API key \(read from \$MY_KEY\)") as info:
            backend_for(server.base_url, api_key_env="MY_KEY")
    assert "sk-test-SECRET" not in str(info.value)


def test_an_unset_key_variable_is_named_when_the_server_wants_a_key(monkeypatch, caplog) -> None:
    monkeypatch.delenv("MY_KEY", raising=False)
    with fake_server(["ok"], reject_key=True) as server:
        with pytest.raises(BackendUnavailable, match=r"needs an API key \(401 Unauthorized\); \$MY_KEY is not set"):
            backend_for(server.base_url, api_key_env="MY_KEY")
    assert "$MY_KEY is not set: no API key is sent" in caplog.text


def test_cli_invalid_answers_fail_by_name_exit_1_and_keep_the_key_secret(tmp_path: Path) -> None:
    output = tmp_path / "t.parquet"
    with fake_server(["ok", "invalid", "ok", "invalid", "invalid"]) as server:
        done = run_cli("--classes", "cat,dog,sofa", "--backend", "openai", "--base-url", server.base_url,
                       "--concurrency", "1", "--max-attempts", "2", "--output", str(output),
                       env={"OPENAI_API_KEY": "sk-test-SECRET"})
    assert done.returncode == 1, done.stderr
    assert "2 generated, 0 skipped (already present), 1 failed" in done.stderr
    assert "failed: class 1 'dog': invalid answer: not valid JSON" in done.stderr
    assert all(auth == "Bearer sk-test-SECRET" for auth in server.seen_auth)
    assert "sk-test-SECRET" not in done.stderr + done.stdout
    assert b"sk-test-SECRET" not in output.read_bytes()


def test_cli_server_down_exits_2_with_a_clear_message(tmp_path: Path) -> None:
    with fake_server(["ok"]) as server:
        url = server.base_url
    done = run_cli("--dataset", "voc20", "--backend", "openai", "--base-url", url, "--output", str(tmp_path / "t.parquet"))
    assert done.returncode == 2
    assert f"error: cannot reach an OpenAI-compatible server at {url}" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "t.parquet").exists()


def test_cli_a_second_run_on_the_same_table_is_refused(tmp_path: Path) -> None:
    output = tmp_path / "t.parquet"
    with fake_server(["slow"]) as server:
        # ade150 at 0.3 s a class holds the first run open for 45 s, long enough on a loaded machine
        args = ["--dataset", "ade150", "--backend", "openai", "--base-url", server.base_url, "--concurrency", "1",
                "--output", str(output)]
        first = subprocess.Popen([sys.executable, "-m", "pipelines.gen_prompts", *args], cwd=REPO,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            deadline = time.monotonic() + 60
            while not server.requests and time.monotonic() < deadline:
                time.sleep(0.1)
            second = run_cli(*args)
        finally:
            first.terminate()
            first.wait(timeout=30)
    assert second.returncode == 2
    assert f"another run is already writing {output} (process {first.pid})" in second.stderr


def test_cli_ctrl_c_keeps_finished_chunks_and_exits_130(tmp_path: Path) -> None:
    output = tmp_path / "t.parquet"
    with fake_server(["slow"]) as server:
        # 150 classes at 0.3 s each: the run cannot finish between its first save and the signal,
        # even on a loaded machine
        args = ["--dataset", "ade150", "--backend", "openai", "--base-url", server.base_url, "--concurrency", "1",
                "--chunk-size", "2", "--output", str(output)]
        # Ctrl-C as in a terminal: the child gets SIGINT's default action even when this test runs
        # in a background job, whose commands inherit SIGINT ignored (POSIX shells without job control)
        run = subprocess.Popen([sys.executable, "-m", "pipelines.gen_prompts", *args], cwd=REPO,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        deadline = time.monotonic() + 60
        while not output.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        run.send_signal(signal.SIGINT)
        _, stderr = run.communicate(timeout=120)
    assert run.returncode == 130, stderr[-3000:]
    assert f"interrupted; every finished chunk is saved in {output}" in stderr
    assert "Traceback" not in stderr
    saved = read_table(output).column("class_index").to_pylist()
    assert saved[:2] == [0, 1] and len(saved) < 150


def test_cli_a_class_name_too_long_for_the_model_fails_alone_and_the_rest_is_written(tmp_path: Path) -> None:
    """A class name whose message the server refuses (400, as vLLM's server does for an input longer
    than the context; here a server with a short context: the 99-character name, within the
    100-character bound of every vocabulary, makes a 608-character message, "cat" one of 416); the
    run names it, writes the others and exits 1."""
    output = tmp_path / "t.parquet"
    long_name = " ".join(["word"] * 20)[:99]
    with fake_server(["ok"], max_message_chars=500) as server:
        done = run_cli("--classes", f"cat,{long_name},dog", "--backend", "openai", "--base-url", server.base_url,
                       "--chunk-size", "1", "--output", str(output))
    assert done.returncode == 1, done.stderr[-3000:]
    assert summary(done.stderr) == (2, 0, [1])
    assert "failed: class 1 'word word word" in done.stderr
    assert "(99 characters): BadRequestError" in done.stderr
    assert "--max-attempts" not in done.stderr.split("table:")[1]  # no retry advice for an input the model refuses
    assert read_table(output).column("class_name").to_pylist() == ["cat", "dog"]


def test_parse_captions_names_empty_and_too_long_captions_and_writes_the_rest(tmp_path: Path, capsys) -> None:
    """An empty phrase list is a failure (retried, then named), not a row that trains nothing; a
    1 MB caption is refused by the model alone; the other captions are written; exit 1."""
    long_caption = "A cat " + "very " * 200_000 + "long."
    source = tmp_path / "captions.txt"
    source.write_text(f"A red car.\nNothing much to see.\n{long_caption}\nA dog on the grass.\n", encoding="utf-8")
    output = tmp_path / "phrases"
    with fake_server(["phrases"], max_message_chars=10_000) as server:
        code = parse_captions_main(["--captions", str(source), "--backend", "openai", "--base-url", server.base_url,
                                    "--chunk-size", "1", "--concurrency", "1", "--output", str(output)])
        asked = [r["messages"][-1]["content"] for r in server.requests]
    err = capsys.readouterr().err
    assert code == 1, err
    assert "done: 2 parsed, 0 skipped (already present), 2 failed" in err
    assert "'Nothing much to see.': invalid answer: no phrase: the model answered an empty list" in err
    assert "'A cat very very very" in err and "(1,000,011 characters): BadRequestError" in err
    assert "training (data.phrase_table) parses them with the rule parser" in err
    assert sum("Nothing much" in a for a in asked) == 3  # an empty answer is asked again (--max-attempts 3)
    table = read_phrase_table(output)
    assert (table.get("A red car."), table.get("A dog on the grass.")) == (("car",), ("grass",))
    assert len(table) == 2  # no row without phrases


@pytest.mark.parametrize(("extra", "message"), [
    (["--output", "{tmp}/a-file"], "error: output {tmp}/a-file is a file; the output is a folder of Parquet files"),
    (["--output", "/proc/lmseg-no/phrases"], "error: cannot write output folder /proc/lmseg-no/phrases"),
    (["--prompt", "t.j2"], "error: --prompt was renamed --instruction (the jinja2 file sent to the LLM)"),
    (["--timeout", "inf"], "error: --timeout must be > 0 and at most 86400 seconds (got inf)"),
    (["--temperature", "nan"], "error: --temperature must be a finite number >= 0 (got nan)"),
])
def test_parse_captions_bad_output_and_numbers_are_refused_before_the_server_is_asked(
        tmp_path: Path, capsys, extra: list[str], message: str) -> None:
    (tmp_path / "a-file").write_text("x")
    source = tmp_path / "captions.txt"
    source.write_text("A red car.\n", encoding="utf-8")
    with fake_server(["phrases"]) as server:
        code = parse_captions_main(["--captions", str(source), "--backend", "openai", "--base-url", server.base_url,
                                    *[a.format(tmp=tmp_path) for a in extra]])
        assert not server.requests and not server.seen_auth  # nothing was asked of the server, not even /models
    err = capsys.readouterr().err
    assert code == 2 and message.format(tmp=tmp_path) in err and "Traceback" not in err



def test_cli_a_run_ends_with_no_native_thread_left_to_race_the_exit(tmp_path: Path) -> None:
    """The cause of the rare abort at exit ("terminate called without an active exception",
    exit 134, about 1 run in 60 of this command before the fix): Arrow's thread pools, started by
    reading the table back, were torn down while the interpreter exited. Tables are now read on
    the calling thread, so a whole run (write, read back, report) leaves exactly the threads it
    started with: nothing remains to race the exit, in any run."""
    probe = (
        "import os, sys; from pipelines.gen_prompts import main\n"
        "before = len(os.listdir('/proc/self/task'))\n"
        "code = main(sys.argv[1:])\n"
        "after = len(os.listdir('/proc/self/task'))\n"
        "print(f'threads {before} {after}'); sys.exit(code)\n"
    )
    with fake_server(["ok"]) as server:
        done = subprocess.run([sys.executable, "-c", probe, "--classes", "cat,dog,sofa", "--backend", "openai",
                               "--base-url", server.base_url, "--chunk-size", "2",
                               "--output", str(tmp_path / "t.parquet")],
                              cwd=REPO, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    before, after = map(int, done.stdout.split("threads ")[1].split())
    assert after == before, f"{after - before} native threads outlive the run"
    assert "attribute quality: 3 classes" in done.stderr  # the table was read back and reported
