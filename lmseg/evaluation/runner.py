"""Running a segmenter over a labelled split: streaming, resumable, shardable.

>>> from lmseg import create_segmenter
>>> from lmseg.data import open_dataset
>>> from lmseg.evaluation.runner import evaluate_dataset
>>> result = evaluate_dataset(create_segmenter("trident_tiny"), open_dataset("ade150", "/data"))
>>> result.scores.mean_iou

How it works:

* Images and labels are decoded in ``num_workers`` torch ``DataLoader`` worker processes
  while the main process runs the model, so decoding overlaps inference. Only a few samples
  are in flight at any time (``prefetch_factor`` per worker), and the only thing that grows
  with the split is the set of finished sample ids, so memory stays flat.
* Each prediction goes into one additive ``(K, K)`` confusion matrix
  (:class:`~lmseg.evaluation.SegmentationMetric`).
* With ``state_path``, the matrix and the ids of the counted samples are saved atomically
  every ``save_every`` samples, when the run stops for any reason (error, Ctrl-C) and at the
  end. A later call with the same settings skips the counted samples and continues; with
  different settings it refuses and says which settings differ (``restart=True`` discards
  the old state).
* ``shard=(i, n)`` takes the ``i``-th of ``n`` contiguous blocks of the selected samples
  (after ``limit``; the project's one shard rule, :mod:`lmseg.io.shards`); the shards'
  matrices sum to the full split's (:func:`lmseg.evaluation.shards.merge_states`).
* Each sample goes through :func:`lmseg.evaluation.steps.evaluate_sample`, the step a
  distributed executor calls too; this module is the local loop around it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from lmseg.data.dataset import SegmentationDataset
from lmseg.errors import LmsegError
from lmseg.evaluation.metric import SegmentationMetric, SegmentationScores
from lmseg.evaluation.state import EvaluationState, describe_differences
from lmseg.evaluation.steps import SampleFailure, evaluate_sample
from lmseg.inference.segmenter import Segmenter, jsonable, segmenter_settings
from lmseg.io.decoding import DecodeFailure, decode_in_workers
from lmseg.io.progress import progress_bar
from lmseg.io.shards import shard_range

__all__ = [
    "EvaluationResult",
    "SampleFailure",
    "dataset_identity",
    "evaluate_dataset",
    "run_identity",
    "select_indices",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EvaluationResult:
    """What one (possibly resumed or sharded) evaluation produced.

    Attributes:
        scores: metrics of every sample counted so far (all of the selection when ``complete``).
        identity: the settings that define the result (model, segmenter settings, dataset,
            vocabulary, limit, shard, lmseg version); written into reports.
        class_names: primary names in class-index order.
        num_samples: samples counted in ``scores``.
        num_selected: samples this run (or shard) is responsible for.
        complete: ``num_samples == num_selected``.
        seconds: wall time of the samples processed in *this* call (not earlier resumed runs).
        processed: samples processed in this call.
    """

    scores: SegmentationScores
    identity: dict
    class_names: tuple[str, ...]
    num_samples: int
    num_selected: int
    complete: bool
    seconds: float
    processed: int

    @property
    def images_per_second(self) -> float | None:
        """Throughput of this call (decode + inference + metric), None if nothing was processed."""
        return self.processed / self.seconds if self.processed and self.seconds > 0 else None


# ------------------------------------------------------------------------- settings


def dataset_identity(dataset: SegmentationDataset) -> dict:
    """What identifies the evaluated data: name, layout, classes, ignore index, split size."""
    vocabulary = dataset.vocabulary
    return {
        "name": dataset.name,
        "layout": dataset.layout,
        "num_samples": len(dataset),
        "num_classes": dataset.num_classes,
        "ignore_index": dataset.ignore_index,
        "label_decoding": dataset.label_map.description,
        "vocabulary": {"name": vocabulary.name, "sha256": vocabulary.content_sha256()},
        "class_names": list(dataset.class_names),
    }


def select_indices(num_samples: int, *, limit: int | None = None, shard: tuple[int, int] | None = None) -> list[int]:
    """Sample indices of the first ``limit`` samples, then shard ``(i, n)``'s contiguous block of them."""
    if limit is not None and limit < 1:
        raise LmsegError(f"--limit must be at least 1, got {limit}")
    indices = list(range(num_samples if limit is None else min(limit, num_samples)))
    if shard is not None:
        indices = [indices[k] for k in shard_range(len(indices), *shard)]
    return indices


def run_identity(segmenter: Segmenter, dataset: SegmentationDataset, identity: Mapping[str, object] | None,
                 limit: int | None, shard: tuple[int, int] | None) -> dict:
    """Every setting that defines an evaluation's result (saved with its progress and in reports)."""
    from lmseg.version import __version__

    full = {
        "lmseg_version": __version__,
        **jsonable(dict(identity or {})),
        "segmenter": segmenter_settings(segmenter),
        "dataset": dataset_identity(dataset),
        "limit": limit,
        "shard": list(shard) if shard else None,
    }
    if shard:  # states of the earlier every-n-th rule must not be resumed with this one
        full["shard_rule"] = "contiguous"
    return full


# ------------------------------------------------------------------------- the run


