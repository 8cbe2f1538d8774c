"""``python -m pipelines.train`` refuses bad input with one ``error:`` line and exit 2, before
any model or data is loaded (issue 15): bad ``--set`` values, invalid numbers, output paths
that are files, corrupt checkpoints."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("torch", reason="the trainer needs torch; run with the vision environment")
pytest.importorskip("yaml", reason="training configs are YAML; run with the vision environment")

from pipelines.train import main  # noqa: E402

CONFIG = Path(__file__).resolve().parents[2] / "configs" / "lmseg_tiny_samples.yaml"


@pytest.mark.parametrize(("override", "message"), [
    ("optim.max_steps=-5", "max_steps must be at least 1, got -5"),
    ("max_steps=0", "max_steps must be at least 1, got 0"),
    ("optim.lr=-1e-3", "lr must be positive"),
    ("optim.lr=fast", "optim: lr must be float, got str 'fast'"),
    ("optim.batch_size=[1, 2", "neither valid JSON nor valid YAML"),
    ("optim.learning_rate=1", "unknown field(s) learning_rate"),
    ("optim.schedule=linear", "schedule must be one of 'cosine', 'poly'"),
    ("no_equals_sign", "--set expects KEY=VALUE"),
    ("data.scale_range=[2, 1]", "0 < scale_range[0] <= scale_range[1]"),
])
def test_bad_settings_give_one_error_line(override, message, tmp_path, capsys) -> None:
    assert main(["--config", str(CONFIG), "--set", f"output_dir={tmp_path / 'run'}", "--set", override]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and "Traceback" not in err, err
    assert not (tmp_path / "run").exists()  # nothing was written


def test_output_dir_that_is_a_file(tmp_path, capsys) -> None:
    (tmp_path / "taken").write_text("a file")
    assert main(["--config", str(CONFIG), "--set", f"output_dir={tmp_path / 'taken'}"]) == 2
    assert "is an existing file, not a folder" in capsys.readouterr().err


def test_missing_config_and_unreadable_checkpoint(tmp_path, capsys) -> None:
    assert main(["--config", str(tmp_path / "nope.yaml")]) == 2
    assert "does not exist" in capsys.readouterr().err
    from lmseg.engine.checkpoints import read_training_checkpoint
    from lmseg.errors import LmsegError

    bad = tmp_path / "last.pt"
    bad.write_bytes(b"PK\x03\x04 this is not a zip archive")
    with pytest.raises(LmsegError, match="is corrupt or not a training checkpoint") as caught:
        read_training_checkpoint(bad)
    assert "weights_only" not in str(caught.value)
