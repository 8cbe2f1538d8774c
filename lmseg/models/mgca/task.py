"""MGCA's training recipe for the shared trainer (a :class:`~lmseg.engine.task.TrainTask`).

The YAML's ``model:`` section names a preset and may replace any :class:`MGCAConfig` field,
plus ``clip`` (the CLIP weights to start from: an open_clip tag such as ``openai``, a file, or
null for random weights); ``data:`` fills :class:`CaptionDataConfig`. The trainer owns the
optimiser, schedule, AMP, DDP, checkpoints and logging; this task owns the model, the data,
the loss and the parameter groups:

* ``clip_image``: the CLIP image tower at ``image_lr_scale``;
* ``clip_text``: the text tower at ``text_lr_scale``, only when ``tune_text`` (otherwise it
  is frozen and left out);
* ``heads``: the dense head and the group tokens at the full rate.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from lmseg.captions.phrase_table import read_phrase_table
from lmseg.captions.sources import PairSource, TablePairs, TarPairs
from lmseg.captions.table import read_caption_table
from lmseg.captions.webdataset import SkipLog, list_tars
from lmseg.config_overrides import override_dataclass
from lmseg.engine.task import ParamGroup, TrainTask
from lmseg.errors import LmsegError
from lmseg.models.mgca.config import MGCAConfig, config_from_dict
from lmseg.models.mgca.data import CaptionTrainSamples, CropSettings, PhraseLookup, collate
from lmseg.models.mgca.factory import FORMAT, build_model
from lmseg.models.mgca.model import MGCAModel, PhraseBatch

log = logging.getLogger(__name__)

PHRASE_CHECK_CAPTIONS = 256  # captions sampled at start to see whether the finer losses can train


@dataclass(frozen=True)
class CaptionDataConfig:
    """Where the image-caption pairs come from (exactly one of ``tars`` and ``table``).

    Attributes:
        tars: webdataset tar files (img2dataset output): a folder, a glob or a file.
        table: a CSV or Parquet table of image paths (relative to the table) and captions.
        image_column / caption_column: the table's column names.
        phrase_table: a caption-phrase table folder from ``pipelines.parse_captions`` (the
            LLM stage); None parses captions with the rules.
        crop_scale: area range of the random resized crop (0.5-1.0: a crop keeps most of what
            the caption describes; CLIP-style training uses 0.9-1.0, GroupViT 0.08-1.0).

    Data-loader workers are the trainer's ``run.workers``.
    """

    tars: str | None = None
    table: str | None = None
    image_column: str = "image"
    caption_column: str = "caption"
    phrase_table: str | None = None
    crop_scale: tuple[float, float] = (0.5, 1.0)

    def __post_init__(self) -> None:
        if (self.tars is None) == (self.table is None):
            raise LmsegError("data: give exactly one of 'tars' (webdataset tar files) and 'table' (CSV/Parquet)")
        if len(self.crop_scale) != 2 or not 0 < self.crop_scale[0] <= self.crop_scale[1] <= 1:
            raise LmsegError("data.crop_scale must be two numbers 0 < low <= high <= 1")


def _unwrap(model: torch.nn.Module) -> MGCAModel:
    return getattr(model, "module", model)  # DDP keeps the model in .module


class MGCATask(TrainTask):
    """The ``TrainTask`` of MGCA (see the module docstring).

    Args:
        config: the model.
        data: the data.
        clip: CLIP weights to start from (tag, file or None for random).
        seed: the data order's seed.
    """

    name = "mgca"

    def __init__(self, config: MGCAConfig, data: CaptionDataConfig, clip: str | None, seed: int) -> None:
        self.config = config
        self.data = data
        self.clip = clip
        self.seed = seed

    def build_model(self) -> torch.nn.Module:
        model = build_model(self.config, clip=self.clip).train()
        if not self.config.tune_text:
            for name, param in model.clip.model.named_parameters():
                if not name.startswith("visual."):
                    param.requires_grad_(False)
        return model

    def pair_source(self) -> PairSource:
        """The pairs (counted problems are logged)."""
        skips = SkipLog()
        if self.data.tars is not None:
            return TarPairs(list_tars(self.data.tars), self.seed, skips)
        rows = read_caption_table(self.data.table, skips, image_column=self.data.image_column,
                                  caption_column=self.data.caption_column)
        return TablePairs(rows, self.seed)

    def train_dataset(self) -> torch.utils.data.Dataset:
        table = read_phrase_table(Path(self.data.phrase_table)) if self.data.phrase_table else None
        if table is not None and not len(table):
            raise LmsegError(f"the caption-phrase table {self.data.phrase_table} is empty or missing; "
                             "run `python -m pipelines.parse_captions` first")
        crop = CropSettings(self.config.input_size, scale=tuple(self.data.crop_scale))
        source, phrases = self.pair_source(), PhraseLookup(table, self.config.max_phrases)
        warn_without_phrases(source, phrases)
        return CaptionTrainSamples(source, phrases, crop, self.seed)

    def collate(self, items: list[Any]) -> Any:
        return collate(items)

    def loss(self, model: torch.nn.Module, batch: Any) -> dict[str, torch.Tensor]:
        images = batch["images"].to(next(model.parameters()).device, non_blocking=True)
        return model(images, batch["captions"], PhraseBatch.from_lists(batch["phrases"]))

    def param_groups(self, model: torch.nn.Module) -> list[ParamGroup]:
        net = _unwrap(model)
        image = [p for n, p in net.clip.model.named_parameters() if n.startswith("visual.")]
        heads = [p for n, p in net.named_parameters() if not n.startswith("clip.")]
        groups = [ParamGroup("clip_image", image, self.config.image_lr_scale), ParamGroup("heads", heads)]
        if self.config.tune_text:
            text = [p for n, p in net.clip.model.named_parameters()
                    if not n.startswith("visual.") and n not in ("logit_scale", "logit_bias")]
            groups.append(ParamGroup("clip_text", text, self.config.text_lr_scale))
        return [g for g in groups if g.params]

    def model_checkpoint(self, model: torch.nn.Module) -> dict[str, Any]:
        return FORMAT.state(_unwrap(model))

    def load_model_checkpoint(self, model: torch.nn.Module, entry: Mapping[str, Any], source: str) -> None:
        """Restore the weights of :meth:`model_checkpoint`'s entry (strictly; used on resume)."""
        FORMAT.load_weights(_unwrap(model), entry, source=source)

    def log_values(self, model: torch.nn.Module) -> dict[str, float]:
        return {}


