"""Evaluation and segmentation on a Ray cluster (``evaluate``/``segment --executor ray``).

The work items (sample indices of the split, or image paths) are read as a Ray Dataset and
handed in batches to an actor pool; each actor builds one segmenter when it starts and runs
the engine's per-sample step on every item (:func:`lmseg.evaluation.steps.evaluate_sample`,
:func:`lmseg.inference.outputs.segment_image`), decoding in the actor itself.

The driver builds no model: the settings that identify the run (the evaluation's identity,
``protocol.json``) come from one segmenter built by a task on the cluster, with a worker's
resources, before the pool starts (:func:`describe_on_worker`). Every segmenter on the
cluster runs with the driver's torch thread count (:func:`torch.get_num_threads`, what a
local run on the driver's machine uses), not Ray's default of one thread per reserved CPU:
float sums are then reduced in the same order as locally, and the results are the local ones.

Evaluation: each actor returns, per image, that image's confusion-matrix update (the non-zero
entries of its own ``(K, K)`` matrix: exact integer counts). The driver adds each update to
the run's matrix once per sample id, so a batch that Ray runs again after a worker died is
never counted twice, and none is lost: a batch counts only when its results reach the
driver. The driver saves the progress (the local runner's state file: same identity, same
matrix, same done-set) every ``save_every`` samples and when it stops for any reason, so a
local run can resume a Ray run and the other way round, and the report is the local one's.

Segmentation: each actor writes its images' output files (atomic writes: an image redone
after a worker died is simply written again) and returns what it wrote or why it failed.
"""

from __future__ import annotations

import logging
import pickle
import time
from collections.abc import Callable, Mapping
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch

from lmseg.data.dataset import SegmentationDataset
from lmseg.distributed.cluster import RayOptions, import_ray, ray_cluster
from lmseg.errors import LmsegError
from lmseg.evaluation.metric import SegmentationMetric
from lmseg.evaluation.runner import EvaluationResult, initial_state, run_identity, save_state, select_indices
from lmseg.evaluation.state import EvaluationState
from lmseg.evaluation.steps import SampleFailure, evaluate_sample
from lmseg.inference.outputs import (
    MAX_CLASS_PIXELS,
    SegmentSummary,
    check_output_dir,
    find_images,
    read_rgb,
    request_limits,
    segment_one,
    write_run_files,
)
from lmseg.inference.protocol import protocol_record
from lmseg.inference.segmenter import Segmenter
from lmseg.io.decoding import DecodeFailure, decode_in_workers
from lmseg.io.progress import progress_bar
from lmseg.vocab import Vocabulary

log = logging.getLogger(__name__)

SegmenterFactory = Callable[[], Segmenter]
T = TypeVar("T")


def _build(make_segmenter: SegmenterFactory, threads: int) -> Segmenter:
    """A segmenter on a worker, computing with ``threads`` torch threads (the driver's count)."""
    torch.set_num_threads(threads)
    return make_segmenter()


def describe_on_worker(describe: Callable[[Segmenter], T], make_segmenter: SegmenterFactory,
                       options: RayOptions) -> T:
    """``describe(segmenter)`` for a segmenter built on the connected cluster, not here.

    Runs as one task with a pool worker's resources (so ``--device cuda`` finds the GPU of a
    GPU worker, and the driver may be a machine without one); the segmenter is dropped after.
    """
    ray = import_ray()
    task = ray.remote(**options.actor_options())(_describe)
    return ray.get(task.remote(describe, make_segmenter, torch.get_num_threads()))


def _describe(describe: Callable[[Segmenter], T], make_segmenter: SegmenterFactory, threads: int) -> T:
    return describe(_build(make_segmenter, threads))


# ------------------------------------------------------------------------- actors


class _EvaluateActor:
    """Holds one segmenter; a batch of sample indices -> per-sample confusion updates."""

    def __init__(self, make_segmenter: SegmenterFactory, threads: int, dataset: SegmentationDataset) -> None:
        self.segmenter = _build(make_segmenter, threads)
        self.dataset = dataset

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, list[Any]]:
        indices = [int(i) for i in batch["index"]]
        out: dict[str, list[Any]] = {"sample_id": [], "update": [], "error": []}
        for position, sample in decode_in_workers(indices, self.dataset.__getitem__, num_workers=0):
            sample_id = self.dataset.pairs[indices[position]].sample_id
            metric = SegmentationMetric(self.dataset.num_classes, self.dataset.ignore_index)
            error = ""
            try:
                if isinstance(sample, DecodeFailure):
                    raise SampleFailure(f"sample {sample_id}: {sample.message}")
                evaluate_sample(self.segmenter, sample, self.dataset.vocabulary, metric)
            except LmsegError as exc:  # the sample's failure (as in the local loop), reported by the driver
                error = str(exc)
            confusion = metric.confusion
            rows, cols = np.nonzero(confusion)
            out["sample_id"].append(sample_id)
            out["update"].append(pickle.dumps((rows, cols, confusion[rows, cols])))
            out["error"].append(error)
        return out


