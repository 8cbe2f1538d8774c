"""Every shell command of README.md and docs/*.md runs as written, or is checked and listed with
the reason it cannot run here, so that the docs cannot drift from the code.

A command is a logical line of a ```bash / ```sh / ```shell / ```console block (continuation
lines joined, the trailing comment removed; in a console block the lines after ``$ ``) or an
indented ``$ `` line. Each one is either

- in :data:`RUN`: executed as written by ``bash`` in a scratch folder that holds the project's
  files (links), with ``python`` and ``.venv/bin/python`` the interpreter of this suite and
  ``PYTHONPATH`` the project; the one substitution is ``/tmp/`` -> the scratch folder's ``tmp/``
  (the docs use ``/tmp`` as a scratch place); the exit status must be the one listed; or
- in :data:`NOT_RUN` with the reason (official weights, a GPU, the LLM suite's environment,
  minutes of CPU, a dataset, a cluster, a server that runs until stopped). Such a command is
  still checked as far as that is possible without running it: its module exists and answers
  ``--help``; its options are accepted by the module's own argparse parser (``parse_args`` on
  the command's arguments, stopped right after parsing); a ``--model`` is a registered
  segmenter; ``train``'s ``--config`` and ``--set`` load (:func:`lmseg.engine.config.load_train_config`);
  ``make`` targets are expanded by ``make -n`` and the commands they run are checked the same
  way; the paths given to ``pytest`` exist; ``python -c`` code compiles.

A command in the docs that is in neither table fails :func:`test_every_command_is_listed`, and an
entry of a table that is no longer in the docs fails it too. A block of commands without a
shell language (```bash) fails :func:`test_command_blocks_are_marked`.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ["README.md", *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "docs").glob("*.md"))]
SHELL_LANGUAGES = {"bash", "sh", "shell", "console"}
#: A line that starts like a command of this project (after optional ``VAR=value`` words).
COMMAND_LINE = re.compile(r"^(\$ )?([A-Z_]+=\S* )*(\.venv(-llm)?/bin/python|python3?|lmseg|make|torchrun|curl) ")

# Why a command is not run by this test.
WEIGHTS = "official weights"
GPU = "a GPU"
LLM = "the LLM suite's environment (vLLM; tests/attributes runs the stages themselves)"
MINUTES = "minutes of CPU"
DATA = "a downloaded dataset"
CLUSTER = "a running Ray cluster"
SERVER = "serves a web page until stopped (tests/web runs the page)"
SUITE = "runs the test suite"
HTTP = ("the HTTP recipe against a running page: run as written by "
        "tests/web/test_api.py::test_the_raw_http_recipe_of_the_docs_runs_as_written")
REPORT = "reads the report of the evaluation above (official weights)"
SUITE_REPORT = "reads the JUnit report of the suite run above"

#: Commands executed as written, with their expected exit status.
RUN: dict[str, int] = {
    ".venv/bin/python -m pipelines.segment lmseg/web/sample_images/ade_val_00000003_street.jpg --model sam3_tiny "
    "--classes person,car,sky": 0,
    ".venv/bin/python -m pipelines.segment lmseg/web/sample_images/ade_val_00000003_street.jpg --model mgca_tiny "
    '--classes "person,car,sky" --set inference.unit=adaptive': 0,
    "python -m pipelines.train --config configs/mgca_tiny_captions.yaml --set max_steps=2 --set output_dir=/tmp/mgca_run": 0,
    "python -m pipelines.segment lmseg/web/sample_images/ade_val_00000003_street.jpg --model mgca_tiny "
    '--checkpoint /tmp/mgca_run/checkpoints/last.pt --classes "person,car,sky"': 0,
    "python -m pipelines.segment lmseg/web/sample_images/ade_val_00000003_street.jpg --model mrovseg_tiny "
    '--classes "wall,floor,sky" --output out/': 0,
    "python -m pipelines.segment lmseg/web/sample_images/ade_val_00000003_street.jpg --model sam3_tiny "
    "--classes person,car,sky": 0,
    "grep -v '^#' lmseg/attributes/truth/attribute_truth.csv | awk -F, 'NR>1 && $2==\"test\" {print $1}' "
    "> /tmp/truth-test.txt": 0,
}

#: Commands not executed here, with the reason.
NOT_RUN: dict[str, str] = {
    # README.md
    "make prompts DATASET=ade847": f"{LLM}; {MINUTES}",
    "make test": SUITE,
    "python3 scripts/cpu_time.py .venv-llm/bin/python -m pytest tests/attributes --junitxml=runs/llm.xml": SUITE,
    "python3 scripts/test_times.py runs/llm.xml": SUITE_REPORT,
    ".venv-llm/bin/python -m pipelines.gen_prompts --dataset ade150": f"{LLM}; {MINUTES}",
    ".venv-llm/bin/python -m pipelines.gen_prompts --vocabulary my_classes.txt": f"{LLM}; the user's file",
    '.venv-llm/bin/python -m pipelines.gen_prompts --classes "cat,dog,sofa;couch" --name pets': LLM,
    ".venv-llm/bin/python -m pipelines.gen_prompts --dataset ade847 --model Qwen/Qwen2.5-7B-Instruct "
    "--method generate": f"{LLM}; {GPU}",
    ".venv-llm/bin/python -m pipelines.gen_prompts --dataset ade847 --backend openai --base-url "
    "http://127.0.0.1:8000/v1 --model Qwen/Qwen2.5-7B-Instruct --concurrency 16": f"{LLM}; a served 7B model",
    ".venv-llm/bin/python -m pipelines.attribute_report cache/attributes/ade847/SmolLM2-135M-Instruct.parquet":
        f"{LLM}; the table of `make prompts`",
    ".venv-llm/bin/python -m pipelines.attribute_report TABLE --truth --split test": f"{LLM}; TABLE is the user's",
    ".venv-llm/bin/python -m pipelines.gen_prompts --dataset voc20 --dry-run": LLM,
    ".venv-llm/bin/python -m pipelines.gen_prompts --dataset ade847 --shard-index 0 --num-shards 4": f"{LLM}; {MINUTES}",
    ".venv-llm/bin/python -m pipelines.gen_prompts --dataset ade847 --num-shards 4 --merge-shards":
        f"{LLM}; the shards of the command above",
    ".venv-llm/bin/python -m pipelines.gen_prompts --dataset lvis1203 --executor ray --ray-workers 2": f"{LLM}; {MINUTES}",
    ".venv/bin/python -m pipelines.segment photos/ --model trident_vitb16 --set clip=openai --set dino=dino_vitb16 "
    '--set sam=sam_vit_b --classes "cat,dog,sofa;couch" --output out/ --scores': WEIGHTS,
    ".venv/bin/python -m pipelines.evaluate --model trident_vitb16 --set clip=openai --set dino=dino_vitb16 "
    "--set sam=sam_vit_b --set benchmark=ade150 --dataset ade150 --data-root /data --limit 20": f"{WEIGHTS}; {DATA}",
    ".venv/bin/python -m pipelines.train --config configs/lmseg_vitb16_cocostuff.yaml": f"{DATA}; {GPU}",
    "torchrun --standalone --nproc_per_node=4 -m pipelines.train --config configs/lmseg_vitb16_cocostuff.yaml":
        f"{DATA}; {GPU} x 4",
    ".venv/bin/python -m pipelines.train --config configs/lmseg_tiny_samples.yaml": MINUTES,
    ".venv/bin/python -m pipelines.segment photo.jpg --model sam3 --set weights=facebook/sam3 "
    "--classes person,dog,sky": WEIGHTS,
    ".venv/bin/python -m pipelines.train --config configs/mrovseg_vitb16_cocostuff.yaml": f"{DATA}; {GPU}",
    ".venv/bin/python -m pipelines.train --config configs/mrovseg_tiny_samples.yaml": MINUTES,
    ".venv/bin/python -m pipelines.segment photos/ --model mrovseg_vitb16 --checkpoint "
    'runs/mrovseg_vitb16_cocostuff/checkpoints/last.pt --classes "cat,dog"': "a trained checkpoint",
    ".venv-llm/bin/python -m pipelines.parse_captions --tars data/cc3m/ --output cache/caption_phrases/cc3m":
        f"{LLM}; {DATA}",
    ".venv/bin/python -m pipelines.train --config configs/mgca_vitb16_cc3m.yaml": f"{DATA}; {GPU}",
    ".venv/bin/python -m pipelines.train --config configs/mgca_tiny_captions.yaml": MINUTES,
    "make demo": SERVER,
    ".venv/bin/python -m pipelines.demo --model trident_vitb16 --set clip=openai --set dino=dino_vitb16 "
    "--set sam=sam_vit_b --set benchmark=ade150": f"{WEIGHTS}; {SERVER}",
    # docs/engine.md
    "python -m pipelines.train --config configs/lmseg_tiny_samples.yaml": MINUTES,
    "lmseg train --config configs/lmseg_vitb16_cocostuff.yaml --set optim.lr=1e-4 --set max_steps=40000":
        f"{DATA}; {GPU}",
    "torchrun --standalone --nproc_per_node=4 -m pipelines.train --config configs/lmseg_vitb16_cocostuff.yaml "
    "--set optim.batch_size=1": f"{DATA}; {GPU} x 4",
    # docs/mgca.md
    "python -m pipelines.parse_captions --tars data/cc3m/ --output cache/caption_phrases/cc3m": f"{LLM}; {DATA}",
    "python -m pipelines.parse_captions --tars 'data/cc3m/*.tar' --shard-index 0 --num-shards 8": f"{LLM}; {DATA}",
    "python -m pipelines.parse_captions --tars data/cc3m/ --executor ray --ray-address auto --ray-workers 8 "
    "--ray-gpus-per-worker 1 --model Qwen/Qwen2.5-7B-Instruct": f"{LLM}; {DATA}; {CLUSTER}",
    "python -m pipelines.train --config configs/mgca_vitb16_cc3m.yaml": f"{DATA}; {GPU}",
    "python -m pipelines.train --config configs/mgca_tiny_captions.yaml": MINUTES,
    # docs/mrovseg.md
    "python -m pipelines.evaluate --model mrovseg_vitb16 --checkpoint ckpt.pt --dataset ade150 --data-root data "
    "--set inference.short_side=640 --set inference.clip_ensemble=0.3": f"a trained checkpoint; {DATA}",
    "python -m pipelines.train --config configs/mrovseg_vitb16_cocostuff.yaml": f"{DATA}; {GPU}",
    "python -m pipelines.train --config configs/mrovseg_tiny_samples.yaml": MINUTES,
    # docs/ray.md
    "python -m pipelines.gen_prompts --dataset lvis1203 --executor ray --ray-workers 2": f"{LLM}; {MINUTES}",
    "python -m pipelines.gen_prompts --dataset imagenet21k --executor ray --ray-address auto --model "
    "Qwen/Qwen2.5-7B-Instruct --ray-workers 8 --ray-gpus-per-worker 1 --ray-batch-size 64": f"{LLM}; {CLUSTER}; {GPU}",
    "RAY_AUTH_MODE=token python -m pipelines.evaluate --model trident_vitb16 --dataset ade150 --data-root "
    "/shared/data --executor ray --ray-address HEAD:6379 --ray-workers 8 --ray-gpus-per-worker 1 --device cuda":
        f"{WEIGHTS}; {DATA}; {CLUSTER}; {GPU}",
    "python -m pipelines.segment /shared/photos --model trident_vitb16 --dataset ade150 --output /shared/out "
    "--executor ray --ray-address auto --ray-workers 4 --ray-gpus-per-worker 0.5 --device cuda":
        f"{WEIGHTS}; {CLUSTER}; {GPU}",
    "python -m benchmarks.bench_ray --stage llm --address auto --dataset lvis1203 --workers 1 4 8 "
    '--extra="--model Qwen/Qwen2.5-7B-Instruct --ray-gpus-per-worker 1"': f"{LLM}; {CLUSTER}; {GPU}",
    "python -m benchmarks.bench_ray --stage vision --address auto --model trident_vitb16 --workers 1 4 8 "
    '--repeat 100 --extra="--device cuda --ray-gpus-per-worker 1"': f"{WEIGHTS}; {CLUSTER}; {GPU}",
    # docs/reproduce.md
    "python -m pipelines.evaluate --model trident_vitb16 --set clip=openai --set dino=dino_vitb16 --set sam=sam_vit_b "
    "--set benchmark=voc21 --set config.refinement.enabled=true --dataset voc21 --data-root /data":
        f"{WEIGHTS}; {DATA}",
    "python -c \"import json; print(json.dumps(json.load(open('cache/evaluations/trident_vitb16/voc21/report.json'))"
    "['settings']['protocol'], indent=1))\"": REPORT,
    ".venv/bin/python -m pipelines.evaluate --model trident_vitb16 --set clip=openai --set dino=dino_vitb16 "
    "--set sam=sam_vit_b --set benchmark=ade150 --dataset ade150 --data-root /data "
    "--output cache/evaluations/trident_vitb16/ade150": f"{WEIGHTS}; {DATA}",
    ".venv/bin/python -m pipelines.evaluate --model trident_vitb16 --set clip=openai --set dino=dino_vitb16 "
    "--set sam=sam_vit_b --set benchmark=ade150 --dataset ade150 --data-root /data --attributes "
    "cache/attributes/ade150/SmolLM2-135M-Instruct.parquet --output cache/evaluations/trident_vitb16/ade150-attributes":
        f"{WEIGHTS}; {DATA}",
    "PYTHONPATH=$PWD .venv/bin/python -m pytest -q tests/data/test_resize.py tests/vocab "
    "tests/inference/test_protocol.py tests/models/trident/test_resizes.py tests/models/trident/test_limits.py "
    "tests/models/trident/test_published_queries.py tests/models/trident/test_end_to_end.py "
    "tests/models/lmseg/test_limits.py tests/models/lmseg/test_catseg_protocol.py "
    "tests/models/test_benchmark_presets.py": SUITE,
    # docs/sam3.md
    "python -m pipelines.segment photo.jpg --model sam3 --set weights=facebook/sam3 --classes person,dog,sky": WEIGHTS,
    "python -m pipelines.evaluate --model sam3 --set weights=sam3.pt --set benchmark=ade150 --dataset ade150 "
    "--data-root /data": f"{WEIGHTS}; {DATA}",
    # docs/stage1.md
    ".venv-llm/bin/python -m pipelines.gen_prompts --vocabulary /tmp/truth-test.txt --output /tmp/truth-test.parquet "
    "--truth --truth-split test": f"{LLM}; {MINUTES}",
    ".venv-llm/bin/python -m pipelines.attribute_report /tmp/truth-test.parquet --truth --split test":
        f"{LLM}; the table of the command above",
    ".venv-llm/bin/python -m benchmarks.bench_attribute_truth --keep /tmp/truth": f"{LLM}; about 35 minutes",
    # docs/web.md
    ".venv/bin/python -m pipelines.demo --model trident_vitb16 --set clip=ViT-B-16.pt --set "
    "dino=dino_vitbase16_pretrain.pth --set sam=sam_vit_b_01ec64.pth --set benchmark=ade150": f"{WEIGHTS}; {SERVER}",
    ".venv/bin/python -m pipelines.demo --model lmseg_vitb16 --checkpoint lmseg_vitb16.safetensors --set sam=sam_vit_b":
        f"a trained checkpoint; {SERVER}",
    'make demo ARGS="--model lmseg_vitb16 --checkpoint lmseg.safetensors --port 8080"': f"a trained checkpoint; {SERVER}",
    "url=http://127.0.0.1:7860": HTTP,
    'path=$(curl -s -F "files=@photo.jpg" "$url/gradio_api/upload" | sed -E \'s/^\\["(.*)"\\]$/\\1/\')': HTTP,
    'event=$(curl -s -H "Content-Type: application/json" -d \'{"data": [{"path": "\'"$path"\'", "meta": {"_type": '
    '"gradio.FileData"}}, "cat, dog", ""]}\' "$url/gradio_api/call/segment" | sed -E '
    '\'s/.*"event_id": *"([^"]+)".*/\\1/\')': HTTP,
    'curl -s -N "$url/gradio_api/call/segment/$event"': HTTP,
}


@dataclass(frozen=True)
class DocCommand:
    """One documented command: ``text`` as written (continuations joined, comment removed,
    spaces collapsed), ``where`` = ``file:line``, ``block`` = ``file:line`` of its block."""

    text: str
    where: str
    block: str


def strip_comment(line: str) -> str:
    """``line`` without a trailing shell comment (a ``#`` at a word start outside quotes)."""
    quote = ""
    for i, char in enumerate(line):
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i].rstrip()
    return line.rstrip()


