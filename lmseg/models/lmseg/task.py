"""LMSeg's training task for the shared :class:`~lmseg.engine.trainer.Trainer` (``task: lmseg``).

CAT-Seg's protocol by default (SEEDS.md): COCO-Stuff-171, 384 crops, CLIP image-tower
attention at 0.01x the learning rate, the rest of CLIP and all of SAM frozen, per-class
binary cross-entropy (:func:`~lmseg.models.lmseg.model.segmentation_loss`). The config
sections it reads:

* ``model:`` :class:`LMSegTrainModel` (preset, LMSegConfig overrides, CLIP / SAM weights,
  CLIP attention lr multiplier);
* ``data:`` :class:`LMSegTrainData` (dataset, root, split, layout, scale augmentation,
  attribute table). Samples come from :class:`~lmseg.data.train_samples.TrainSamples`.

Text embeddings of the dataset's vocabulary are computed once, at the first step, on the
training device with the text tower in eval mode (through the shared embedding cache); they
are not trained.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch

from lmseg.config_overrides import override_dataclass
from lmseg.data.train_samples import TrainData
from lmseg.engine.task import ParamGroup, TrainTask
from lmseg.models.lmseg.config import LMSegConfig, get_config
from lmseg.models.lmseg.factory import FORMAT, build_model
from lmseg.models.lmseg.model import LMSegModel, segmentation_loss

__all__ = ["LMSegTask", "LMSegTrainData", "LMSegTrainModel", "TRAIN_TASKS", "build_task"]


@dataclass(frozen=True)
class LMSegTrainModel:
    """The ``model:`` section.

    Attributes:
        preset: a name of :data:`lmseg.models.lmseg.LMSEG_CONFIGS`.
        overrides: LMSegConfig fields to change (e.g. ``{prompt_pooling: mean}``).
        clip_weights: open_clip tag (``openai``) or CLIP checkpoint file; None = random.
        sam_weights: known SAM name (``sam_vit_b``) or file; None = random (must be None for tiny).
        clip_lr_mult: learning-rate scale of the CLIP attention projections.
    """

    preset: str = "lmseg_vitb16"
    overrides: Mapping[str, Any] = field(default_factory=dict)
    clip_weights: str | None = "openai"
    sam_weights: str | None = "sam_vit_b"
    clip_lr_mult: float = 0.01

    def __post_init__(self) -> None:
        if self.clip_lr_mult < 0:
            raise ValueError(f"clip_lr_mult must be >= 0, got {self.clip_lr_mult}")


@dataclass(frozen=True)
class LMSegTrainData(TrainData):
    """The ``data:`` section: the shared fields of :class:`~lmseg.data.train_samples.TrainData`
    (crops are the model's ``input_size``)."""


class LMSegTask(TrainTask):
    """LMSeg training (see the module docstring). Build it with :func:`build_task`."""

    name = "lmseg"

    def __init__(self, model: LMSegTrainModel, data: LMSegTrainData, seed: int) -> None:
        from lmseg.data import open_dataset

        self.model_section, self.data_section, self.seed = model, data, seed
        self.config: LMSegConfig = override_dataclass(get_config(model.preset), dict(model.overrides),
                                                      where="LMSeg config")
        self.dataset = open_dataset(data.dataset, data.root, split=data.split, layout=data.layout)
        self._text: dict[torch.device, torch.Tensor] = {}

    def resolved_sections(self) -> dict[str, dict[str, Any]]:
        """The ``model`` and ``data`` sections with every default filled in."""
        return {"model": dataclasses.asdict(self.model_section), "data": dataclasses.asdict(self.data_section)}

    def build_model(self) -> LMSegModel:
        self._text = {}
        model = build_model(self.config, clip=self.model_section.clip_weights, sam=self.model_section.sam_weights)
        return model.train()

    def text_embeddings(self, model: LMSegModel, device: torch.device) -> torch.Tensor:
        """``(N, P, D)`` prompt embeddings of the dataset's vocabulary on ``device`` (computed once)."""
        if device not in self._text:
            from lmseg.attributes.reader import load_attributes
            from lmseg.text.cache import cached_prompt_embeddings
            from lmseg.text.prompts import build_prompts

            table = self.data_section.attribute_table
            attrs = load_attributes(self.dataset.vocabulary.name, "", path=table) if table else None
            prompts = build_prompts(self.dataset.vocabulary, attrs, pooling=self.config.prompt_pooling)
            was_training = model.training
            model.eval()
            with torch.autocast(device.type, enabled=False):
                self._text[device] = cached_prompt_embeddings(prompts, attrs, model.clip).to(device)
            model.train(was_training)
        return self._text[device]

    def train_dataset(self):
        return self.data_section.samples(self.dataset, crop=self.config.input_size, seed=self.seed)

    def collate(self, items: list[Any]) -> Any:
        return torch.utils.data.default_collate(items)

    def loss(self, model: torch.nn.Module, batch: Any) -> dict[str, torch.Tensor]:
        images, labels = batch
        text = self.text_embeddings(getattr(model, "module", model), images.device)
        logits = model(images, text)
        return {"loss": segmentation_loss(logits.float(), labels, ignore_index=self.dataset.ignore_index)}

    def param_groups(self, model: torch.nn.Module) -> list[ParamGroup]:
        groups = [ParamGroup("head", [p for p in model.head.parameters() if p.requires_grad])]
        clip = [p for p in model.clip_attention_parameters() if p.requires_grad]
        if clip:
            groups.append(ParamGroup("clip", clip, lr_scale=self.model_section.clip_lr_mult))
        return groups

    def model_checkpoint(self, model: torch.nn.Module) -> dict[str, Any]:
        return FORMAT.state(model)

    def load_model_checkpoint(self, model: torch.nn.Module, entry: Mapping[str, Any], source: str) -> None:
        """Restore the weights of :meth:`model_checkpoint`'s entry (used on resume)."""
        FORMAT.load_weights(model, entry, source=source)

    def log_values(self, model: torch.nn.Module) -> dict[str, float]:
        return {"w": model.fusion_weight}


def build_task(model: Mapping[str, Any], data: Mapping[str, Any], seed: int) -> LMSegTask:
    """The ``TRAIN_TASKS`` builder: validates the sections, opens the dataset (no model is built yet).

    Raises:
        LmsegError: unknown keys, wrong types or values, unknown preset, missing dataset.
    """
    return LMSegTask(override_dataclass(LMSegTrainModel(), model, where="model"),
                     override_dataclass(LMSegTrainData(), data, where="data"), seed)


TRAIN_TASKS = {"lmseg": build_task}
