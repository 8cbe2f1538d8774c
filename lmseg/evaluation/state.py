"""The saved progress of an evaluation: what makes a run resumable and shards mergeable.

A state file (``.npz``, written atomically by :func:`lmseg.io.atomic.atomic_path`) holds

* ``confusion``: the ``(K, K)`` int64 confusion matrix accumulated so far;
* ``done``: the sample ids already counted in it (so a resumed run skips exactly those);
* ``identity``: the JSON of every setting that can change the result (model and its weights,
  the segmenter's own settings, dataset, split, vocabulary, ``--limit``, shard, lmseg
  version). A run refuses to continue a state made with a different identity and says which
  settings differ;
* ``complete``: whether every selected sample is counted.

The matrix and the ids are saved together in one file, so they always agree: a sample is
either in both or in neither.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lmseg.errors import LmsegError
from lmseg.io.atomic import atomic_path

__all__ = ["EvaluationState", "describe_differences"]

STATE_VERSION = 1


@dataclass
class EvaluationState:
    """Progress of one run (or one shard).

    Attributes:
        identity: JSON-ready settings that define the result (see the module docstring).
        confusion: ``(K, K)`` int64, rows ground truth, columns prediction.
        done: ids of the samples counted in ``confusion``.
        complete: every selected sample is counted.
    """

    identity: dict
    confusion: np.ndarray
    done: set[str]
    complete: bool = False

    @classmethod
    def empty(cls, identity: dict, num_classes: int) -> EvaluationState:
        return cls(identity, np.zeros((num_classes, num_classes), np.int64), set(), False)

    def save(self, path: Path) -> None:
        """Write the state atomically to ``path`` (parent folders are created)."""
        with atomic_path(path) as tmp, open(tmp, "wb") as handle:
            np.savez(
                handle,
                version=np.array(STATE_VERSION),
                identity=np.array(json.dumps(self.identity, sort_keys=True)),
                confusion=self.confusion,
                done=np.array(sorted(self.done), dtype=str),
                complete=np.array(self.complete),
            )

    @classmethod
    def load(cls, path: Path) -> EvaluationState:
        """Read a state file.

        Raises:
            LmsegError: the file is unreadable, corrupt or of another format version.
        """
        path = Path(path)
        try:
            with np.load(path, allow_pickle=False) as data:
                version = int(data["version"])
                if version != STATE_VERSION:
                    raise LmsegError(
                        f"evaluation state {path} has format version {version}, this lmseg writes {STATE_VERSION}; "
                        "delete it (or rerun with --restart)"
                    )
                identity = json.loads(str(data["identity"]))
                confusion = np.array(data["confusion"], dtype=np.int64)
                done = {str(s) for s in data["done"]}
                complete = bool(data["complete"])
        except LmsegError:
            raise
        except FileNotFoundError:
            raise LmsegError(f"evaluation state {path} does not exist") from None
        except Exception as exc:  # zipfile, pickle-refusal, key and JSON errors all mean "corrupt"
            raise LmsegError(
                f"evaluation state {path} is unreadable or corrupt ({type(exc).__name__}: {exc}); "
                "delete it (or rerun with --restart) to start this evaluation again"
            ) from None
        if confusion.ndim != 2 or confusion.shape[0] != confusion.shape[1] or (confusion < 0).any():
            raise LmsegError(f"evaluation state {path} holds a malformed confusion matrix {confusion.shape}")
        return cls(identity, confusion, done, complete)


def describe_differences(saved: dict, current: dict, prefix: str = "") -> list[str]:
    """Human-readable ``key: saved -> current`` lines for every setting that differs."""
    lines = []
    for key in sorted(set(saved) | set(current)):
        a, b = saved.get(key, "<unset>"), current.get(key, "<unset>")
        if isinstance(a, dict) and isinstance(b, dict):
            lines += describe_differences(a, b, f"{prefix}{key}.")
        elif a != b:
            lines.append(f"{prefix}{key}: {_short(a)} -> {_short(b)}")
    return lines


def _short(value: object, limit: int = 80) -> str:
    text = json.dumps(value) if not isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
