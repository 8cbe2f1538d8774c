"""Shared fixtures of the stage-1 (attributes) tests.

These tests run in the LLM environment (.venv-llm). The real-model tests need the default
model that `make setup` prepares; they are skipped, with that reason, when it is absent.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
MODEL_DIR = REPO / "cache" / "models" / "SmolLM2-135M-Instruct"


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private cache folder for the test (LMSEG_CACHE_DIR)."""
    monkeypatch.setenv("LMSEG_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture(scope="session")
def llm_dir() -> Path:
    """The prepared default model; skips when it or vLLM is missing."""
    if importlib.util.find_spec("vllm") is None:
        pytest.skip("vLLM is not installed in this environment (run the tests through `make test`)")
    if not (MODEL_DIR / ".lmseg-prepared").exists():
        pytest.skip(f"the default LLM is not prepared at {MODEL_DIR} (run `make setup`)")
    return MODEL_DIR


@pytest.fixture(scope="session")
def vllm_backend(llm_dir: Path):
    """One in-process vLLM backend with the default model for the whole session: its engine
    starts on the first generation and every test that takes this fixture shares it."""
    from lmseg.attributes.backends.vllm_backend import VLLMBackend

    return VLLMBackend(llm_dir)


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run `python -m pipelines.gen_prompts ARGS` in a fresh process, as a user would."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "pipelines.gen_prompts", *args],
        cwd=REPO, env=full_env, capture_output=True, text=True, timeout=timeout, check=False,
    )


def summary(stderr: str) -> tuple[int, int, list[int]]:
    """(generated, skipped, failed class indices) from a run's closing summary."""
    match = re.search(r"done: (\d+) generated, (\d+) skipped \(already present\), (\d+) failed", stderr)
    assert match, f"no summary in:\n{stderr[-3000:]}"
    failed = [int(m) for m in re.findall(r"^  failed: class (\d+) ", stderr, flags=re.MULTILINE)]
    assert len(failed) == int(match.group(3))  # every failed class is named
    return int(match.group(1)), int(match.group(2)), failed