def logical_lines(lines: list[str], first: int) -> Iterator[tuple[int, str]]:
    """(line number, command) of ``lines`` (numbered from ``first``): comments dropped,
    backslash continuations joined."""
    start, parts = 0, []
    for number, raw in enumerate(lines, first):
        line = strip_comment(raw)
        if not parts:
            start = number
        if line.endswith("\\"):
            parts.append(line[:-1])
            continue
        parts.append(line)
        text = " ".join(" ".join(parts).split())
        parts = []
        if text:
            yield start, text


def fenced_blocks(doc: str) -> Iterator[tuple[int, str, list[str]]]:
    """(line number of the opening fence, language, body lines) of each fenced block of ``doc``."""
    fence, start, language, body = "", 0, "", []
    for number, line in enumerate((ROOT / doc).read_text(encoding="utf-8").splitlines(), 1):
        opening = re.match(r"^\s*(```+)\s*(\w*)", line)
        if not fence and opening:
            fence, start, language, body = opening.group(1), number, opening.group(2), []
        elif fence and line.strip() == fence:
            fence = ""
            yield start, language, body
        elif fence:
            body.append(line)


def doc_commands() -> list[DocCommand]:
    """Every command of the docs, in the order of the files."""
    commands: list[DocCommand] = []
    for doc in DOCS:
        for start, language, body in fenced_blocks(doc):
            if language == "console":
                body = [line[2:] if line.startswith("$ ") else "" for line in body]
            if language in SHELL_LANGUAGES:
                commands += [DocCommand(text, f"{doc}:{n}", f"{doc}:{start}") for n, text in logical_lines(body, start + 1)]
        text = (ROOT / doc).read_text(encoding="utf-8")
        for match in re.finditer(r"^ {4,}\$ (.*)$", text, re.MULTILINE):
            number = text.count("\n", 0, match.start()) + 1
            commands.append(DocCommand(" ".join(match.group(1).split()), f"{doc}:{number}", f"{doc}:{number}"))
    return commands


