"""``lmseg <stage>`` runs ``python -m pipelines.<stage>``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from pipelines.__main__ import main, stages

REPO = Path(__file__).resolve().parents[1]


def test_stages_and_dispatch(capsys) -> None:
    assert stages() == ["attribute_report", "demo", "evaluate", "gen_prompts", "parse_captions", "prepare_data",
                        "prepare_llm", "segment", "train"]  # the helpers (cli, *_options) are no stages
    assert main(["executor_options"]) == 2 and "unknown stage 'executor_options'" in capsys.readouterr().err
    assert main(["--help"]) == 0 and "stages: " in capsys.readouterr().out
    assert main(["nope"]) == 2 and "unknown stage 'nope'" in capsys.readouterr().err
    assert main([]) == 2


def test_the_console_script_is_declared_and_runs_a_stage() -> None:
    assert 'lmseg = "pipelines.__main__:main"' in (REPO / "pyproject.toml").read_text()
    done = subprocess.run([sys.executable, "-m", "pipelines", "prepare_data", "--help"], cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "--out-root" in done.stdout
