"""Sharded evaluation: one state file per shard, summed by a merge step.

Shard ``i`` of ``n`` evaluates the ``i``-th contiguous block of the selected samples
(:mod:`lmseg.io.shards`) and writes ``<output>/shard-<i>-of-<n>.state.npz`` (an
:class:`~lmseg.evaluation.state.EvaluationState`); an unsharded run writes
``<output>/state.npz``. Merging checks that every shard is there, finished, made with the
same settings and that no sample was counted twice, then sums the confusion matrices.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lmseg.errors import LmsegError
from lmseg.evaluation.state import EvaluationState, describe_differences

__all__ = ["merge_states", "shard_state_paths", "state_path_for"]


def state_path_for(output_dir: str | Path, shard: tuple[int, int] | None = None) -> Path:
    """The state file of an unsharded run or of shard ``(index, count)``."""
    output_dir = Path(output_dir)
    if shard is None:
        return output_dir / "state.npz"
    index, count = shard
    return output_dir / f"shard-{index:03d}-of-{count:03d}.state.npz"


def shard_state_paths(output_dir: str | Path, num_shards: int) -> list[Path]:
    """The state files of all ``num_shards`` shards, in shard order."""
    return [state_path_for(output_dir, (i, num_shards)) for i in range(num_shards)]


def merge_states(paths: list[Path]) -> EvaluationState:
    """Sum finished shard states into one complete state (its identity has ``shard: None``).

    Raises:
        LmsegError: a shard file is missing or unfinished, shards disagree on a setting, or a
            sample was counted by two shards.
    """
    if not paths:
        raise LmsegError("no shard states to merge")
    missing = [str(p) for p in paths if not Path(p).exists()]
    if missing:
        raise LmsegError(
            f"cannot merge: {len(missing)} shard state(s) missing: {', '.join(missing)}; run those shards first"
        )
    states = [EvaluationState.load(Path(p)) for p in paths]
    unfinished = [str(p) for p, s in zip(paths, states) if not s.complete]
    if unfinished:
        raise LmsegError(f"cannot merge: shard(s) not finished: {', '.join(unfinished)}; rerun them (they resume)")
    for index, (path, state) in enumerate(zip(paths, states)):
        if state.identity.get("shard") != [index, len(paths)]:
            raise LmsegError(
                f"cannot merge: {path} is shard {state.identity.get('shard')} but was given as shard "
                f"{index} of {len(paths)}"
            )
    first = _without_shard(states[0].identity)
    for path, state in zip(paths[1:], states[1:]):
        differences = describe_differences(first, _without_shard(state.identity))
        if differences:
            raise LmsegError(
                f"cannot merge: {path} was made with other settings than {paths[0]}:\n  " + "\n  ".join(differences)
            )
    seen: dict[str, Path] = {}
    for path, state in zip(paths, states):
        for sample_id in state.done:
            if sample_id in seen:
                raise LmsegError(f"cannot merge: sample {sample_id} was counted by both {seen[sample_id]} and {path}")
            seen[sample_id] = path
    confusion = np.sum([s.confusion for s in states], axis=0, dtype=np.int64)
    return EvaluationState(first, confusion, set(seen), True)


def _without_shard(identity: dict) -> dict:
    merged = {**identity, "shard": None}
    merged.pop("shard_rule", None)
    return merged
