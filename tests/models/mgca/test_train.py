"""A real short training run of mgca_tiny through the shared trainer
(:class:`lmseg.engine.trainer.Trainer`, ``configs/mgca_tiny_captions.yaml`` on the committed
caption fixture): the loss falls, a run resumed from a mid-run checkpoint reproduces the
second half's losses bit for bit, the checkpoint serves the predictor, the CLI runs the config,
and undecodable images are counted and skipped.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import yaml

import lmseg
from lmseg.engine.config import load_train_config
from lmseg.errors import LmsegError
from lmseg.models.mgca import TRAIN_TASKS
from lmseg.models.mgca.data import CaptionTrainSamples
from pipelines.train import main
from tests.captions.fixture import fixture_tars
from tests.engine.training_checks import assert_resume_is_exact, logged_losses, probe_losses, train

ROOT = Path(__file__).resolve().parents[3]
CONFIG = ROOT / "configs" / "mgca_tiny_captions.yaml"
# the fixture table by absolute path (the YAML's is relative to the repository root);
# batches of 2 and a short warm-up keep the run to seconds per step on a CPU
COMMON = [f"data.table={ROOT / 'tests/fixtures/mgca_captions/captions.csv'}", "optim.batch_size=2",
          "optim.warmup_steps=1", "log_every=1"]


@pytest.fixture(scope="module")
def tars(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("mgca") / "tars"
    fixture_tars(folder)
    return folder


def _task(tars: Path, **model: Any) -> Any:
    return TRAIN_TASKS["mgca"]({"name": "mgca_tiny", "clip": None, **model}, {"tars": str(tars)}, 0)


def test_training_loss_falls_and_resume_is_exact(tmp_path: Path) -> None:
    run_a, run_b = tmp_path / "a", tmp_path / "b"
    steps = ["max_steps=6", "checkpoint_every=3"]
    summary = train(load_train_config(CONFIG, COMMON + steps + [f"output_dir={run_a}"]))
    assert summary["step"] == 6  # the summary shows every loss level of the last step, as metrics.jsonl does
    levels = {"loss", "loss_image", "loss_object", "loss_region", "loss_pixel"}
    assert levels <= set(summary) and all(np.isfinite(summary[k]) for k in levels)
    assert levels <= set(json.loads((run_a / "metrics.jsonl").read_text().splitlines()[-1]))
    losses = logged_losses(run_a)
    assert sorted(losses) == list(range(1, 7)) and all(np.isfinite(list(losses.values())))
    ckpts = run_a / "checkpoints"
    assert sorted(p.name for p in ckpts.iterdir()) == ["last.pt", "step_0000003.pt", "step_0000006.pt"]
    saved = yaml.safe_load((run_a / "config.yaml").read_text())
    assert saved["task"] == "mgca" and saved["model"]["name"] == "mgca_tiny"

    # the loss falls: on fixed training batches, the initial model against the trained one
    config = load_train_config(CONFIG, COMMON)
    task = TRAIN_TASKS["mgca"](config.model, config.data, config.run.seed)
    trained = lmseg.create_segmenter("mgca_tiny", checkpoint=ckpts / "last.pt").model.train()
    before, after = probe_losses(task, trained, config.run.seed)
    assert all(a < b - 0.5 for a, b in zip(after, before)), (before, after)

    # run B resumes from step 3 in another folder: steps 4..6 give the very same losses
    assert_resume_is_exact(CONFIG, COMMON + steps, losses, run_a, 3, run_b)

    # the training checkpoint serves the predictor (and names its preset)
    seg = lmseg.create_segmenter("mgca_tiny", checkpoint=ckpts / "last.pt")
    assert seg.predict(np.zeros((40, 56, 3), np.uint8), ["giraffe", "tree"]).label_map.shape == (40, 56)
    with pytest.raises(LmsegError, match="not 'mgca_vitb16'"):
        lmseg.create_segmenter("mgca_vitb16", checkpoint=ckpts / "last.pt")


def test_cli_runs_the_config(tmp_path: Path) -> None:
    out = tmp_path / "run"
    code = main(["--config", str(CONFIG), "--set", "max_steps=2", "--set", f"output_dir={out}"]
                + [arg for item in COMMON for arg in ("--set", item)])
    assert code == 0
    assert sorted(logged_losses(out)) == [1, 2]
    assert (out / "checkpoints" / "last.pt").is_file()


def test_group_kmeans_and_tuned_text_tower_train(tars: Path) -> None:
    task = _task(tars, grouping="kmeans", tune_text=True)
    torch.manual_seed(0)
    model = task.build_model()
    names = [g.name for g in task.param_groups(model)]
    assert names == ["clip_image", "heads", "clip_text"]
    data = task.train_dataset()
    terms = task.loss(model, task.collate([data[0], data[1]]))
    assert set(terms) == {"loss", "loss_image", "loss_object", "loss_region", "loss_pixel", "pseudo_pixel_share"}
    terms["loss"].backward()
    assert all(np.isfinite(float(v.detach())) for v in terms.values())
    assert model.clip.model.token_embedding.weight.grad is not None  # the text tower trains


def test_undecodable_images_are_replaced_deterministically(tmp_path: Path) -> None:
    from lmseg.captions.sources import TarPairs
    from lmseg.captions.webdataset import SkipLog
    from lmseg.captions.write import write_tars
    from lmseg.models.mgca.data import CropSettings, PhraseLookup

    class Broken:
        caption, image_name = "A broken picture of a cat.", "broken.jpg"

        def read_image_bytes(self) -> bytes:
            return b"not an image"

    pairs = [Broken()] + list(__import__("tests.captions.fixture", fromlist=["x"]).fixture_pairs()[:3])
    source = TarPairs(write_tars(pairs, tmp_path), 0, SkipLog())
    data = CaptionTrainSamples(source, PhraseLookup(None, 6), CropSettings(32), seed=0)
    items = [data[k] for k in range(4)]
    assert data.skips.counts["bad_image"] == 1
    assert all(i["image"].shape == (3, 32, 32) for i in items)
    assert [i["caption"] for i in items] == [data[k]["caption"] for k in range(4)]


def test_bad_training_sections_are_rejected(tars: Path) -> None:
    build = TRAIN_TASKS["mgca"]
    with pytest.raises(LmsegError, match="exactly one of 'tars'"):
        build({"name": "mgca_tiny"}, {}, 0)
    with pytest.raises(LmsegError, match="unknown field"):
        build({"name": "mgca_tiny", "groups": 3}, {"tars": str(tars)}, 0)
    with pytest.raises(LmsegError, match="grouping must be"):
        build({"name": "mgca_tiny", "grouping": "slic"}, {"tars": str(tars)}, 0)
    with pytest.raises(LmsegError, match="unknown MGCA config"):
        build({"name": "mgca_huge"}, {"tars": str(tars)}, 0)
    with pytest.raises(LmsegError, match="data.shards was renamed data.tars"):
        build({"name": "mgca_tiny"}, {"shards": str(tars)}, 0)


@pytest.mark.parametrize("name", ["mgca_tiny_captions", "mgca_vitb16_cc3m"])
def test_shipped_training_configs_build_their_task(name: str) -> None:
    config = load_train_config(ROOT / "configs" / f"{name}.yaml")
    assert config.task == "mgca"
    task = TRAIN_TASKS["mgca"](config.model, config.data, config.run.seed)
    assert task.config.name == config.model["name"]


def test_batch_without_noun_phrases_trains_the_image_level_only() -> None:
    from lmseg.models.mgca import PhraseBatch, build_model, get_config

    torch.manual_seed(0)
    model = build_model(get_config("mgca_tiny")).train()
    terms = model(torch.rand(2, 3, 32, 32), ["It is very nice.", "so good"], PhraseBatch.from_lists([(), ()]))
    assert all(float(terms[k].detach()) == 0.0 for k in ("loss_object", "loss_region", "loss_pixel"))
    assert torch.isclose(terms["loss"], terms["loss_image"])
    terms["loss"].backward()
    assert model.groups.tokens.grad is not None and not model.groups.tokens.grad.any()  # used (DDP), unchanged


def test_training_warns_when_most_captions_have_no_phrase(caplog: pytest.LogCaptureFixture) -> None:
    """Captions without noun phrases train the image level only (the finer losses are 0): the
    task says so before training when most of the first captions have none."""
    from lmseg.captions.sources import TablePairs
    from lmseg.captions.table import FileSample
    from lmseg.models.mgca.data import PhraseLookup
    from lmseg.models.mgca.task import warn_without_phrases
    from tests.captions.fixture import fixture_pairs

    pairs = fixture_pairs()
    with caplog.at_level("WARNING", logger="lmseg.models.mgca"):
        warn_without_phrases(TablePairs(pairs, 0), PhraseLookup(None, 6))
        assert not caplog.records  # the fixture's captions name things
        vague = [FileSample(p.path, "It is very nice.") for p in pairs[:10]] + pairs[10:]
        warn_without_phrases(TablePairs(vague, 0), PhraseLookup(None, 6))
    assert "10 of the first 16 captions have no noun phrase: loss_object, loss_region and loss_pixel" in caplog.text


def test_an_empty_row_of_the_phrase_table_falls_back_to_the_rules() -> None:
    from lmseg.captions.phrase_table import PhraseTable, caption_sha256
    from lmseg.models.mgca.data import PhraseLookup

    caption = "A giraffe eating food from the top of the tree."
    table = PhraseTable([(caption_sha256(caption), ())], frozenset())  # an empty answer of an older table
    assert PhraseLookup(table, 6)(caption) == ("giraffe", "food", "tree")
