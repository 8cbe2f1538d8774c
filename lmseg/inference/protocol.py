"""The protocol of a run: everything that decides its numbers, as one JSON-ready record.

Two runs give the same numbers on the same images only if their records agree, so every
evaluation report (``settings.protocol``) and every ``segment`` output folder
(``protocol.json``) carries one::

    {
      "segmenter": "lmseg.models.trident.predictor.TridentPredictor",
      "vocabulary": {"name": "voc21", "num_classes": 21, "sha256": "..."},
      "method": {...},          # the segmenter's own protocol(vocabulary): settings, text
                                # queries and their class-list source, resize library and
                                # sizes, windows, thresholds, precision; for a segmenter
                                # without protocol(), {"settings": its settings()}
      "weights": {"files": {"sam": {"path": ..., "sha256": ...}, "clip": {"name": "openai"}},
                  "parameters": {"clip": "<sha256>", "dino": "<sha256>", "sam": "<sha256>"}},
      "libraries": {"python": "3.11.2", "torch": "2.15.0", "opencv-python-headless": "5.0.0.93", ...}
    }

``weights.parameters`` hashes the loaded parameters of each part of the model (names, dtypes,
shapes and bytes), so it identifies the weights however they were obtained (a file, a
downloaded name, a random seed).
"""

from __future__ import annotations

import hashlib
import platform
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path

from lmseg.inference.segmenter import VocabularyInput, as_vocabulary, jsonable, segmenter_settings

__all__ = ["LIBRARIES", "WEIGHT_OPTIONS", "library_versions", "parameter_digests", "protocol_record", "weight_files"]

#: The distributions whose versions can change a result.
LIBRARIES = (
    "torch", "torchvision", "numpy", "opencv-python-headless", "pillow", "open_clip_torch",
    "segment-anything", "sam2", "sam3", "timm", "scipy",
)


def library_versions() -> dict[str, str | None]:
    """Python's, lmseg's and each of :data:`LIBRARIES`' installed version (None when not installed)."""
    from lmseg.version import __version__

    versions: dict[str, str | None] = {"python": platform.python_version(), "lmseg": __version__}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def parameter_digests(segmenter: object) -> dict[str, str]:
    """sha256 of the state of each top-level part of ``segmenter.model`` (``{}`` without a torch model)."""
    import torch

    model = getattr(segmenter, "model", None)
    if not isinstance(model, torch.nn.Module):
        return {}
    parts = dict(model.named_children()) or {"model": model}
    return {name: _state_sha256(part) for name, part in parts.items()}


def _state_sha256(module) -> str:
    import torch

    digest = hashlib.sha256()
    for key, tensor in sorted(module.state_dict().items()):
        flat = tensor.detach().cpu().contiguous().reshape(-1)
        digest.update(f"{key}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(flat.view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


#: Builder options that name weights by a known name rather than a file (``clip="openai"``).
WEIGHT_OPTIONS = ("checkpoint", "clip", "dino", "sam", "sam2", "weights")


def weight_files(options: Mapping[str, object]) -> dict[str, dict[str, str]]:
    """Every option naming an existing file: ``{"path", "sha256"}``; a weights name: ``{"name"}``.

    Args:
        options: a builder's keyword arguments (``clip="openai"``, ``sam="/w/sam_vit_b.pth"``,
            ``attribute_table=...``); a string that is not a file is kept only for the keys
            of :data:`WEIGHT_OPTIONS`.
    """
    from lmseg.backbones.weights import sha256_of

    files: dict[str, dict[str, str]] = {}
    for key, value in sorted(options.items()):
        if not isinstance(value, (str, Path)) or not str(value):
            continue
        path = Path(value)
        if path.is_file():
            files[key] = {"path": str(path), "sha256": sha256_of(path)}
        elif key in WEIGHT_OPTIONS:
            files[key] = {"name": str(value)}
    return files


def protocol_record(
    segmenter: object, vocabulary: VocabularyInput, *, options: Mapping[str, object] | None = None
) -> dict[str, object]:
    """The record of a run of ``segmenter`` on ``vocabulary`` (layout in the module docstring).

    Args:
        segmenter: any segmenter; one with a ``protocol(vocabulary)`` method contributes its
            method-specific part (settings, queries, resizes, precision), any other its
            ``settings()`` (so every setting that changes an output is in the record).
        vocabulary: the classes asked for.
        options: the builder options the segmenter was made with (weights names and files).
    """
    vocab = as_vocabulary(vocabulary)
    describe = getattr(segmenter, "protocol", None)
    kind = type(segmenter)
    return {
        "segmenter": f"{kind.__module__}.{kind.__qualname__}",
        "vocabulary": {"name": vocab.name, "num_classes": len(vocab), "sha256": vocab.content_sha256()},
        "method": jsonable(describe(vocab)) if callable(describe) else {"settings": segmenter_settings(segmenter)},
        "weights": {"files": weight_files(options or {}), "parameters": parameter_digests(segmenter)},
        "libraries": library_versions(),
    }
