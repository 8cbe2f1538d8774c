"""A real short training run of mgca_tiny on real image-caption pairs read from webdataset
shards: the loss falls, a resumed run reproduces the same losses exactly, the checkpoint
serves the predictor, and undecodable images are counted and skipped.

The shared trainer (``lmseg.engine.trainer.Trainer``) is being written on another branch, so
:func:`drive` below is a minimal stand-in that calls the task exactly as that trainer does
(seed, ``build_model``, AdamW over ``param_groups`` at ``lr * lr_scale``, the global sample
counter ``k = step * batch + j``, ``collate``, ``loss``, ``model_checkpoint`` /
``load_model_checkpoint``). At merge, replace ``drive`` by
``Trainer(load_train_config(CONFIG, overrides)).fit(resume=...)`` and read the losses from
``<output_dir>/metrics.jsonl``.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import lmseg
from lmseg.errors import LmsegError
from lmseg.models.mgca import TRAIN_TASKS
from lmseg.models.mgca.data import CaptionTrainSamples
from tests.captions.fixture import fixture_shards

BATCH = 4


def drive(task: Any, steps: range, lr: float, resume: dict[str, Any] | None = None,
          save_after: int | None = None) -> tuple[list[float], dict]:
    """Train ``task`` for ``steps``; returns the losses and a checkpoint taken after step
    ``save_after`` (default: the last step)."""
    torch.manual_seed(7)
    model = task.build_model()
    groups = task.param_groups(model)
    trained = {id(p) for g in groups for p in g.params}
    for p in model.parameters():
        p.requires_grad_(id(p) in trained)
    optimizer = torch.optim.AdamW([{"params": g.params, "lr": lr * g.lr_scale} for g in groups], lr=lr)
    if resume is not None:
        task.load_model_checkpoint(model, resume["model"], "resume")
        optimizer.load_state_dict(resume["optimizer"])
        torch.set_rng_state(resume["rng"])
    data = task.train_dataset()
    losses, state = [], {}
    for step in steps:
        batch = task.collate([data[step * BATCH + j] for j in range(BATCH)])
        optimizer.zero_grad(set_to_none=True)
        terms = task.loss(model, batch)
        terms["loss"].backward()
        optimizer.step()
        assert set(terms) == {"loss", "loss_image", "loss_object", "loss_region", "loss_pixel", "pseudo_pixel_share"}
        losses.append(float(terms["loss"].detach()))
        if step == (steps[-1] if save_after is None else save_after):
            state = copy.deepcopy({"model": task.model_checkpoint(model), "optimizer": optimizer.state_dict(),
                                   "rng": torch.get_rng_state()})  # as written to disk: no shared tensors
    return losses, state


@pytest.fixture(scope="module")
def shards(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("mgca") / "shards"
    fixture_shards(folder)
    return folder


def _task(shards: Path, **model: Any) -> Any:
    return TRAIN_TASKS["mgca"]({"name": "mgca_tiny", "clip": None, **model}, {"shards": str(shards)}, 0)


def test_training_loss_falls_and_resume_is_exact(shards: Path, tmp_path: Path) -> None:
    task = _task(shards)
    losses, state = drive(task, range(0, 6), lr=1e-3, save_after=2)
    assert np.mean(losses[-2:]) < np.mean(losses[:2]) - 0.05, losses
    resumed, final = drive(task, range(3, 6), lr=1e-3, resume=state)
    assert resumed == losses[3:]  # exact, to the last bit

    path = tmp_path / "mgca_tiny.pt"
    torch.save(final["model"], path)
    seg = lmseg.create_segmenter("mgca_tiny", checkpoint=path)
    assert seg.predict(np.zeros((40, 56, 3), np.uint8), ["giraffe", "tree"]).label_map.shape == (40, 56)
    with pytest.raises(LmsegError, match="not 'mgca_vitb16'"):
        lmseg.create_segmenter("mgca_vitb16", checkpoint=path)


def test_group_kmeans_and_tuned_text_tower_train(shards: Path) -> None:
    task = _task(shards, grouping="kmeans", tune_text=True)
    names = [g.name for g in task.param_groups(task.build_model())]
    assert names == ["clip_image", "heads", "clip_text"]
    losses, _ = drive(task, range(0, 1), lr=1e-3)
    assert all(np.isfinite(losses))


def test_undecodable_images_are_replaced_deterministically(tmp_path: Path) -> None:
    from lmseg.captions.shards import SkipLog
    from lmseg.captions.sources import ShardPairs
    from lmseg.captions.write import write_shards
    from lmseg.models.mgca.data import CropSettings, PhraseLookup

    class Broken:
        caption, image_name = "A broken picture of a cat.", "broken.jpg"

        def read_image_bytes(self) -> bytes:
            return b"not an image"

    pairs = [Broken()] + list(__import__("tests.captions.fixture", fromlist=["x"]).fixture_pairs()[:3])
    source = ShardPairs(write_shards(pairs, tmp_path), 0, SkipLog())
    data = CaptionTrainSamples(source, PhraseLookup(None, 6), CropSettings(32), seed=0)
    items = [data[k] for k in range(4)]
    assert data.skips.counts["bad_image"] == 1
    assert all(i["image"].shape == (3, 32, 32) for i in items)
    assert [i["caption"] for i in items] == [data[k]["caption"] for k in range(4)]


def test_bad_training_sections_are_rejected(shards: Path) -> None:
    build = TRAIN_TASKS["mgca"]
    with pytest.raises(LmsegError, match="exactly one of 'shards'"):
        build({"name": "mgca_tiny"}, {}, 0)
    with pytest.raises(LmsegError, match="unknown field"):
        build({"name": "mgca_tiny", "groups": 3}, {"shards": str(shards)}, 0)
    with pytest.raises(LmsegError, match="grouping must be"):
        build({"name": "mgca_tiny", "grouping": "slic"}, {"shards": str(shards)}, 0)
    with pytest.raises(LmsegError, match="unknown MGCA config"):
        build({"name": "mgca_huge"}, {"shards": str(shards)}, 0)


@pytest.mark.parametrize("name", ["mgca_tiny_captions", "mgca_vitb16_cc3m"])
def test_shipped_training_configs_build_their_task(name: str) -> None:
    import yaml

    config = yaml.safe_load((Path(__file__).resolve().parents[3] / "configs" / f"{name}.yaml").read_text())
    assert config["task"] == "mgca"
    task = TRAIN_TASKS["mgca"](config["model"], config["data"], config["run"]["seed"])
    assert task.config.name == config["model"]["name"]


def test_batch_without_noun_phrases_trains_the_image_level_only() -> None:
    from lmseg.models.mgca import PhraseBatch, build_model, get_config

    torch.manual_seed(0)
    model = build_model(get_config("mgca_tiny")).train()
    terms = model(torch.rand(2, 3, 32, 32), ["It is very nice.", "so good"], PhraseBatch.from_lists([(), ()]))
    assert all(float(terms[k].detach()) == 0.0 for k in ("loss_object", "loss_region", "loss_pixel"))
    assert torch.isclose(terms["loss"], terms["loss_image"])
    terms["loss"].backward()
    assert model.groups.tokens.grad is not None and not model.groups.tokens.grad.any()  # used (DDP), unchanged
