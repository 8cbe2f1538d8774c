"""On-disk cache of class prompt embeddings: a vocabulary is encoded once per text encoder.

Entries live under ``lmseg.paths.cache_dir() / "embeddings"``, one safetensors file per key::

    <cache>/embeddings/<model-slug>/<key>.safetensors

The key is the sha256 of: the CLIP model name, the identity of the text encoder's weights (a
sha256 over the text tower's parameters and buffers, so a fine-tuned or random tower never
reuses another's entries), the content hash of the attribute table rows used, and the prompt
structure (every sentence, i.e. templates, names, synonyms and attributes, and the pooling).

Writes are atomic (:func:`lmseg.io.atomic.atomic_path`). Every file stores
its key and a sha256 of its tensor bytes in the safetensors metadata; a file that cannot be
read, has another key, shape or checksum is reported with a warning and recomputed, never used.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

from lmseg.io.atomic import atomic_path
from lmseg.paths import cache_dir, model_slug
from lmseg.text.prompts import ClassPrompts, encode_prompts
from lmseg.text.table import table_sha256

__all__ = ["CACHE_VERSION", "CorruptCacheWarning", "EmbeddingCache", "cache_key", "clip_text_fingerprint",
           "module_fingerprint", "table_sha256"]

log = logging.getLogger(__name__)

CACHE_VERSION = "1"


class CorruptCacheWarning(UserWarning):
    """A cache entry could not be trusted and is being recomputed."""


def module_fingerprint(module: torch.nn.Module, *, prefix_filter: Callable[[str], bool] | None = None) -> str:
    """sha256 over a module's parameter and buffer names, shapes, dtypes and bytes."""
    h = hashlib.sha256()
    for name, tensor in module.state_dict().items():
        if prefix_filter is not None and not prefix_filter(name):
            continue
        t = tensor.detach().cpu().contiguous().reshape(-1)
        h.update(f"{name}|{tuple(t.shape)}|{t.dtype}|".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def clip_text_fingerprint(clip_model: torch.nn.Module) -> str:
    """Identity of an open_clip model's text side (everything outside ``visual.*``)."""
    return module_fingerprint(clip_model, prefix_filter=lambda n: not n.startswith("visual."))


def cache_key(*, model_name: str, weights_id: str, **content: str) -> str:
    """sha256 of the model name, the text weights' identity and the content hashes (``prompts=``
    and ``table=`` for sentence ensembles; ``queries=`` for template ensembles of query names)."""
    payload = {"v": CACHE_VERSION, "model": model_name, "weights": weights_id, **content}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


class EmbeddingCache:
    """Get-or-compute store of text embeddings (every method's, through :class:`lmseg.text.embedder.TextEmbedder`).

    Args:
        root: the folder (default ``cache_dir() / "embeddings"``, resolved at each call so that
            ``LMSEG_CACHE_DIR`` is honoured).
    """

    def __init__(self, root: str | os.PathLike[str] | None = None) -> None:
        self._root = Path(root) if root is not None else None

    @property
    def root(self) -> Path:
        return self._root if self._root is not None else cache_dir() / "embeddings"

    def path(self, model_name: str, key: str) -> Path:
        return self.root / model_slug(model_name) / f"{key}.safetensors"

    def get_or_compute(
        self,
        prompts: ClassPrompts,
        encode: Callable[[Sequence[str]], torch.Tensor],
        *,
        model_name: str,
        weights_id: str,
        table_id: str,
    ) -> torch.Tensor:
        """The embeddings of ``prompts``: from the cache, or encoded now and stored.

        Args:
            prompts: from :func:`lmseg.text.prompts.build_prompts`.
            encode: sentences -> ``(S, D)`` embeddings (e.g. ``DenseCLIP.encode_text``).
            model_name: the CLIP model name.
            weights_id: identity of the text encoder's weights (:func:`clip_text_fingerprint`).
            table_id: :func:`~lmseg.text.table.table_sha256` of the attribute rows used.

        Returns:
            ``(N, P, D)`` float32 on the CPU.
        """
        key = cache_key(model_name=model_name, weights_id=weights_id, table=table_id, prompts=prompts.content_sha256())
        return self.tensor(model_name, key, prompts.num_classes, lambda: encode_prompts(prompts, encode))

    def tensor(self, model_name: str, key: str, rows: int, compute: Callable[[], torch.Tensor]) -> torch.Tensor:
        """The tensor stored under ``key`` (:func:`cache_key`), or ``compute()`` stored now.

        Args:
            model_name: the CLIP model name (the sub-folder).
            key: from :func:`cache_key`.
            rows: the expected first dimension (a stored tensor of another size is recomputed).
            compute: makes the tensor (any shape with ``rows`` rows).

        Returns:
            float32 on the CPU.
        """
        path = self.path(model_name, key)
        if path.exists():
            cached = self._read(path, key, rows)
            if cached is not None:
                return cached
        value = compute().detach().cpu().float().contiguous()
        self._write(path, key, value)
        return value

    def _read(self, path: Path, key: str, expected_n: int) -> torch.Tensor | None:
        from safetensors import safe_open

        try:
            with safe_open(str(path), framework="pt", device="cpu") as f:
                meta = f.metadata() or {}
                tensor = f.get_tensor("embeddings")
        except Exception as exc:  # noqa: BLE001 - any unreadable file is recomputed
            return self._corrupt(path, f"unreadable ({exc!s:.120})")
        if meta.get("key") != key:
            return self._corrupt(path, "its key does not match its name")
        if tensor.dim() < 1 or tensor.shape[0] != expected_n:
            return self._corrupt(path, f"unexpected shape {tuple(tensor.shape)}")
        if meta.get("sha256") != _tensor_sha(tensor):
            return self._corrupt(path, "checksum mismatch")
        return tensor

    @staticmethod
    def _corrupt(path: Path, why: str) -> None:
        warnings.warn(f"embedding cache entry {path} is {why}; recomputing it", CorruptCacheWarning, stacklevel=3)
        return None

    @staticmethod
    def _write(path: Path, key: str, embeddings: torch.Tensor) -> None:
        from safetensors.torch import save_file

        try:
            with atomic_path(path) as tmp:
                save_file({"embeddings": embeddings}, str(tmp), metadata={"key": key, "sha256": _tensor_sha(embeddings)})
        except OSError as exc:
            log.warning("could not write the embedding cache %s: %s", path, exc)


def _tensor_sha(t: torch.Tensor) -> str:
    return hashlib.sha256(t.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes()).hexdigest()
