"""The methods the vocabulary and GPU benchmarks measure, as one table (:data:`CASES`).

Each :class:`Case` builds a method's real architecture with random weights (speed and memory
do not depend on weight values) and gives it random class embeddings of any size (text
encoding is a one-off per vocabulary, cached on disk in real use; it is not timed; sam3
encodes its prompts once per vocabulary, in the untimed warm-up image). A new method (or
backbone) joins both benchmarks by adding one row.

Three input sizes per method (:data:`SIZES`):

* ``tiny``: the method's tiny random variant (``lmseg_tiny``, ...) at its own tiny protocol,
  for ``bench_gpu --smoke`` (seconds on a CPU);
* ``small``: what a 2-core CPU runs in tens of seconds (LMSeg one 384 view, as
  ``bench_lmseg``; MROVSeg a 384 x 384 working resolution; Trident short side 336, 2 windows;
  MGCA short side 224; SAM 3 at 448);
* ``published``: the method's published test protocol (LMSeg and MROVSeg: short side 640,
  CAT-Seg's ADE protocol, a 640 x 853 image; Trident: its ADE-150 short side 576 on a
  512 x 683 image; MGCA: TCL's short side 448 on a 512 x 683 image; SAM 3: its 1008 square).
"""

from __future__ import annotations

import resource
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from lmseg.inference.precision import Amp, autocast

__all__ = ["CASES", "DEFAULT_K", "SIZES", "Case", "Measured", "Setup", "Size", "cpu_seconds", "measure_images"]

Size = Literal["tiny", "small", "published"]
SIZES: tuple[Size, ...] = ("tiny", "small", "published")

#: K of class early rejection when the benchmarks turn it on: CAT-Seg keeps 256 at inference;
#: 64 covers the classes present in an ADE image (at most a few dozen) with room to spare.
DEFAULT_K = 64


@dataclass(frozen=True)
class Setup:
    """How a case is built: device, class early rejection (K, 0 = off), input size, autocast."""

    device: torch.device
    max_classes: int = 0
    size: Size = "small"
    amp: Amp = False


@dataclass(frozen=True)
class Case:
    """One method of the benchmarks.

    Attributes:
        name: the segmenter it stands for (``lmseg_vitb16``).
        tiny: the tiny random variant the ``tiny`` size builds (``lmseg_tiny``).
        build: ``Setup`` -> a predictor with random weights.
        random_text: ``(predictor, N)`` -> installs N random class embeddings as its text side.
        images: ``(H, W)`` of the benchmark image at each size of :data:`SIZES`.
        note: what one image means at each size, for the table's header.
        rejects: whether the method has class early rejection (``inference.max_classes``).
        precision: what ``amp`` means for it on CUDA (its own autocast rule, or the
            benchmark's ``torch.autocast`` around ``predict`` where its predictor has none).
    """

    name: str
    tiny: str
    build: Callable[[Setup], object]
    random_text: Callable[[object, int], None]
    images: dict[str, tuple[int, int]]
    note: str
    rejects: bool = True
    precision: str = "the predictor's amp: bf16 autocast"

    def image_size(self, setup: Setup) -> tuple[int, int]:
        return self.images[setup.size]

    @property
    def own_autocast(self) -> bool:
        """Whether its predictor applies ``amp`` itself (else the benchmark wraps ``predict``)."""
        return self.precision.startswith("the predictor's")


def random_class_embeddings(n: int, channels: int, dim: int, device: torch.device):
    """A :class:`~lmseg.text.embedder.ClassEmbeddings` of ``n`` classes: ``(n, channels, dim)``
    random unit rows (seeded), one row per class."""
    from lmseg.text.embedder import ClassEmbeddings

    rows = F.normalize(torch.randn(n, channels, dim, generator=torch.Generator().manual_seed(1)), dim=-1)
    return ClassEmbeddings(rows.to(device), torch.arange(n, device=device), tuple(f"class {i}" for i in range(n)),
                           n, "random", "")


def _text_of(channels: Callable[[object], int]) -> Callable[[object, int], None]:
    """``random_text`` for a predictor whose ``text_embeddings(vocabulary)`` the methods call."""

    def install(predictor, n: int) -> None:
        emb = random_class_embeddings(n, channels(predictor), predictor.model.clip.embed_dim, predictor.device)
        predictor.text_embeddings = lambda vocabulary: emb

    return install