def unmarked_command_lines() -> list[str]:
    """``file:line: text`` of the lines that look like commands in blocks without a shell language."""
    return [f"{doc}:{start + i}: {line.strip()}" for doc in DOCS for start, language, body in fenced_blocks(doc)
            if language not in SHELL_LANGUAGES for i, line in enumerate(body, 1) if COMMAND_LINE.match(line.strip())]


COMMANDS = doc_commands()


def test_command_blocks_are_marked() -> None:
    """Commands stand in ```bash blocks (so that this test finds them), never in plain ones."""
    assert unmarked_command_lines() == []


def test_every_command_is_listed() -> None:
    """Each documented command is run (RUN) or listed with its reason (NOT_RUN); no entry is stale."""
    texts = {c.text for c in COMMANDS}
    unlisted = [f"{c.where}: {c.text}" for c in COMMANDS if c.text not in RUN and c.text not in NOT_RUN]
    assert unlisted == [], "add each to RUN (executed) or NOT_RUN (with the reason it cannot run here)"
    assert not set(RUN) & set(NOT_RUN)
    assert sorted((set(RUN) | set(NOT_RUN)) - texts) == [], "entries no longer in the docs"


# --- checking a command without running it -----------------------------------------------------

PYTHONS = {".venv/bin/python", ".venv-llm/bin/python", "python", "python3"}