def evaluate_dataset(
    segmenter: Segmenter,
    dataset: SegmentationDataset,
    *,
    identity: Mapping[str, object] | None = None,
    limit: int | None = None,
    shard: tuple[int, int] | None = None,
    state_path: str | Path | None = None,
    restart: bool = False,
    save_every: int = 25,
    num_workers: int = 2,
    progress: bool | None = None,
    on_sample: Callable[[str], None] | None = None,
) -> EvaluationResult:
    """Evaluate ``segmenter`` on ``dataset`` (its own vocabulary, in label order).

    Args:
        segmenter: a :class:`~lmseg.inference.Segmenter`.
        dataset: an opened split (:func:`lmseg.data.open_dataset`).
        identity: extra settings that define the result (model name, weights, ...); merged
            with the segmenter's own :func:`segmenter_settings`, the dataset's identity,
            ``limit``, ``shard`` and the lmseg version.
        limit: only the first ``limit`` samples of the split.
        shard: ``(index, count)``: only that contiguous block of the selected samples.
        state_path: where progress is saved and resumed from; None = no saving.
        restart: discard an existing state instead of resuming it.
        save_every: save the state after this many newly counted samples.
        num_workers: decoding processes (0 = decode in this process).
        progress: show a tqdm bar (default: when stderr is a terminal).
        on_sample: called with each sample id after it is counted (tests, logging).

    A sample that cannot be decoded stops the run (:class:`SampleFailure`, naming the file)
    instead of being skipped: a benchmark score over a silently smaller split would be wrong.
    Progress is saved first, so after fixing the file the same call continues.

    Raises:
        SampleFailure: a sample cannot be decoded, or the prediction has the wrong shape,
            class count or values.
        LmsegError: the saved state belongs to other settings or is corrupt.
    """
    full_identity = run_identity(segmenter, dataset, identity, limit, shard)
    selected = select_indices(len(dataset), limit=limit, shard=shard)
    state = initial_state(state_path, full_identity, dataset.num_classes, restart)
    metric = SegmentationMetric.from_confusion(state.confusion, dataset.ignore_index)
    todo = [i for i in selected if dataset.pairs[i].sample_id not in state.done]
    if state.done:
        log.info("resuming: %d of %d samples already counted", len(selected) - len(todo), len(selected))
    started = time.perf_counter()
    bar = progress_bar(len(selected), f"evaluating {dataset.name}", initial=len(selected) - len(todo),
                       enabled=progress)
    processed = 0
    try:
        processed = _count_samples(segmenter, dataset, todo, metric, state, bar, num_workers=num_workers,
                                   save=lambda: save_state(state, metric, state_path, False), save_every=save_every,
                                   on_sample=on_sample)
    finally:
        bar.close()
        seconds = time.perf_counter() - started
        complete = all(dataset.pairs[i].sample_id in state.done for i in selected)
        save_state(state, metric, state_path, complete)  # also on any error or Ctrl-C: counted samples are never lost
    return EvaluationResult(
        scores=metric.compute(),
        identity=full_identity,
        class_names=tuple(dataset.class_names),
        num_samples=sum(dataset.pairs[i].sample_id in state.done for i in selected),
        num_selected=len(selected),
        complete=complete,
        seconds=seconds,
        processed=processed,
    )


def _count_samples(segmenter: Segmenter, dataset: SegmentationDataset, todo: list[int], metric: SegmentationMetric,
                   state: EvaluationState, bar, *, num_workers: int, save: Callable[[], None], save_every: int,
                   on_sample: Callable[[str], None] | None) -> int:
    """Decode ``todo`` in workers and count each sample; returns how many were counted."""
    processed = 0
    for position, sample in decode_in_workers(todo, dataset.__getitem__, num_workers=num_workers):
        if isinstance(sample, DecodeFailure):
            raise SampleFailure(f"sample {dataset.pairs[todo[position]].sample_id}: {sample.message}")
        evaluate_sample(segmenter, sample, dataset.vocabulary, metric)
        state.done.add(sample.sample_id)
        processed += 1
        bar.update(1)
        if on_sample is not None:
            on_sample(sample.sample_id)
        if processed % save_every == 0:
            save()
    return processed


def save_state(state: EvaluationState, metric: SegmentationMetric, state_path: str | Path | None,
               complete: bool) -> None:
    """Write ``metric``'s confusion matrix into ``state`` and the state to ``state_path`` (if any)."""
    if state_path is not None:
        state.confusion = metric.confusion
        state.complete = complete
        state.save(Path(state_path))


def initial_state(state_path, identity: dict, num_classes: int, restart: bool) -> EvaluationState:
    """The saved state at ``state_path`` to resume (its identity must equal ``identity``), or an empty one."""
    if state_path is None or restart or not Path(state_path).exists():
        return EvaluationState.empty(identity, num_classes)
    state = EvaluationState.load(Path(state_path))
    if state.identity != identity:
        changes = "\n  ".join(describe_differences(state.identity, identity))
        raise LmsegError(
            f"the saved evaluation state {state_path} was made with other settings, so it cannot be resumed:\n"
            f"  {changes}\nrerun with --restart to discard it and start again, or choose another --output"
        )
    if state.confusion.shape != (num_classes, num_classes):
        raise LmsegError(f"evaluation state {state_path} has a {state.confusion.shape} matrix, expected {num_classes}")
    return state
