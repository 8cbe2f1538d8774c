"""The one skeleton every method is built on: configs, checkpoints and named variants.

A method is a folder ``lmseg/models/<m>/`` (:mod:`lmseg.registry` finds every such folder by
itself; nothing else is edited to add one):

* ``config.py``: its architecture presets ``<M>_CONFIGS`` (name -> frozen dataclass that
  inherits :class:`ConfigData`) and its predictor settings (a frozen dataclass);
* ``model.py``: the pure ``nn.Module``; ``factory.py``: ``build_model`` and its
  :class:`CheckpointFormat` (every checkpoint is read, checked and loaded here);
* ``predictor.py``: the :class:`~lmseg.inference.segmenter.Segmenter`;
* ``task.py`` (if it trains): its :class:`~lmseg.engine.task.TrainTask` and ``TRAIN_TASKS``;
* ``variants.py``: ``VARIANTS`` (segmenter name -> :class:`Variant`), one private builder
  ``_build(name, variant, *, <its keyword arguments>)`` and ``SEGMENTERS = segmenters(VARIANTS,
  _build)``, the public builders that :func:`lmseg.create_segmenter` calls.

As in segment-anything's ``build_sam.py`` (variants as data, one private builder) and timm's
``build_model_with_cfg``. Benchmark presets are in :mod:`lmseg.models.presets`.
"""

from __future__ import annotations

import dataclasses
import inspect
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import torch
from torch import nn

from lmseg.config_overrides import override_dataclass
from lmseg.engine.checkpoints import FORMAT as TRAINING_FORMAT
from lmseg.errors import LmsegError

__all__ = ["CheckpointFormat", "ConfigData", "Variant", "Weights", "config_from_dict", "dense_clip", "describe",
           "named_preset", "seeded", "segmenters", "to_dict", "variant_model", "variant_settings"]

T = TypeVar("T")
M = TypeVar("M", bound=nn.Module)

#: A weights argument: an open_clip tag or known name, a file, or None.
Weights = str | os.PathLike[str] | None


# ---- configs -----------------------------------------------------------------------------


