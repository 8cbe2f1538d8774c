"""MROVSeg's training recipe for the shared trainer (a :class:`~lmseg.engine.task.TrainTask`;
``TRAIN_TASKS["mrovseg"]`` builds it from a YAML file's ``model:`` and ``data:`` sections).

Data: the project's training samples (:class:`lmseg.data.train_samples.TrainSamples`: scale jitter,
random crop padded with the ignore label, horizontal flip; sample ``k`` a pure function of
``(seed, k)``). Loss: semantic labels -> one binary mask per present class, Hungarian matching
and Mask2Former's losses on every decoder layer (:mod:`.criterion`), against the CLIP text
embeddings of the dataset's vocabulary (frozen text tower, cached).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch.utils.data import default_collate

from lmseg.config_overrides import override_dataclass
from lmseg.data.train_samples import TrainData
from lmseg.engine.task import ParamGroup, TrainTask
from lmseg.errors import LmsegError
from lmseg.models.mrovseg.config import MROVSEG_CONFIGS, LossConfig, MROVSegConfig
from lmseg.models.mrovseg.criterion import SetCriterion, semantic_targets
from lmseg.models.mrovseg.factory import FORMAT, build_model
from lmseg.models.mrovseg.model import MROVSegModel
from lmseg.models.mrovseg.text import TextEmbedder


@dataclass(frozen=True)
class ModelSection:
    """The ``model:`` section of an MROVSeg training YAML.

    Attributes:
        preset: a name of :data:`MROVSEG_CONFIGS` (the architecture's starting point).
        clip_weights: open_clip tag (``openai``), a CLIP checkpoint file, or None (random).
        architecture: :class:`MROVSegConfig` fields to change (e.g. ``{num_queries: 50}``).
        loss: :class:`LossConfig` fields to change (e.g. ``{num_points: 4096}``).
        clip_lr_scale: learning-rate factor of CLIP's attention when it is fine-tuned (LMSeg's
            and CAT-Seg's 0.01).
    """

    preset: str = "mrovseg_vitb16"
    clip_weights: str | None = "openai"
    architecture: MROVSegConfig = field(default_factory=MROVSegConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    clip_lr_scale: float = 0.01


@dataclass(frozen=True)
class DataSection(TrainData):
    """The ``data:`` section: the shared fields of :class:`~lmseg.data.train_samples.TrainData`
    (dataset, root, split, layout, scale augmentation, attribute table) and the crop.

    Attributes:
        crop: side of the square training crop (the working resolution the slices are cut
            from): a multiple of CLIP's patch, at least ``slice_size``. Default 640
            (Mask2Former's COCO-Stuff crop).
        base_short_side: as in ``TrainData``; default 640 (with ``scale_range`` 0.5-2.0: Mask2Former's).
    """

    base_short_side: int = 640
    crop: int = 640


class MROVSegTask(TrainTask):
    """The MROVSeg ``TrainTask`` (see the module docstring)."""

    name = "mrovseg"

    def __init__(self, model: ModelSection, data: DataSection, seed: int) -> None:
        self.model_section = model
        self.data = data
        self.seed = seed
        self.criterion = SetCriterion(model.loss)
        self._dataset = None
        self._text: TextEmbedder | None = None

    @property
    def config(self) -> MROVSegConfig:
        return self.model_section.architecture

    def _open(self):
        if self._dataset is None:
            from lmseg.data import open_dataset

            d = self.data
            self._dataset = open_dataset(d.dataset, d.root, split=d.split, layout=d.layout)
        return self._dataset

    def resolved_sections(self) -> dict[str, dict[str, Any]]:
        """The ``model`` and ``data`` sections with every default filled in (the run's ``config.yaml``)."""
        return {"model": dataclasses.asdict(self.model_section), "data": dataclasses.asdict(self.data)}

    def build_model(self) -> MROVSegModel:
        return build_model(self.config, clip=self.model_section.clip_weights).train()

    def train_dataset(self) -> torch.utils.data.Dataset:
        return self.data.samples(self._open(), crop=self.data.crop, seed=self.seed)

    def collate(self, items: list[Any]) -> Any:
        return default_collate(items)

    def text_embeddings(self, model: MROVSegModel) -> torch.Tensor:
        """``(N, P, D)`` embeddings of the training vocabulary (frozen text tower, cached)."""
        if self._text is None or self._text.clip is not model.clip:
            self._text = TextEmbedder(model.clip, pooling=self.config.prompt_pooling,
                                      attribute_table=self.data.attribute_table)
        return self._text(self._open().vocabulary)

    def loss(self, model: torch.nn.Module, batch: Any) -> dict[str, torch.Tensor]:
        core: MROVSegModel = getattr(model, "module", model)
        device = next(core.decoder.parameters()).device
        images, labels = batch[0].to(device), batch[1].to(device)
        text = self.text_embeddings(core)
        out = model(images, text)
        targets = semantic_targets(labels, text.shape[0], self._open().ignore_index)
        return self.criterion(out.predictions, targets)

    def param_groups(self, model: torch.nn.Module) -> list[ParamGroup]:
        core: MROVSegModel = getattr(model, "module", model)
        groups = [ParamGroup("head", core.head_parameters())]
        if self.config.finetune_clip_attention:
            groups.append(ParamGroup("clip_attention", core.clip_attention_parameters(),
                                     lr_scale=self.model_section.clip_lr_scale))
        return groups

    def model_checkpoint(self, model: torch.nn.Module) -> dict[str, Any]:
        return FORMAT.state(getattr(model, "module", model))

    def load_model_checkpoint(self, model: torch.nn.Module, entry: Mapping[str, Any], source: str) -> None:
        """Restore :meth:`model_checkpoint`'s weights into ``model`` (the Trainer's resume; strict)."""
        FORMAT.load_weights(getattr(model, "module", model), entry, source=source)

    def log_values(self, model: torch.nn.Module) -> dict[str, float]:
        core: MROVSegModel = getattr(model, "module", model)
        return {"logit_scale": float(core.decoder.head.logit_scale.detach().exp())}


def _patch_size(clip_model: str) -> int:
    import open_clip

    import lmseg.backbones.clip  # noqa: F401 - registers the project's open_clip configs (lmseg-tiny-ViT)

    cfg = open_clip.get_model_config(clip_model.replace("/", "-"))
    if cfg is None:
        raise LmsegError(f"unknown open_clip model {clip_model!r}; see open_clip.list_models()")
    return int(cfg["vision_cfg"]["patch_size"])


def build_task(model: Mapping[str, Any] | None, data: Mapping[str, Any] | None, seed: int) -> MROVSegTask:
    """``TRAIN_TASKS["mrovseg"]``: validate the YAML sections into :class:`ModelSection` /
    :class:`DataSection` and build the task.

    Raises:
        LmsegError: unknown preset or fields, invalid values, or a crop the slicing cannot use.
    """
    model = dict(model or {})
    preset = str(model.get("preset", ModelSection.preset))
    if preset not in MROVSEG_CONFIGS:
        raise LmsegError(f"model.preset: unknown MROVSeg preset {preset!r}; known: {', '.join(MROVSEG_CONFIGS)}")
    base = ModelSection(preset=preset, architecture=MROVSEG_CONFIGS[preset])
    section = override_dataclass(base, model, where="mrovseg model")
    data_section = override_dataclass(DataSection(), dict(data or {}), where="mrovseg data")
    arch = section.architecture
    patch = _patch_size(arch.clip_model)
    if data_section.crop % patch or data_section.crop < arch.slice_size:
        raise LmsegError(f"data.crop={data_section.crop} must be a multiple of {arch.clip_model}'s patch size {patch} "
                         f"and at least slice_size={arch.slice_size}")
    return MROVSegTask(section, data_section, seed)


TRAIN_TASKS = {"mrovseg": build_task}
