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
* ``shard=(i, n)`` takes every ``n``-th sample starting at ``i`` (after ``limit``); the
  shards' matrices sum to the full split's (:func:`lmseg.evaluation.shards.merge_states`).
"""

from __future__ import annotations

import dataclasses
import logging
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lmseg.data.dataset import Sample, SegmentationDataset
from lmseg.errors import LmsegError
from lmseg.evaluation.metric import SegmentationMetric, SegmentationScores
from lmseg.evaluation.state import EvaluationState, describe_differences

__all__ = [
    "EvaluationResult",
    "SampleFailure",
    "dataset_identity",
    "evaluate_dataset",
    "segmenter_settings",
    "select_indices",
]

log = logging.getLogger(__name__)


class SampleFailure(LmsegError):
    """A sample could not be decoded or the segmenter's answer for it is unusable (progress is saved)."""


@dataclass(frozen=True)
class FailedSample:
    """A sample that could not be decoded (returned by the loader instead of raising)."""

    sample_id: str
    message: str


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


def segmenter_settings(segmenter: object) -> dict:
    """The settings a segmenter reports about itself, JSON-ready (``{}`` if it reports none).

    A segmenter may expose them as a ``settings()`` method or ``settings`` attribute, a
    ``describe()`` method, or a ``config`` attribute; each may be a mapping or a dataclass
    (resize, sliding window, background threshold, weights, attribute table, ...).
    """
    for name in ("settings", "describe", "config"):
        value = getattr(segmenter, name, None)
        if callable(value) and not dataclasses.is_dataclass(value):
            value = value()
        if value is None:
            continue
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            value = dataclasses.asdict(value)
        if isinstance(value, Mapping):
            return jsonable(dict(value))
    return {}


def jsonable(value: object) -> object:
    """``value`` with paths, tuples, numpy scalars and other objects turned into JSON types."""
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        items = [jsonable(v) for v in value]
        return sorted(items, key=str) if isinstance(value, (set, frozenset)) else items
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return jsonable(dataclasses.asdict(value))
    return str(value)


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
    """Sample indices of the first ``limit`` samples, then every ``n``-th from ``i`` for shard ``(i, n)``."""
    if limit is not None and limit < 1:
        raise LmsegError(f"--limit must be at least 1, got {limit}")
    indices = list(range(num_samples if limit is None else min(limit, num_samples)))
    if shard is not None:
        index, count = shard
        if count < 1 or not 0 <= index < count:
            raise LmsegError(f"shard index must be in 0..{count - 1} for {count} shards, got {index}")
        indices = indices[index::count]
    return indices


# ------------------------------------------------------------------------- loading


class _DecodeSamples:
    """Map-style dataset over chosen indices; decoding errors come back as :class:`FailedSample`."""

    def __init__(self, dataset: SegmentationDataset, indices: Sequence[int]) -> None:
        self.dataset = dataset
        self.indices = list(indices)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, position: int) -> Sample | FailedSample:
        index = self.indices[position]
        try:
            return self.dataset[index]
        except LmsegError as exc:
            return FailedSample(self.dataset.pairs[index].sample_id, str(exc))


def collate_samples(batch: list) -> list:
    """Keep a batch as a list (images differ in size; :class:`Sample` is a dataclass)."""
    return list(batch)


def iterate_samples(
    dataset: SegmentationDataset, indices: Sequence[int], *, num_workers: int = 2, prefetch_factor: int = 2
):
    """Yield decoded samples (or :class:`FailedSample`) in ``indices`` order, decoded by workers."""
    from torch.utils.data import DataLoader  # torch only where evaluation actually runs

    source = _DecodeSamples(dataset, indices)
    if not len(source):
        return
    loader = DataLoader(
        source,
        batch_size=1,
        shuffle=False,
        num_workers=num_workers,
        collate_fn=collate_samples,
        prefetch_factor=prefetch_factor if num_workers > 0 else None,
        persistent_workers=False,
    )
    for batch in loader:
        yield from batch


# ------------------------------------------------------------------------- the run


def evaluate_dataset(
    segmenter: object,
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
        shard: ``(index, count)``: only every ``count``-th selected sample from ``index``.
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
    from lmseg import __version__

    full_identity = {
        "lmseg_version": __version__,
        **jsonable(dict(identity or {})),
        "segmenter": segmenter_settings(segmenter),
        "dataset": dataset_identity(dataset),
        "limit": limit,
        "shard": list(shard) if shard else None,
    }
    selected = select_indices(len(dataset), limit=limit, shard=shard)
    state = _initial_state(state_path, full_identity, dataset.num_classes, restart)
    metric = SegmentationMetric.from_confusion(state.confusion, dataset.ignore_index)
    todo = [i for i in selected if dataset.pairs[i].sample_id not in state.done]
    if state.done:
        log.info("resuming: %d of %d samples already counted", len(selected) - len(todo), len(selected))

    vocabulary = dataset.vocabulary
    processed, unsaved = 0, 0
    started = time.perf_counter()

    def save(complete: bool = False) -> None:
        if state_path is not None:
            state.confusion = metric.confusion
            state.complete = complete
            state.save(Path(state_path))

    from tqdm import tqdm

    bar = tqdm(
        total=len(selected),
        initial=len(selected) - len(todo),
        desc=f"evaluating {dataset.name}",
        unit="img",
        disable=not sys.stderr.isatty() if progress is None else not progress,
    )
    try:
        for item in iterate_samples(dataset, todo, num_workers=num_workers):
            if isinstance(item, FailedSample):
                raise SampleFailure(f"sample {item.sample_id}: {item.message}")
            prediction = _predict(segmenter, item, vocabulary)
            try:
                metric.update(prediction, item.label)
            except LmsegError as exc:
                raise SampleFailure(f"sample {item.sample_id} ({item.image_path}): {exc}") from None
            state.done.add(item.sample_id)
            processed += 1
            unsaved += 1
            bar.update(1)
            if on_sample is not None:
                on_sample(item.sample_id)
            if unsaved >= save_every:
                save()
                unsaved = 0
    finally:
        bar.close()
        seconds = time.perf_counter() - started
        complete = all(dataset.pairs[i].sample_id in state.done for i in selected)
        save(complete)  # on success, and also on any error or Ctrl-C: counted samples are never lost

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


def _initial_state(state_path, identity: dict, num_classes: int, restart: bool) -> EvaluationState:
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


def _predict(segmenter: object, sample: Sample, vocabulary) -> np.ndarray:
    result = segmenter.predict(sample.image, vocabulary)
    label_map = np.asarray(result.label_map)
    if label_map.shape != sample.label.shape:
        raise SampleFailure(
            f"sample {sample.sample_id}: the segmenter returned a {label_map.shape} label map for a "
            f"{sample.label.shape} label (it must predict at the image's resolution)"
        )
    if len(result.class_names) != len(vocabulary):
        raise SampleFailure(
            f"sample {sample.sample_id}: the segmenter returned {len(result.class_names)} classes for a "
            f"{len(vocabulary)}-class vocabulary"
        )
    return label_map
