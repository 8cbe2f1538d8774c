"""The methods the vocabulary and GPU benchmarks measure, as one table (:data:`CASES`).

Each :class:`Case` builds a method's real architecture with random weights (speed and memory
do not depend on weight values) and gives it random class embeddings of any size (text
encoding is a one-off per vocabulary, cached on disk in real use; it is not timed). A new
method (or backbone) joins both benchmarks by adding one row.

Two input sizes per method:

* ``small``: what a 2-core CPU runs in tens of seconds (LMSeg one 384 view, as
  ``bench_lmseg``; MROVSeg a 384 x 384 working resolution; Trident short side 336, 2 windows);
* ``published``: the method's published test protocol (LMSeg and MROVSeg: short side 640,
  CAT-Seg's ADE protocol, a 640 x 853 image; Trident: its ADE-150 short side 576 on a
  512 x 683 image).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F

from lmseg.inference.precision import Amp

__all__ = ["CASES", "Case", "Setup"]


@dataclass(frozen=True)
class Setup:
    """How a case is built: device, class early rejection (K, 0 = off), input size, autocast."""

    device: torch.device
    max_classes: int = 0
    published: bool = False
    amp: Amp = False


@dataclass(frozen=True)
class Case:
    """One method of the benchmarks.

    Attributes:
        name: the segmenter it stands for (``lmseg_vitb16``).
        build: ``Setup`` -> a predictor with random weights.
        random_text: ``(predictor, N)`` -> installs N random class embeddings as its text side.
        small / published: ``(H, W)`` of the benchmark image at each size.
        note: what one image means at each size, for the table's header.
    """

    name: str
    build: Callable[[Setup], object]
    random_text: Callable[[object, int], None]
    small: tuple[int, int]
    published: tuple[int, int]
    note: str

    def image_size(self, setup: Setup) -> tuple[int, int]:
        return self.published if setup.published else self.small


def _unit_rows(*shape: int, device: torch.device) -> torch.Tensor:
    return F.normalize(torch.randn(*shape, generator=torch.Generator().manual_seed(1)), dim=-1).to(device)


# ---- LMSeg ---------------------------------------------------------------------------------

def _lmseg(setup: Setup):
    from lmseg.models.lmseg import InferenceConfig, LMSegPredictor, build_model, get_config

    torch.manual_seed(0)
    model = build_model(get_config("lmseg_vitb16"), device=setup.device)
    protocol = InferenceConfig() if setup.published else InferenceConfig(short_side=384, global_view=False)
    return LMSegPredictor(model, inference=replace(protocol, max_classes=setup.max_classes), cache=None,
                          amp=setup.amp)


def _lmseg_text(predictor, n: int) -> None:
    cfg = predictor.model.config
    text = _unit_rows(n, cfg.prompt_channels, predictor.model.clip.embed_dim, device=predictor.device)
    predictor.text_embeddings = lambda vocabulary: text


# ---- MROVSeg -------------------------------------------------------------------------------

def _mrovseg(setup: Setup):
    from lmseg.models.mrovseg import InferenceConfig, MROVSegPredictor, build_model, get_config

    torch.manual_seed(0)
    model = build_model(get_config("mrovseg_vitb16"), device=setup.device)
    protocol = InferenceConfig() if setup.published else InferenceConfig(short_side=None)
    return MROVSegPredictor(model, inference=replace(protocol, max_classes=setup.max_classes), cache=None,
                            amp=setup.amp)


def _mrovseg_text(predictor, n: int) -> None:
    text = _unit_rows(n, 1, predictor.model.clip.embed_dim, device=predictor.device)
    predictor.text = lambda vocabulary, queries=None: text


# ---- Trident -------------------------------------------------------------------------------

def _trident(setup: Setup):
    from lmseg.backbones.clip_factory import create_dense_clip
    from lmseg.backbones.dino import create_dense_dino
    from lmseg.backbones.sam import create_sam_encoder
    from lmseg.inference.classes import ClassBudget
    from lmseg.models.trident import TridentConfig, TridentPredictor
    from lmseg.models.trident.factory import assemble

    torch.manual_seed(0)
    clip = create_dense_clip("ViT-B-16", pretrained=None, quick_gelu=True, interpolation_offset=0.1)
    dino = create_dense_dino(weights=None, interpolation_offset=0.1)
    sam = create_sam_encoder("vit_b", weights=None)
    config = TridentConfig(short_side=576 if setup.published else 336)
    half = setup.device.type == "cuda" and setup.amp is not False  # the published runs: fp16 encoders
    model = assemble(clip, dino, sam, config, setup.device, half)
    return TridentPredictor(model, device=setup.device, cache=None,
                            inference=ClassBudget(max_classes=setup.max_classes))


def _trident_text(predictor, n: int) -> None:
    from lmseg.text.ensemble import QueryEmbeddings
    from lmseg.vocab import vocabulary_from_names

    dim = predictor.model.clip.embed_dim
    text = QueryEmbeddings(_unit_rows(n, dim, device=predictor.device),
                           torch.arange(n, device=predictor.device), tuple(f"class {i}" for i in range(n)), n)
    predictor.text_embeddings = lambda vocabulary: (vocabulary_from_names(list(text.queries)), text)


CASES: dict[str, Case] = {
    "lmseg_vitb16": Case("lmseg_vitb16", _lmseg, _lmseg_text, (384, 384), (640, 853),
                         "small: one 384 view; published: short side 640, 6 windows of 384 + global view"),
    "mrovseg_vitb16": Case("mrovseg_vitb16", _mrovseg, _mrovseg_text, (384, 384), (640, 853),
                           "small: 384 x 384, 224 slices + global view; published: short side 640"),
    "trident_vitb16": Case("trident_vitb16", _trident, _trident_text, (336, 448), (512, 683),
                           "small: short side 336, 2 windows of 336; published: ADE-150's short side 576"),
}