def warn_without_phrases(source: PairSource, phrases: PhraseLookup) -> None:
    """Warn when most of the first captions of the training order have no noun phrase: the
    object, region and pixel losses are 0 for such a caption (only the image level trains)."""
    count = min(PHRASE_CHECK_CAPTIONS, len(source))
    empty = sum(not phrases(source.pair(0, p).caption) for p in range(count))
    if empty * 2 > count:
        log.warning("%d of the first %d captions have no noun phrase: loss_object, loss_region and loss_pixel are 0 "
                    "for them and only loss_image trains; give data.phrase_table from a larger model, or captions "
                    "that name things", empty, count)


def build_task(model_section: Mapping[str, Any], data_section: Mapping[str, Any], seed: int) -> MGCATask:
    """``TRAIN_TASKS["mgca"]``: validate the YAML sections into typed configs.

    Raises:
        LmsegError: unknown keys or bad values (the message names them).
    """
    if not isinstance(model_section, Mapping) or not isinstance(data_section, Mapping):
        raise LmsegError("mgca training needs mappings 'model:' and 'data:' in the config")
    if "shards" in data_section:
        raise LmsegError("data.shards was renamed data.tars (webdataset tar files; 'shard' means a part of the work)")
    section = dict(model_section)
    clip = section.pop("clip", None)
    config = config_from_dict(section)
    # the base names a placeholder source only to be a valid instance; the section replaces it
    data = override_dataclass(CaptionDataConfig(tars="-"), {"tars": None, **data_section},
                              where="training config: data")
    return MGCATask(config, data, None if clip is None else str(clip), int(seed))


TRAIN_TASKS = {"mgca": build_task}