def to_dict(config: object) -> dict[str, Any]:
    """A config dataclass as plain data (nested dataclasses as dicts, tuples as lists), for
    checkpoints and YAML."""
    def plain(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        if isinstance(value, (tuple, list)):
            return [plain(v) for v in value]
        return value

    return plain(dataclasses.asdict(config))


class ConfigData:
    """Mixin of the methods' config dataclasses: :meth:`to_dict`."""

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form (:func:`to_dict`)."""
        return to_dict(self)


def named_preset(presets: Mapping[str, T], name: str, *, what: str) -> T:
    """``presets[name]``.

    Raises:
        LmsegError: unknown name; the message says ``what`` it is and lists the known ones.
    """
    if name not in presets:
        raise LmsegError(f"unknown {what} {name!r}; known: {', '.join(presets)}")
    return presets[name]


def config_from_dict(presets: Mapping[str, T], data: Mapping[str, Any], *, default: str, what: str) -> T:
    """The preset named ``data["name"]`` (``default`` if absent) with the other fields of
    ``data`` replaced (a checkpoint's config, a YAML section).

    Raises:
        LmsegError: unknown preset, unknown fields or invalid values (naming ``what``).
    """
    base = named_preset(presets, str(data.get("name", default)), what=what)
    return override_dataclass(base, dict(data), where=what)


# ---- checkpoints -------------------------------------------------------------------------


@dataclass(frozen=True)
class CheckpointFormat:
    """A method's model checkpoint, and the one read / verify / load path of every method.

    A model checkpoint is a ``torch.save`` dict readable with ``weights_only=True``::

        {"format": name, "format_version": version, "config": model.config.to_dict(),
         <part>: the state dict of each part of the model (:attr:`parts`)}

    A training checkpoint of the shared trainer (``{"format": "lmseg-train", "model": {...},
    ...}``, :mod:`lmseg.engine.checkpoints`) holds one under ``"model"`` and is accepted
    wherever a model checkpoint is: the one unwrap rule.

    Attributes:
        name: the ``format`` entry (``"lmseg"``).
        version: the ``format_version`` this code reads and writes.
        method: the method's name in messages (``"LMSeg"``).
        read_config: checkpoint ``"config"`` entry -> the architecture config.
        parts: model -> ``{entry: module}``, the modules whose state dicts are stored
            (``{"state_dict": model}`` for a whole model).
    """

    name: str
    version: int
    method: str
    read_config: Callable[[Mapping[str, Any]], Any]
    parts: Callable[[Any], Mapping[str, nn.Module]] = lambda model: {"state_dict": model}

    def state(self, model: nn.Module) -> dict[str, Any]:
        """The checkpoint dict of ``model`` (tensors detached, on the CPU)."""
        state: dict[str, Any] = {"format": self.name, "format_version": self.version,
                                 "config": to_dict(model.config)}
        for entry, module in self.parts(model).items():
            state[entry] = {k: v.detach().cpu() for k, v in module.state_dict().items()}
        return state

    def save(self, model: nn.Module, path: str | os.PathLike[str]) -> Path:
        """Write ``model``'s checkpoint atomically (temporary file, then rename)."""
        from lmseg.io.atomic import atomic_path

        with atomic_path(path) as tmp:
            torch.save(self.state(model), tmp)
        return Path(path)

    def read(self, path: str | os.PathLike[str]) -> dict[str, Any]:
        """A model checkpoint dict (or the ``"model"`` entry of a training checkpoint).

        Raises:
            LmsegError: missing or unreadable file, another format (the message says what the
                file looks like, :func:`describe`), or another format version.
        """
        from lmseg.backbones.loading import load_torch_file, require_format

        path = Path(path).expanduser()
        what = f"checkpoint of {self.method}"
        obj = load_torch_file(path, what=what)
        if isinstance(obj, dict) and obj.get("format") == TRAINING_FORMAT and isinstance(obj.get("model"), dict):
            obj = obj["model"]
        return require_format(obj, path, self.name, self.version, what=f"a {what}",
                              otherwise=f"it looks like {describe(obj)}")

    def load_weights(self, model: nn.Module, state: Mapping[str, Any], *, source: str) -> None:
        """Load every part of ``state`` into ``model``, strictly.

        Raises:
            LmsegError: a part is missing or does not fit the model's architecture.
        """
        from lmseg.backbones.loading import load_strict

        name = model.config.name
        for entry, module in self.parts(model).items():
            if entry not in state:
                raise LmsegError(f"{source} ({name}) lacks the weights of its part {entry!r}")
            load_strict(module, state[entry], source=source, arch=f"{self.method} {name} ({entry})")

    def load(self, path: str | os.PathLike[str], build: Callable[[Any], M], *, expected: str | None = None,
             device: str | torch.device = "cpu") -> M:
        """A trained model from its checkpoint: ``build(config)``, then strict loading (eval mode).

        Args:
            path: a model or training checkpoint file.
            build: architecture config -> the model with random or frozen-backbone weights.
            expected: the config the caller wants (``"lmseg_vitb16"``); a checkpoint of
                another one is refused, naming the segmenter to use.
            device: where the model goes.
        """
        state = self.read(path)
        config = self.read_config(state["config"])
        if expected is not None and config.name != expected:
            raise LmsegError(f"{path} is a checkpoint of {config.name!r}, not {expected!r}; "
                             f"use create_segmenter({config.name!r}, ...)")
        model = build(config)
        self.load_weights(model, state, source=str(path))
        return model.to(device).eval()


def describe(obj: object) -> str:
    """What a file that is not the expected checkpoint looks like, for the error message."""
    if not isinstance(obj, dict):
        return f"a {type(obj).__name__}, not a checkpoint dict"
    if "format" in obj:
        config = obj.get("config")
        name = config.get("name") if isinstance(config, dict) else None
        hint = f"; use create_segmenter({name!r}, checkpoint=...)" if name else ""
        return f"a checkpoint of format {obj['format']!r}{hint}"
    keys = [str(k) for k in obj]
    for wrapper in ("state_dict", "model"):
        if isinstance(obj.get(wrapper), dict):
            keys = [str(k) for k in obj[wrapper]]
    if any(k.startswith("image_encoder.") for k in keys):
        return "a SAM checkpoint (image_encoder.*); SAM weights are passed as sam=..., where a segmenter takes them"
    if any(k.startswith(("visual.", "transformer.")) for k in keys):
        return "a CLIP checkpoint (visual.*); a trained checkpoint of the method is needed (train with pipelines.train)"
    if any(k.startswith(("sem_seg_head.", "backbone.")) for k in keys):
        return "a detectron2 model (e.g. CAT-Seg); its weights do not fit lmseg's modules"
    return f"a dict with keys {', '.join(keys[:5])}{', ...' if len(keys) > 5 else ''}"


def dense_clip(model: str, weights: Weights, *, file_quick_gelu: bool, quick_gelu: bool | None = None,
               **options: Any):
    """CLIP ``model`` with ``weights`` (an open_clip tag, a file, or None: random), through
    :func:`~lmseg.backbones.clip_factory.create_dense_clip`.

    ``file_quick_gelu`` is the activation of random weights and of a weights file (a tag brings
    its own); ``quick_gelu``, when given, is the caller's explicit choice for any weights.
    """
    from lmseg.backbones.clip_factory import create_dense_clip

    if quick_gelu is None and (weights is None or Path(os.fspath(weights)).expanduser().is_file()):
        quick_gelu = file_quick_gelu
    return create_dense_clip(model, pretrained=weights, quick_gelu=quick_gelu, **options)


# ---- variants ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Variant:
    """One named segmenter of a method: a row of its ``VARIANTS`` table.

    Attributes:
        config: its architecture, a name of the method's architecture table (``LMSEG_CONFIGS``).
        weights: the keyword arguments that give its weights (``("checkpoint", "sam")``); of
            the weight arguments of the method's builder, this segmenter takes only these.
        seeded: without a checkpoint its weights are random, drawn from ``seed=`` (the tiny
            test models: meaningless outputs); adds the ``seed`` argument.
        settings: predictor settings fields of this variant (``{"short_side": 96}``), applied
            before a ``benchmark=`` preset and the caller's own settings.
        train: the training config that makes its checkpoint (named when none is given).
        doc: the builder's docstring.
    """

    config: str
    weights: tuple[str, ...] = ("checkpoint",)
    seeded: bool = False
    settings: Mapping[str, Any] = field(default_factory=dict)
    train: str = ""
    doc: str = ""


S = TypeVar("S")


def variant_settings(variant: Variant, default: S, settings: S | Mapping[str, Any] | None, benchmark: str | None,
                     preset: Callable[[str], Mapping[str, Any]], *, where: str) -> S:
    """A segmenter's predictor settings: ``default`` with the variant's fields, then the
    ``benchmark`` preset's (``preset(benchmark)``), then the caller's ``settings`` (a complete
    settings object, or a mapping of fields to replace); each layer checked by
    :func:`~lmseg.config_overrides.override_dataclass`, before any model loads.

    Raises:
        LmsegError: unknown fields, bad values, an unknown benchmark, or a complete settings
            object together with ``benchmark`` (which would silently drop one of them).
    """
    if benchmark is not None and isinstance(settings, type(default)):
        raise LmsegError(f"pass either a complete {type(default).__name__} or benchmark= "
                         "(a mapping of fields to replace may go with benchmark=)")
    layered = override_dataclass(default, variant.settings, where=where)
    if benchmark is not None:
        layered = override_dataclass(layered, preset(benchmark), where=f"{where} (benchmark preset {benchmark})")
    return override_dataclass(layered, settings, where=where)


def variant_model(name: str, variant: Variant, checkpoints: CheckpointFormat, checkpoint: Weights, seed: int, *,
                  build: Callable[[Any], M], device: str | torch.device) -> M:
    """A segmenter's model on ``device``, in eval mode.

    With a checkpoint: ``build(config)`` with the checkpoint's config, its weights loaded
    (:meth:`CheckpointFormat.load`; a checkpoint of another architecture than the variant's is
    refused). Without one, for a seeded variant: ``build(config)`` of the variant's architecture
    with random weights drawn from ``seed`` (:func:`seeded`).

    Raises:
        LmsegError: a variant that needs a trained checkpoint got none (the message names the
            config that trains one).
    """
    if checkpoint is not None:
        return checkpoints.load(checkpoint, build, expected=variant.config, device=device)
    if not variant.seeded:
        train = f" (train one with `python -m pipelines.train --config {variant.train}`)" if variant.train else ""
        raise LmsegError(f"{name} needs a trained {checkpoints.method} checkpoint: pass checkpoint=PATH{train}")
    config = checkpoints.read_config({"name": variant.config})
    return seeded(seed, lambda: build(config)).to(device).eval()


def seeded(seed: int, build: Callable[[], T]) -> T:
    """``build()`` under ``torch.manual_seed(seed)``, the caller's random state untouched (the
    random weights of the tiny test models: the same seed gives the same model)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build()


def segmenters(variants: Mapping[str, Variant], build: Callable[..., Any]) -> dict[str, Callable[..., Any]]:
    """The public builders of a method: ``SEGMENTERS[name](**options)`` is
    ``build(name, variants[name], **options)``.

    ``build`` is the method's one private builder, ``build(name, variant, *, <keyword
    arguments>)``. Each segmenter takes its keyword arguments except the weight arguments of
    the other rows that are not its own (:attr:`Variant.weights`), and ``seed`` only when it
    is seeded; any other argument is a ``TypeError``, as for a plain function. Its signature
    and docstring (``help()``) are the row's.
    """
    signature = inspect.signature(build)
    keywords = [p for p in signature.parameters.values() if p.kind is p.KEYWORD_ONLY]
    row_specific = {"seed"}.union(*(v.weights for v in variants.values()))

    def entry(name: str, variant: Variant) -> Callable[..., Any]:
        own = set(variant.weights) | ({"seed"} if variant.seeded else set())
        accepted = inspect.Signature([p for p in keywords if p.name not in row_specific or p.name in own],
                                     return_annotation=signature.return_annotation)

        def builder(**options: Any) -> Any:
            try:
                accepted.bind(**options)
            except TypeError as exc:
                raise TypeError(f"{name}() {exc}") from None
            return build(name, variant, **options)

        builder.__name__ = builder.__qualname__ = name
        builder.__module__ = build.__module__
        builder.__doc__ = variant.doc
        builder.__signature__ = accepted  # type: ignore[attr-defined]
        return builder

    return {name: entry(name, variant) for name, variant in variants.items()}