class _SegmentActor:
    """Holds one segmenter; a batch of images -> their output files written, or their failures."""

    def __init__(
        self, make_segmenter: SegmenterFactory, threads: int, vocabulary: Vocabulary, output_dir: Path, scores: bool,
        max_class_pixels: int,
    ) -> None:
        self.segmenter = _build(make_segmenter, threads)
        self.vocabulary, self.output_dir, self.scores = vocabulary, output_dir, scores
        self.limits = request_limits(self.segmenter, len(vocabulary), scores=scores, max_class_pixels=max_class_pixels)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, list[Any]]:
        paths, stems = [Path(p) for p in batch["path"]], [str(s) for s in batch["stem"]]
        out: dict[str, list[Any]] = {"position": [], "written": [], "error": []}
        read = partial(read_rgb, limits=self.limits)
        for position, image in decode_in_workers(paths, read, num_workers=0):
            summary = SegmentSummary()
            message = segment_one(self.segmenter, image, self.vocabulary, self.output_dir, stems[position],
                                   self.scores, summary)
            out["position"].append(int(batch["position"][position]))
            out["written"].append([str(p) for p in summary.written])
            out["error"].append(message or "")
        return out


def _pool(dataset: Any, actor: type, make_segmenter: SegmenterFactory, constructor: Mapping[str, Any],
          options: RayOptions) -> Any:
    """``dataset`` mapped by an actor pool of ``options.workers`` actors, batches of ``batch_size``;
    each actor gets the segmenter factory, the driver's thread count and ``constructor``."""
    data = import_ray("ray.data")
    return dataset.map_batches(
        actor, fn_constructor_kwargs={"make_segmenter": make_segmenter, "threads": torch.get_num_threads(),
                                      **constructor},
        batch_size=options.batch_size, compute=data.ActorPoolStrategy(size=options.workers),
        **options.actor_options(),
    )