@dataclass(frozen=True)
class Invocation:
    """A Python program of a command: ``python -m module args`` (or ``-c code``)."""

    module: str
    args: list[str]


def invocations(text: str) -> list[Invocation] | None:
    """The Python programs that ``text`` runs, or None for a command that is not a Python
    program of this project (a shell recipe)."""
    words = shlex.split(text)
    while words and re.fullmatch(r"[A-Z_]+=.*", words[0]):
        words = words[1:]
    if not words:
        return None
    program, rest = words[0], words[1:]
    if program == "make":
        return make_invocations(rest)
    if program == "lmseg":
        return [Invocation(f"pipelines.{rest[0]}", rest[1:])]
    if program == "torchrun":
        rest = rest[rest.index("-m"):]
    elif program not in PYTHONS:
        return None
    if rest[0] == "-c":
        return [Invocation("-c", rest[1:])]
    if rest[0].startswith("scripts/") and rest[0].endswith(".py"):
        return [Invocation(rest[0], rest[1:])]
    assert rest[0] == "-m", f"{text}: not python -m MODULE, -c CODE or scripts/NAME.py"
    return [Invocation(rest[1], rest[2:])]


SEPARATORS = {";", "&&", "||", "|", "&"}


def make_invocations(args: list[str]) -> list[Invocation]:
    """The Python programs of ``make args``, from ``make -n`` (prints the recipes, runs nothing)."""
    dry = subprocess.run(["make", "-n", "--no-print-directory", *args], cwd=ROOT, capture_output=True, text=True,
                         timeout=60)
    assert dry.returncode == 0, f"make {shlex.join(args)}: {dry.stderr}"
    found = []
    for line in dry.stdout.replace("\\\n", " ").splitlines():
        lexer = shlex.shlex(line, posix=True, punctuation_chars=True)  # ; && || as tokens, quotes kept whole
        lexer.whitespace_split = True
        words: list[str] = []
        for token in [*lexer, ";"]:
            if token not in SEPARATORS:
                words.append(token)
                continue
            if len(words) > 2 and words[0].endswith("/python") and words[1] == "-m":
                found.append(Invocation(words[2], words[3:]))
            words = []
    assert found, f"make {shlex.join(args)} runs no Python program of the project"
    return found


