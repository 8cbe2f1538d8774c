"""Adding a method touches only its own folder: a toy method written to a temporary folder (a
model, a predictor, a task, a variants table and a config; no other file of the project is
edited) is listed by ``lmseg.available_segmenters()``, builds through ``create_segmenter``,
trains a step through the registry's ``create_train_task`` and the shared ``Trainer``, and its
checkpoint loads back through the one checkpoint path of :mod:`lmseg.models.building`.

The discovery rule (:mod:`lmseg.registry`): every sub-package of ``lmseg.models`` is a method
package. The temporary folder joins ``lmseg.models.__path__``, so ``toyseg`` is found as
``lmseg.models.toyseg``, exactly as a folder ``lmseg/models/toyseg/`` would be.
"""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="needs the vision environment (torch)")

import lmseg  # noqa: E402
import lmseg.models  # noqa: E402
from lmseg.engine.config import config_from_data  # noqa: E402
from lmseg.engine.trainer import Trainer  # noqa: E402
from lmseg.errors import LmsegError  # noqa: E402
from lmseg.registry import create_train_task, method_packages  # noqa: E402

#: The whole toy method, file by file, as a newcomer would write it.
TOY_METHOD = {
    "__init__.py": '''
        """Toy: a per-pixel linear classifier against name embeddings (for the skeleton's test)."""
        from lmseg.models.toyseg.task import TRAIN_TASKS
        from lmseg.models.toyseg.variants import SEGMENTERS, VARIANTS
        ''',
    "config.py": '''
        from dataclasses import dataclass

        from lmseg.models import building


        @dataclass(frozen=True)
        class ToyConfig(building.ConfigData):
            name: str = "toy_small"
            width: int = 8


        @dataclass(frozen=True)
        class ToySettings:
            class_list: str = ""


        TOY_CONFIGS = {"toy_small": ToyConfig(), "toy_wide": ToyConfig(name="toy_wide", width=16)}


        def get_config(name):
            return building.named_preset(TOY_CONFIGS, name, what="toy config")


        def config_from_dict(data):
            return building.config_from_dict(TOY_CONFIGS, data, default="toy_small", what="toy config")
        ''',
    "model.py": '''
        import hashlib

        import torch
        from torch import nn

        from lmseg.models.building import CheckpointFormat
        from lmseg.models.toyseg.config import config_from_dict


        def name_embedding(name, width):
            """A fixed pseudo-text embedding of a class name."""
            seed = int.from_bytes(hashlib.sha256(name.encode()).digest()[:4], "little")
            return torch.randn(width, generator=torch.Generator().manual_seed(seed))


        class ToyModel(nn.Module):
            def __init__(self, config):
                super().__init__()
                self.config = config
                self.pixels = nn.Conv2d(3, config.width, 1)

            def forward(self, images, text):
                """(B, 3, H, W) in [0, 1], (N, width) -> (B, N, H, W) logits."""
                return torch.einsum("bchw,nc->bnhw", self.pixels(images), text)


        def build_model(config):
            return ToyModel(config).eval()


        FORMAT = CheckpointFormat("toy", 1, "Toy", read_config=config_from_dict)
        ''',
    "predictor.py": '''
        import dataclasses

        import torch

        from lmseg.inference import as_rgb_array, as_vocabulary
        from lmseg.inference.segmenter import segmentation_from_scores
        from lmseg.models.building import to_dict
        from lmseg.models.presets import published_queries
        from lmseg.models.toyseg.model import name_embedding


        class ToyPredictor:
            def __init__(self, model, settings):
                self.model, self.inference = model.eval(), settings

            def settings(self):
                return {"model": to_dict(self.model.config), "inference": dataclasses.asdict(self.inference)}

            @torch.no_grad()
            def _scores(self, image, vocabulary):
                vocab = as_vocabulary(vocabulary)
                names = published_queries(self.inference.class_list, vocab) or {}
                text = torch.stack([name_embedding(names.get(i, c.names)[0], self.model.config.width)
                                    for i, c in enumerate(vocab.classes)])
                rgb = torch.from_numpy(as_rgb_array(image)).permute(2, 0, 1)[None].float() / 255
                return vocab, self.model(rgb, text)[0].softmax(0)

            def logits(self, image, vocabulary):
                return self._scores(image, vocabulary)[1].numpy()

            def predict(self, image, vocabulary, *, return_scores=False):
                vocab, scores = self._scores(image, vocabulary)
                return segmentation_from_scores(scores, vocab, return_scores=return_scores)
        ''',
    "task.py": '''
        import torch

        from lmseg.engine.task import ParamGroup, TrainTask
        from lmseg.models.toyseg.config import config_from_dict
        from lmseg.models.toyseg.model import FORMAT, build_model, name_embedding

        NAMES = ("dark", "bright")


        class Pixels(torch.utils.data.Dataset):
            """Item k: a random 16 x 16 image (from (seed, k)) and its dark / bright labels."""

            def __init__(self, seed):
                self.seed = seed

            def __len__(self):
                return 2**31

            def __getitem__(self, k):
                image = torch.rand(3, 16, 16, generator=torch.Generator().manual_seed(self.seed * 1000 + k))
                return image, (image.mean(0) > 0.5).long()


        class ToyTask(TrainTask):
            name = "toy"

            def __init__(self, config, seed):
                self.config, self.seed = config, seed

            def build_model(self):
                return build_model(self.config).train()

            def train_dataset(self):
                return Pixels(self.seed)

            def collate(self, items):
                return torch.utils.data.default_collate(items)

            def loss(self, model, batch):
                images, labels = batch
                text = torch.stack([name_embedding(n, self.config.width) for n in NAMES])
                return {"loss": torch.nn.functional.cross_entropy(model(images, text), labels)}

            def param_groups(self, model):
                return [ParamGroup("all", list(model.parameters()))]

            def model_checkpoint(self, model):
                return FORMAT.state(model)

            def load_model_checkpoint(self, model, entry, source):
                FORMAT.load_weights(model, entry, source=source)

            def log_values(self, model):
                return {}


        def build_task(model, data, seed):
            return ToyTask(config_from_dict(dict(model or {})), seed)


        TRAIN_TASKS = {"toy": build_task}
        ''',
    "variants.py": '''
        from lmseg.models.building import Variant, segmenters, variant_model, variant_settings
        from lmseg.models.presets import catseg_inference
        from lmseg.models.toyseg.config import ToySettings
        from lmseg.models.toyseg.model import FORMAT, build_model
        from lmseg.models.toyseg.predictor import ToyPredictor

        VARIANTS = {
            "toy_tiny": Variant("toy_small", seeded=True, doc="A toy with random weights."),
            "toy_trained": Variant("toy_wide", train="configs/toy.yaml", doc="A trained toy."),
        }


        def _build(name, variant, *, checkpoint=None, seed=0, device="cpu", inference=None, benchmark=None):
            settings = variant_settings(variant, ToySettings(), inference, benchmark,
                                        lambda b: catseg_inference(b, class_list_only=True), where="toy settings")
            model = variant_model(name, variant, FORMAT, checkpoint, seed, build=build_model, device=device)
            return ToyPredictor(model, settings)


        SEGMENTERS = segmenters(VARIANTS, _build)
        ''',
}