def _items(rows: list[dict[str, Any]], options: RayOptions) -> Any:
    """The work items as a Ray Dataset, one block per batch (so batches spread over the pool)."""
    data = import_ray("ray.data")
    return data.from_items(rows, override_num_blocks=max(1, -(-len(rows) // options.batch_size)))


# ------------------------------------------------------------------------- evaluation


def evaluate_dataset_on_ray(
    make_segmenter: SegmenterFactory,
    dataset: SegmentationDataset,
    options: RayOptions,
    *,
    identity_of: Callable[[Segmenter], Mapping[str, object]] | None = None,
    limit: int | None = None,
    state_path: str | Path | None = None,
    restart: bool = False,
    save_every: int = 25,
    progress: bool | None = None,
) -> EvaluationResult:
    """:func:`lmseg.evaluation.runner.evaluate_dataset` on a Ray cluster (same result, state, identity).

    Args:
        make_segmenter: builds the segmenter (picklable; called in each worker, never here).
        dataset: the opened split; it is sent to the workers, which must see the same files.
        options: cluster address, workers, resources per worker, images per batch.
        identity_of: the extra settings that identify the run (``identity`` of
            ``evaluate_dataset``: model name, weights, protocol record), computed from a
            segmenter built on the cluster (picklable).
        limit, state_path, restart, save_every, progress: as for ``evaluate_dataset``.

    Raises:
        SampleFailure: a sample cannot be decoded or evaluated (progress is saved first).
        LmsegError: the saved state belongs to other settings, the cluster is unreachable or
            too small, or the model cannot be built on a worker.
    """
    with ray_cluster(options):
        full_identity = describe_on_worker(partial(_identity, dataset=dataset, identity_of=identity_of, limit=limit),
                                           make_segmenter, options)
        selected = select_indices(len(dataset), limit=limit)
        state = initial_state(state_path, full_identity, dataset.num_classes, restart)
        metric = SegmentationMetric.from_confusion(state.confusion, dataset.ignore_index)
        todo = [i for i in selected if dataset.pairs[i].sample_id not in state.done]
        started, processed = time.perf_counter(), 0
        bar = progress_bar(len(selected), f"evaluating {dataset.name} on Ray", initial=len(selected) - len(todo),
                           enabled=progress)
        try:
            if todo:
                results = _pool(_items([{"index": i} for i in todo], options), _EvaluateActor, make_segmenter,
                                {"dataset": dataset}, options)
                processed = _count_updates(results, metric, state, bar, state_path, save_every)
        finally:
            bar.close()
            seconds = time.perf_counter() - started
            complete = all(dataset.pairs[i].sample_id in state.done for i in selected)
            save_state(state, metric, state_path, complete)  # also on any error or Ctrl-C
    return EvaluationResult(
        scores=metric.compute(), identity=full_identity, class_names=tuple(dataset.class_names),
        num_samples=sum(dataset.pairs[i].sample_id in state.done for i in selected), num_selected=len(selected),
        complete=complete, seconds=seconds, processed=processed,
    )


def _identity(segmenter: Segmenter, *, dataset: SegmentationDataset,
              identity_of: Callable[[Segmenter], Mapping[str, object]] | None, limit: int | None) -> dict:
    """The run's identity, as the local runner records it (computed on a worker)."""
    return run_identity(segmenter, dataset, identity_of(segmenter) if identity_of else None, limit, None)


def _count_updates(results: Any, metric: SegmentationMetric, state: EvaluationState, bar: Any,
                   state_path: str | Path | None, save_every: int) -> int:
    """Add each sample's update once (by sample id) as batches arrive; returns how many were added."""
    processed = 0
    for batch in results.iter_batches(batch_size=None, batch_format="numpy"):
        for sample_id, update, error in zip(batch["sample_id"], batch["update"], batch["error"], strict=True):
            if error:
                raise SampleFailure(str(error))
            if sample_id in state.done:  # a batch that Ray ran again after a worker died
                continue
            rows, cols, counts = pickle.loads(update)
            matrix = np.zeros((metric.num_classes, metric.num_classes), np.int64)
            matrix[rows, cols] = counts  # the sample's own matrix, rebuilt from its non-zero entries
            metric.merge(SegmentationMetric.from_confusion(matrix, metric.ignore_index))
            state.done.add(str(sample_id))
            processed += 1
            bar.update(1)
            if processed % save_every == 0:
                save_state(state, metric, state_path, False)
    return processed


# ------------------------------------------------------------------------- segmentation


def segment_files_on_ray(
    make_segmenter: SegmenterFactory,
    source: str | Path,
    vocabulary: Vocabulary,
    output_dir: str | Path,
    options: RayOptions,
    *,
    model_options: Mapping[str, object] | None = None,
    scores: bool = False,
    progress: bool | None = None,
    on_failure: Callable[[Path, str], None] | None = None,
    max_class_pixels: int = MAX_CLASS_PIXELS,
) -> SegmentSummary:
    """:func:`lmseg.inference.outputs.segment_files` on a Ray cluster (the same output files,
    the same bound of pixels x classes, :func:`~lmseg.inference.outputs.request_limits`).

    ``model_options`` are the builder options of ``make_segmenter`` (for ``protocol.json``, as
    ``segment_files``'s ``options``). The workers write into ``output_dir`` themselves: on a
    multi-machine cluster it must be a folder that every node sees at the same path (a shared
    file system).
    """
    images = find_images(source)
    check_output_dir(source, output_dir)
    output_dir = Path(output_dir).resolve()
    with ray_cluster(options):
        started = time.perf_counter()  # as segment_files: from the protocol record (it encodes the classes) on
        record = describe_on_worker(partial(protocol_record, vocabulary=vocabulary, options=model_options),
                                    make_segmenter, options)
        write_run_files(output_dir, vocabulary, record)
        summary = SegmentSummary()
        rows = [{"position": k, "path": str(path.resolve()), "stem": stem} for k, (path, stem) in enumerate(images)]
        constructor = {"vocabulary": vocabulary, "output_dir": output_dir, "scores": scores,
                       "max_class_pixels": max_class_pixels}
        results = _pool(_items(rows, options), _SegmentActor, make_segmenter, constructor, options)
        finished: dict[int, tuple[list[str], str]] = {}
        with progress_bar(len(images), "segmenting on Ray", enabled=progress) as bar:
            for batch in results.iter_batches(batch_size=None, batch_format="numpy"):
                for position, written, error in zip(batch["position"], batch["written"], batch["error"], strict=True):
                    position = int(position)
                    if position not in finished:  # an image redone after a worker died is reported once
                        bar.update(1)
                        if error and on_failure is not None:
                            on_failure(images[position][0], str(error))
                    finished[position] = (list(written), str(error))
        for position in sorted(finished):  # in input order, as the local run lists them
            written, error = finished[position]
            if error:
                summary.failed.append((images[position][0], error))
            else:
                summary.done.append(images[position][0])
                summary.written += [Path(p) for p in written]
        summary.seconds = time.perf_counter() - started
    return summary