def _tiny(variant: str, rejects: bool = True) -> Callable[[Setup], object]:
    """The tiny random variant from the registry, with K and (where the predictor has one) ``amp``."""

    def build(setup: Setup):
        from lmseg import create_segmenter

        options = {"inference": {"max_classes": setup.max_classes}} if rejects else {}
        predictor = create_segmenter(variant, device=str(setup.device), seed=0, **options)
        if hasattr(predictor, "amp"):
            predictor.amp = setup.amp
        return predictor

    return build


def _sized(tiny: Callable[[Setup], object], full: Callable[[Setup], object]) -> Callable[[Setup], object]:
    return lambda setup: tiny(setup) if setup.size == "tiny" else full(setup)


# ---- LMSeg ---------------------------------------------------------------------------------

def _lmseg(setup: Setup):
    from lmseg.models.lmseg import InferenceConfig, LMSegPredictor, build_model, get_config

    torch.manual_seed(0)
    model = build_model(get_config("lmseg_vitb16"), device=setup.device)
    protocol = InferenceConfig() if setup.size == "published" else InferenceConfig(short_side=384, global_view=False)
    return LMSegPredictor(model, inference=replace(protocol, max_classes=setup.max_classes), cache=None,
                          amp=setup.amp)


# ---- MROVSeg -------------------------------------------------------------------------------

def _mrovseg(setup: Setup):
    from lmseg.models.mrovseg import InferenceConfig, MROVSegPredictor, build_model, get_config

    torch.manual_seed(0)
    model = build_model(get_config("mrovseg_vitb16"), device=setup.device)
    protocol = InferenceConfig() if setup.size == "published" else InferenceConfig(short_side=None)
    return MROVSegPredictor(model, inference=replace(protocol, max_classes=setup.max_classes), cache=None,
                            amp=setup.amp)


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
    config = TridentConfig(short_side=576 if setup.size == "published" else 336)
    half = setup.device.type == "cuda" and setup.amp is not False  # the published runs: fp16 encoders
    model = assemble(clip, dino, sam, config, setup.device, half)
    return TridentPredictor(model, device=setup.device, cache=None,
                            inference=ClassBudget(max_classes=setup.max_classes))


# ---- MGCA (no class early rejection) -------------------------------------------------------

def _mgca(setup: Setup):
    from lmseg.models.mgca.config import InferenceConfig, get_config
    from lmseg.models.mgca.factory import build_model
    from lmseg.models.mgca.predictor import MGCAPredictor

    torch.manual_seed(0)
    model = build_model(get_config("mgca_vitb16"), device=setup.device)
    short = 448 if setup.size == "published" else 224
    return MGCAPredictor(model, inference=InferenceConfig(short_side=short), cache=None)


# ---- SAM 3 (no class early rejection; real prompt encoding, memoised per vocabulary) --------

def _sam3(setup: Setup):
    from lmseg.backbones.sam3 import create_sam3
    from lmseg.models.sam3.config import SAM3_MODELS, Sam3Config
    from lmseg.models.sam3.model import Sam3Semantic
    from lmseg.models.sam3.predictor import Sam3Predictor

    torch.manual_seed(0)
    spec = SAM3_MODELS["sam3"]
    size = spec.image_size if setup.size == "published" else 448
    detector = create_sam3(spec.model, weights=None, image_size=size)
    return Sam3Predictor(Sam3Semantic(detector.to(setup.device), Sam3Config()).eval(), device=setup.device,
                         variant="sam3")


def _no_text(predictor, n: int) -> None:
    """sam3's prompts are encoded by its own text encoder, once per vocabulary (memoised)."""


_OUTER = "bf16 torch.autocast around predict (its predictor has no amp setting)"

