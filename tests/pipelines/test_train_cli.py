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


def refused(config: Path, override: str, tmp_path: Path, capsys: pytest.CaptureFixture) -> str:
    """Train ``config`` with one bad ``--set``: exit 2, one ``error:`` line, nothing written; the error output."""
    assert main(["--config", str(config), "--set", f"output_dir={tmp_path / 'run'}", "--set", override]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "Traceback" not in err, err
    assert not (tmp_path / "run").exists()  # nothing was written
    return err


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
    ("optim.lr=nan", "optim: lr must be a finite number, got nan"),
    ("optim.lr=.inf", "optim: lr must be a finite number, got inf"),
    ("optim.grad_clip=-.inf", "optim: grad_clip must be a finite number, got -inf"),
    ("optim.weight_decay=-0.1", "weight_decay must be >= 0"),
    ("optim.batch_size=0", "batch_size must be at least 1, got 0"),
    ("optim.grad_accum=0", "grad_accum must be at least 1, got 0"),
    ("optim.warmup_steps=-1", "warmup_steps must be >= 0"),
    ("optim.poly_power=0", "poly_power must be positive"),
    ("checkpoint_every=0", "checkpoint_every must be at least 1"),
    ("log_every=-2", "log_every must be at least 1"),
    ("keep_checkpoints=0", "keep_checkpoints must be at least 1 (null keeps every step_*.pt), got 0"),
    ("workers=-1", "workers must be >= 0, got -1"),
    ("data.scale_range=[.nan, 1]", "scale_range must be a finite number, got (nan, 1)"),
])
def test_bad_settings_give_one_error_line(override, message, tmp_path, capsys) -> None:
    err = refused(CONFIG, override, tmp_path, capsys)
    assert message in err, err


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


MGCA_CONFIG = CONFIG.parent / "mgca_tiny_captions.yaml"


@pytest.mark.parametrize(("override", "message"), [
    ("model.loss.image_temperature=nan", "image_temperature must be a finite number, got nan"),
    ("model.loss.pixel_temperature=0", "temperatures must be finite and > 0"),
    ("model.group_temperature=.inf", "group_temperature must be a finite number, got inf"),
])
def test_bad_method_numbers_name_the_setting_not_the_learning_rate(override, message, tmp_path, capsys) -> None:
    err = refused(MGCA_CONFIG, override, tmp_path, capsys)
    assert message in err and "learning rate" not in err, err


@pytest.mark.parametrize("text", ["", "\n# only a comment\n", "{}\n", "seed: 3\n"])
def test_a_config_without_task_and_model_is_refused(text, tmp_path, capsys) -> None:
    config = tmp_path / "train.yaml"
    config.write_text(text)
    assert main(["--config", str(config), "--set", f"output_dir={tmp_path / 'run'}"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and ("is empty" in err or "names no task and no model" in err), err
    assert not (tmp_path / "run").exists()
