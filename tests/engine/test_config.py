"""The training config: the older LMSeg layout reads as the current one; overrides use one syntax."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from lmseg.config_overrides import parse_overrides
from lmseg.engine.config import config_from_data, load_train_config
from lmseg.errors import LmsegError

CONFIG = Path(__file__).resolve().parents[2] / "configs" / "lmseg_tiny_samples.yaml"


def test_older_lmseg_layout_equals_the_current_layout(tmp_path) -> None:
    old = load_train_config(CONFIG, ["model_overrides.prompt_pooling=mean"])
    current = {
        "task": "lmseg",
        "run": {"max_steps": 40, "seed": 0, "output_dir": "runs/lmseg_tiny_samples", "checkpoint_every": 10,
                "log_every": 1, "keep_checkpoints": 2, "device": "cpu", "workers": 0},
        "optim": {"lr": 0.001, "weight_decay": 0.0001, "warmup_steps": 5, "batch_size": 2, "amp": False},
        "model": {"preset": "lmseg_tiny", "overrides": {"prompt_pooling": "mean"}, "clip_weights": None,
                  "sam_weights": None, "clip_lr_mult": 0.01},
        "data": {"dataset": "coco_object", "root": "samples/coco_object", "split": "train2017", "base_short_side": 80,
                 "scale_range": [0.8, 1.25]},
    }
    (tmp_path / "new.yaml").write_text(yaml.safe_dump(current))
    assert load_train_config(tmp_path / "new.yaml") == old
    assert config_from_data(old.to_dict(), where="saved") == old  # what checkpoints store reads back the same


def test_one_override_syntax_json_then_yaml() -> None:
    assert parse_overrides(["a.b=1e-3", "c=[x, y]", "d={pooling: mean}", "e=some text", "f=null", "a.c=true"]) == {
        "a": {"b": 0.001, "c": True}, "c": ["x", "y"], "d": {"pooling": "mean"}, "e": "some text", "f": None}
    with pytest.raises(LmsegError, match="already given a plain value"):
        parse_overrides(["a=1", "a.b=2"])


def test_wrong_types_are_named() -> None:
    with pytest.raises(LmsegError, match=r"run: max_steps must be int, got float 1.5"):
        config_from_data({"run": {"max_steps": 1.5}}, where="x")
    with pytest.raises(LmsegError, match=r"optim: amp must be bool, got str 'yes please'"):
        config_from_data({"optim": {"amp": "yes please"}}, where="x")
    with pytest.raises(LmsegError, match="given both at the top level and in run:"):
        config_from_data({"seed": 1, "run": {"seed": 2}}, where="x")