IMAGE = np.random.default_rng(0).integers(0, 256, (24, 20, 3), dtype=np.uint8)


@pytest.fixture
def toy_method(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The toy method's folder, on ``lmseg.models.__path__`` for this test only."""
    folder = tmp_path / "methods" / "toyseg"
    folder.mkdir(parents=True)
    for name, text in TOY_METHOD.items():
        (folder / name).write_text(textwrap.dedent(text).lstrip())
    monkeypatch.setattr(lmseg.models, "__path__", [*lmseg.models.__path__, str(folder.parent)])
    yield folder
    for module in [m for m in sys.modules if m.startswith("lmseg.models.toyseg")]:
        del sys.modules[module]


def test_a_new_method_is_found_builds_trains_and_loads_its_checkpoint(toy_method: Path, tmp_path: Path) -> None:
    assert "lmseg.models.toyseg" in method_packages()
    assert {"toy_tiny", "toy_trained"} <= set(lmseg.available_segmenters())

    # builds through the registry, with random weights drawn from seed= (the same seed, the same model)
    seg = lmseg.create_segmenter("toy_tiny", seed=3)
    assert seg.predict(IMAGE, ["cat", "dog"]).label_map.shape == (24, 20)
    np.testing.assert_array_equal(seg.logits(IMAGE, ["cat"]), lmseg.create_segmenter("toy_tiny", seed=3).logits(
        IMAGE, ["cat"]))
    assert seg.settings() == {"model": {"name": "toy_small", "width": 8}, "inference": {"class_list": ""}}
    # its options are those of its row: no seed= for a trained variant, nothing unknown
    with pytest.raises(TypeError, match="toy_trained\\(\\) got an unexpected keyword argument 'seed'"):
        lmseg.create_segmenter("toy_trained", seed=1)
    with pytest.raises(LmsegError, match="toy_trained needs a trained Toy checkpoint.*configs/toy.yaml"):
        lmseg.create_segmenter("toy_trained")
    # the shared benchmark presets and settings checks apply
    preset = lmseg.create_segmenter("toy_tiny", benchmark="ade150")
    assert preset.settings()["inference"]["class_list"] == "catseg/ade150"
    with pytest.raises(LmsegError, match="toy settings: unknown field"):
        lmseg.create_segmenter("toy_tiny", inference={"nope": 1})

    # trains through the registry's task and the shared Trainer
    def config(out: Path):
        return config_from_data({
            "task": "toy", "run": {"max_steps": 2, "checkpoint_every": 1, "output_dir": str(out), "device": "cpu",
                                   "workers": 0},
            "optim": {"lr": 0.1, "warmup_steps": 0, "batch_size": 2, "amp": False},
            "model": {"name": "toy_wide"}, "data": {},
        }, where="test")

    out = tmp_path / "run"
    summary = Trainer(config(out), create_train_task(config(out))).fit()
    assert summary["step"] == 2 and np.isfinite(summary["loss"])

    # the training checkpoint loads through the one checkpoint path
    last = out / "checkpoints" / "last.pt"
    trained = lmseg.create_segmenter("toy_trained", checkpoint=last)
    saved = torch.load(last, weights_only=True)["model"]["state_dict"]
    assert all(torch.equal(v, saved[k]) for k, v in trained.model.state_dict().items())
    with pytest.raises(LmsegError, match="is a checkpoint of 'toy_wide', not 'toy_small'"):
        lmseg.create_segmenter("toy_tiny", checkpoint=last)
    # ... and a run resumed from step 1 restores it through the task's declared hook: the same step 2
    assert "trained" not in torch.load(out / "checkpoints" / "step_0000001.pt", weights_only=True)
    again = tmp_path / "again"
    resumed = Trainer(config(again), create_train_task(config(again))).fit(resume=out / "checkpoints" / "step_0000001.pt")
    assert resumed["step"] == 2 and resumed["loss"] == summary["loss"]


def test_a_checkpoint_of_something_else_is_described(toy_method: Path, tmp_path: Path) -> None:
    sam_like = tmp_path / "sam.pth"
    torch.save({"image_encoder.patch_embed.proj.weight": torch.zeros(1)}, sam_like)
    with pytest.raises(LmsegError, match="is not a checkpoint of Toy: it looks like a SAM checkpoint"):
        lmseg.create_segmenter("toy_trained", checkpoint=sam_like)
    other = tmp_path / "lmseg.pt"
    torch.save({"format": "lmseg", "format_version": 1, "config": {"name": "lmseg_tiny"}}, other)
    with pytest.raises(LmsegError, match="an 'lmseg' checkpoint .*config 'lmseg_tiny'\\); use create_segmenter\\('lmseg_tiny'"):
        lmseg.create_segmenter("toy_trained", checkpoint=other)
    newer = tmp_path / "newer.pt"
    torch.save({"format": "toy", "format_version": 2, "config": {}}, newer)
    with pytest.raises(LmsegError, match="format version 2; this lmseg reads version 1"):
        lmseg.create_segmenter("toy_trained", checkpoint=newer)


def test_a_name_defined_twice_is_an_error(toy_method: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    variants = toy_method / "variants.py"
    variants.write_text(variants.read_text().replace('"toy_tiny": Variant', '"lmseg_tiny": Variant'))
    with pytest.raises(LmsegError, match="'lmseg_tiny' is defined by both lmseg.models.lmseg and lmseg.models.toyseg"):
        lmseg.available_segmenters()
