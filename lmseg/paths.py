"""Where generated artefacts live.

Everything generated (prepared models, attribute tables, caption phrases, embeddings, weights,
logs) goes under one cache folder, whatever the working folder:

* ``$LMSEG_CACHE_DIR`` if set (``~`` expanded; a relative path is taken from the working folder);
* else ``cache/`` in the project, i.e. beside the ``lmseg`` package of a source checkout (the
  folder holding ``pyproject.toml``), where ``make setup`` prepares the default LLM;
* else (lmseg installed without its source) ``$XDG_CACHE_HOME/lmseg`` (default ``~/.cache/lmseg``).

That includes the default LLM (``<cache>/models``). ``LMSEG_OFFLINE=1`` forbids every download
(vision weights, LLMs named by hub id).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

DEFAULT_LLM_NAME = "SmolLM2-135M-Instruct"


_PROJECT = Path(__file__).resolve().parents[1]


def cache_dir() -> Path:
    """The cache root (see the module docstring; not created here)."""
    if os.environ.get("LMSEG_CACHE_DIR"):
        return Path(os.environ["LMSEG_CACHE_DIR"]).expanduser()
    if (_PROJECT / "pyproject.toml").is_file():
        return _PROJECT / "cache"
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "lmseg"


def offline() -> bool:
    """Whether ``LMSEG_OFFLINE`` is set (``1``/``true``/``yes``): nothing may be downloaded."""
    return os.environ.get("LMSEG_OFFLINE", "").strip().lower() in ("1", "true", "yes")


def default_llm_path() -> Path:
    """The folder that ``make setup`` prepares for the default model (SmolLM2-135M-Instruct)."""
    return cache_dir() / "models" / DEFAULT_LLM_NAME


def model_slug(model_name: str) -> str:
    """A file-name-safe form of a model name: ``Qwen/Qwen2.5-7B`` -> ``Qwen--Qwen2.5-7B``."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "--", model_name).strip("-.") or "model"


def attribute_table_path(dataset: str, model_name: str, shard: tuple[int, int] | None = None) -> Path:
    """Default path of an attribute table: ``<cache>/attributes/<dataset>/<model-slug>.parquet``.

    Args:
        dataset: vocabulary name.
        model_name: the model's name as stored in the table.
        shard: ``(shard_index, num_shards)`` for one shard's part, or None for the whole table.
    """
    table = cache_dir() / "attributes" / dataset / f"{model_slug(model_name)}.parquet"
    return table if shard is None else shard_part_path(table, shard)


def shard_part_path(table: Path, shard: tuple[int, int]) -> Path:
    """The part file of one shard of ``table``: ``t.parquet`` -> ``t.shard-001-of-004.parquet``."""
    return table.with_name(f"{table.stem}.shard-{shard[0]:03d}-of-{shard[1]:03d}{table.suffix}")