CASES: dict[str, Case] = {
    "lmseg_vitb16": Case("lmseg_vitb16", "lmseg_tiny", _sized(_tiny("lmseg_tiny"), _lmseg),
                         _text_of(lambda p: p.model.config.prompt_channels),
                         {"tiny": (96, 128), "small": (384, 384), "published": (640, 853)},
                         "small: one 384 view; published: short side 640, 6 windows of 384 + global view"),
    "mrovseg_vitb16": Case("mrovseg_vitb16", "mrovseg_tiny", _sized(_tiny("mrovseg_tiny"), _mrovseg),
                           _text_of(lambda p: 1),
                           {"tiny": (96, 128), "small": (384, 384), "published": (640, 853)},
                           "small: 384 x 384, 224 slices + global view; published: short side 640"),
    "trident_vitb16": Case("trident_vitb16", "trident_tiny", _sized(_tiny("trident_tiny"), _trident),
                           _text_of(lambda p: 1),
                           {"tiny": (96, 128), "small": (336, 448), "published": (512, 683)},
                           "small: short side 336, 2 windows of 336; published: ADE-150's short side 576",
                           precision="fp16 encoders (the published precision; Trident has no amp setting)"),
    "mgca_vitb16": Case("mgca_vitb16", "mgca_tiny", _sized(_tiny("mgca_tiny", rejects=False), _mgca),
                        _text_of(lambda p: 1),
                        {"tiny": (96, 128), "small": (224, 299), "published": (512, 683)},
                        "small: short side 224; published: TCL's short side 448, adaptive unit",
                        rejects=False, precision=_OUTER),
    "sam3": Case("sam3", "sam3_tiny", _sized(_tiny("sam3_tiny", rejects=False), _sam3), _no_text,
                 {"tiny": (96, 128), "small": (384, 512), "published": (512, 683)},
                 "small: SAM 3 at 448; published: SAM 3 at 1008, one prompt per class",
                 rejects=False, precision=_OUTER),
}


# ---- measuring -----------------------------------------------------------------------------

@dataclass(frozen=True)
class Measured:
    """One (case, setup, N) measurement.

    Attributes:
        wall_s / cpu_s: wall and process CPU seconds (user + system) per timed image.
        peak_mib: on CUDA ``torch.cuda.max_memory_allocated`` over the timed images (weights
            included); on the CPU the process's peak RSS so far (model and earlier rows included).
        kept: the classes that reached the dense stage (N without rejection).
        gflop: matrix products, convolutions and attention of one image (``torch.utils.flop_counter``,
            counted in the first warm-up image), or None when not counted.
    """

    wall_s: float
    cpu_s: float
    peak_mib: float
    kept: int
    gflop: float | None


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def benchmark_image(case: Case, setup: Setup) -> np.ndarray:
    """The random ``(H, W, 3)`` uint8 image of ``case`` at ``setup``'s size (seeded)."""
    return np.random.default_rng(0).integers(0, 256, (*case.image_size(setup), 3), dtype=np.uint8)


def measure_images(case: Case, setup: Setup, predictor, classes: int, *, iters: int, warmup: int,
                   count_flops: bool = False) -> Measured:
    """Time ``iters`` images of ``predictor`` (built by ``case.build(setup)``) with ``classes``
    random classes after ``warmup`` untimed ones (at least one when counting FLOPs); the
    benchmark's ``torch.autocast`` around ``predict`` where the predictor has no ``amp``."""
    dev = setup.device
    case.random_text(predictor, classes)
    vocabulary = [f"class {i}" for i in range(classes)]
    image = benchmark_image(case, setup)
    outer = nullcontext() if case.own_autocast else autocast(dev, setup.amp)
    gflop = None
    if count_flops:  # FlopCounterMode's module hooks fail on leaf parameters that require grad under no_grad
        predictor.model.requires_grad_(False)
    with outer:
        for i in range(max(warmup, int(count_flops))):
            if i == 0 and count_flops:  # the work, counted once: independent of the machine's load
                with FlopCounterMode(display=False) as counter:
                    predictor.predict(image, vocabulary)
                gflop = counter.get_total_flops() / 1e9
            else:
                predictor.predict(image, vocabulary)
        _sync(dev)
        if dev.type == "cuda":
            torch.cuda.reset_peak_memory_stats(dev)
        wall, cpu = time.perf_counter(), cpu_seconds()
        for _ in range(iters):
            result = predictor.predict(image, vocabulary)
        _sync(dev)
    wall, cpu = (time.perf_counter() - wall) / iters, (cpu_seconds() - cpu) / iters
    peak = (torch.cuda.max_memory_allocated(dev) if dev.type == "cuda"
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024) / 2**20
    kept = classes if getattr(result, "kept", None) is None else len(result.kept)
    return Measured(wall, cpu, peak, kept, gflop)