class _Parsed(Exception):
    """Raised by the patched parse_args right after a successful parse."""

    def __init__(self, namespace: argparse.Namespace) -> None:
        super().__init__()
        self.namespace = namespace


def run_main(module: str, args: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """Call ``module``'s ``main`` on ``args`` as ``python -m module args`` would."""
    main = importlib.import_module(module).main
    monkeypatch.setattr(sys, "argv", [module, *args])
    main(args) if inspect.signature(main).parameters else main()


def parsed_arguments(module: str, args: list[str], monkeypatch: pytest.MonkeyPatch) -> argparse.Namespace:
    """``module``'s parser's result on ``args``, stopped before the command does any work."""
    real_parse_args = argparse.ArgumentParser.parse_args

    def parse_and_stop(self: argparse.ArgumentParser, *a: object, **k: object) -> argparse.Namespace:
        raise _Parsed(real_parse_args(self, *a, **k))

    with monkeypatch.context() as patch:
        patch.setattr(argparse.ArgumentParser, "parse_args", parse_and_stop)
        with pytest.raises(_Parsed) as parsed:
            run_main(module, args, patch)
    return parsed.value.namespace


def check_invocation(call: Invocation, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    """What can be checked of ``call`` without running it (see the module docstring)."""
    if call.module == "-c":
        compile(call.args[0], "<python -c>", "exec")
        return
    if call.module.endswith(".py"):  # a script of scripts/: it exists and compiles
        compile((ROOT / call.module).read_text(), call.module, "exec")
        return
    if call.module == "pytest":
        paths = [a.split("::")[0] for a in call.args if not a.startswith("-")]
        assert paths and [p for p in paths if not (ROOT / p).exists()] == []
        return
    with monkeypatch.context() as patch, pytest.raises(SystemExit) as helped:
        run_main(call.module, ["--help"], patch)
    assert helped.value.code in (0, None) and "usage:" in capsys.readouterr().out
    namespace = parsed_arguments(call.module, call.args, monkeypatch)
    if hasattr(namespace, "overrides"):  # a segmenter of the vision stages (pipelines/model_options.py)
        from lmseg.registry import available_segmenters

        assert namespace.model is None or namespace.model in available_segmenters()  # None: demo's tiny model
    if call.module == "pipelines.train":
        from lmseg.engine.config import load_train_config

        load_train_config(str(ROOT / namespace.config), namespace.set)


@pytest.mark.parametrize("command", COMMANDS, ids=[c.where for c in COMMANDS])
def test_command_is_accepted(command: DocCommand, monkeypatch: pytest.MonkeyPatch,
                             capsys: pytest.CaptureFixture) -> None:
    """Each documented Python program exists, answers --help and accepts the documented options."""
    calls = invocations(command.text)
    if calls is None:
        assert command.text in RUN or NOT_RUN.get(command.text) == HTTP, f"{command.where}: a shell recipe is run"
        return
    monkeypatch.chdir(ROOT)
    for call in calls:
        check_invocation(call, monkeypatch, capsys)


# --- running a command as written ----------------------------------------------------------------

#: Folders that commands write into the working folder: not linked into the scratch folder.
OUTPUTS = {".git", ".venv", ".venv-llm", "runs", "tmp", "out", "segment_output"}


def scratch_folder(folder: Path) -> Path:
    """``folder`` made a working folder for documented commands: links to the project's files,
    ``python`` and ``.venv/bin/python`` running this suite's interpreter, and an empty ``tmp/``."""
    for entry in ROOT.iterdir():
        if entry.name not in OUTPUTS:
            (folder / entry.name).symlink_to(entry)
    for launcher in (folder / "bin" / "python", folder / ".venv" / "bin" / "python"):
        launcher.parent.mkdir(parents=True, exist_ok=True)
        launcher.write_text(f'#!/bin/sh\nexec {shlex.quote(sys.executable)} "$@"\n')
        launcher.chmod(0o755)
    (folder / "tmp").mkdir()
    return folder


def run_as_written(text: str, folder: Path) -> subprocess.CompletedProcess:
    """``text`` run by bash in ``folder`` (``/tmp/`` -> ``folder/tmp/``), the project first on
    ``PYTHONPATH``."""
    env = {**os.environ, "PATH": f"{folder / 'bin'}{os.pathsep}{os.environ['PATH']}",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    return subprocess.run(["bash", "-c", text.replace("/tmp/", f"{folder}/tmp/")], cwd=folder, env=env,
                          capture_output=True, text=True, timeout=900)


RUN_BLOCKS = sorted({c.block for c in COMMANDS if c.text in RUN}, key=[c.block for c in COMMANDS].index)
#: Results of the commands run so far, by the command with ``.venv/bin/python`` spelt ``python``
#: (the same program documented twice runs once).
_RESULTS: dict[str, subprocess.CompletedProcess] = {}


@pytest.mark.parametrize("block", RUN_BLOCKS)
def test_commands_run_as_written(block: str, tmp_path: Path) -> None:
    """The block's commands of RUN, in order, in one scratch folder: each exits as listed."""
    folder = scratch_folder(tmp_path)
    for command in [c for c in COMMANDS if c.block == block and c.text in RUN]:
        program = re.sub(r"^\.venv/bin/python ", "python ", command.text)
        if program not in _RESULTS:
            _RESULTS[program] = run_as_written(command.text, folder)
        done = _RESULTS[program]
        assert done.returncode == RUN[command.text], f"{command.where}: {command.text}\n{done.stdout}\n{done.stderr}"
