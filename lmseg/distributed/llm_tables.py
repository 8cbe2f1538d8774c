"""LLM table stages on Ray: rows to do -> render -> generate -> validate -> append.

Any stage that fills a Parquet table with one validated LLM answer per key (the attribute
table, keyed by class index; MGCA's caption phrases, keyed by caption hash) runs here once it
offers the interface :class:`lmseg.llm.jobs.LLMTableJob`; how it runs is one
:class:`lmseg.llm.ray_engine.RayEngineOptions`. The driver reads the keys the table still
lacks, hands them out as a Ray Dataset, and appends every finished batch to the table at
once (atomic rewrite), so a killed driver loses only the batches in flight and a re-run
generates only what is missing. Two engines:

* ``actors``: an actor pool (``map_batches`` with ``concurrency=workers``), each actor
  holding one of the project's own backends (vLLM in-process, or the OpenAI-compatible
  client), built once per actor; each batch goes through the job's local step
  (:meth:`LLMTableJob.generate_batch`: render, generate, validate, retry). Works everywhere,
  CPU vLLM builds included.
* ``ray-data-llm``: ``ray.data.llm`` (``vLLMEngineProcessorConfig`` + ``build_processor``)
  renders in its preprocess step and generates on vLLM engine replicas on GPUs; the driver
  validates each answer with :meth:`LLMTableJob.accept` and sends invalid ones round again
  with the retry sampling settings, up to ``max_attempts`` rounds. Needs GPU nodes with the
  official vLLM (not the CPU build).
"""

from __future__ import annotations

import logging
import pickle
import time
from collections.abc import Hashable, Sequence
from pathlib import Path
from typing import Any

from lmseg.distributed.cluster import RayOptions, import_ray, ray_cluster
from lmseg.errors import LmsegError
from lmseg.llm.backends.base import SamplingSettings
from lmseg.llm.jobs import InvalidAnswer, LLMTableJob, TableReport
from lmseg.llm.ray_engine import BackendFactory, RayEngineOptions
from lmseg.llm.tables import exclusive_lock

log = logging.getLogger(__name__)


def run_llm_table_on_ray(job: LLMTableJob, options: RayOptions, engine: RayEngineOptions) -> TableReport:
    """Fill the table of ``job`` on the connected Ray cluster (see the module docstring).

    Args:
        job: the stage; the caller holds the table's lock for the whole run.
        options: workers, resources per worker, batch size.
        engine: the engine and what it needs.

    Returns:
        What was generated, skipped and failed (key -> (name, reason)), and the time taken.
    """
    started = time.perf_counter()
    keys, done = job.pending()
    report = TableReport(skipped=done)
    log.info("%s: %d rows to generate on Ray (%s, %d workers)", job.description, len(keys), engine.engine,
             options.workers)
    if keys:
        if engine.engine == "actors":
            assert engine.make_backend is not None  # RayEngineOptions checks it
            _run_actor_pool(job, options, engine.make_backend, keys, report, engine.worker_env)
        else:
            assert engine.model_source is not None  # RayEngineOptions checks it
            _run_ray_data_llm(job, options, engine.model_source, engine.vllm_engine_kwargs, keys, report)
    report.seconds = time.perf_counter() - started
    return report


def fill_table_on_ray(job: LLMTableJob, options: RayOptions, *, lock: Path, engine: RayEngineOptions) -> TableReport:
    """:func:`run_llm_table_on_ray` as a command runs it: holding the table's ``lock`` (the
    local run's lock file) and connected to the cluster of ``options`` for the whole run.

    Raises:
        LmsegError: another run holds the lock, the table was made another way, the cluster
            cannot be reached, or ``ray-data-llm`` was asked for on a cluster without GPUs.
    """
    with exclusive_lock(lock), ray_cluster(options) as ray:
        if engine.engine == "ray-data-llm" and not ray.cluster_resources().get("GPU"):
            raise LmsegError(
                "--ray-llm-engine ray-data-llm needs GPU nodes (ray.data.llm runs the official vLLM on GPUs) and "
                "this cluster has none; use --ray-llm-engine actors"
            )
        return run_llm_table_on_ray(job, options, engine)


# ------------------------------------------------------------------------- actor pool


class _GenerateActor:
    """A Ray Data actor: one backend, built once; each batch through the job's local step."""

    def __init__(self, job: LLMTableJob, make_backend: BackendFactory) -> None:
        self.job = job
        self.backend = make_backend()

    def __call__(self, batch: dict[str, Any]) -> dict[str, list[Any]]:
        keys = [pickle.loads(k) for k in batch["key"]]
        rows, failed = self.job.generate_batch(self.backend, keys)
        return {"rows": [pickle.dumps(rows)], "failed": [pickle.dumps(failed)]}


def _keys_dataset(keys: Sequence[Hashable], options: RayOptions) -> Any:
    """The keys to do as a Ray Dataset (keys pickled: ints and strings alike)."""
    data = import_ray("ray.data")
    blocks = max(1, min(len(keys), -(-len(keys) // options.batch_size)))
    return data.from_items([{"key": pickle.dumps(k)} for k in keys], override_num_blocks=blocks)


def _run_actor_pool(
    job: LLMTableJob,
    options: RayOptions,
    make_backend: BackendFactory,
    keys: list[Hashable],
    report: TableReport,
    worker_env: dict[str, str],
) -> None:
    results = _keys_dataset(keys, options).map_batches(
        _GenerateActor,
        fn_constructor_kwargs={"job": job, "make_backend": make_backend},
        batch_size=options.batch_size,
        concurrency=options.workers,
        **options.actor_options(worker_env),
    )
    for batch in results.iter_batches(batch_size=None, batch_format="numpy"):
        for rows_blob, failed_blob in zip(batch["rows"], batch["failed"], strict=True):
            rows, failed = pickle.loads(rows_blob), pickle.loads(failed_blob)
            if rows:
                job.save(rows)
            report.generated += len(rows)
            report.failed.update(failed)
            log.info("saved %d new rows (%d so far, %d failed)", len(rows), report.generated, len(report.failed))


# ------------------------------------------------------------------------- ray.data.llm


def _sampling_params(settings: SamplingSettings, attempt: int, schema: dict[str, Any]) -> dict[str, Any]:
    temperature, seed = settings.for_attempt(attempt)
    return {"temperature": temperature, "max_tokens": settings.max_tokens, "seed": seed,
            "structured_outputs": {"json": schema}}


def _run_ray_data_llm(
    job: LLMTableJob,
    options: RayOptions,
    model_source: str,
    engine_kwargs: dict[str, Any],
    keys: list[Hashable],
    report: TableReport,
) -> None:
    llm = import_ray("ray.data.llm")
    config = llm.vLLMEngineProcessorConfig(
        model_source=model_source,
        engine_kwargs=engine_kwargs,
        concurrency=options.workers,
        batch_size=options.batch_size,
    )
    schema = job.json_schema()
    reasons: dict[Hashable, str] = {}
    for attempt in range(job.max_attempts):
        if not keys:
            break
        params = _sampling_params(job.settings, attempt, schema)
        processor = llm.build_processor(
            config,
            preprocess=lambda row, params=params: {
                "key": row["key"], "messages": job.conversation(pickle.loads(row["key"])), "sampling_params": params,
            },
            postprocess=lambda row: {"key": row["key"], "answer": row["generated_text"]},
        )
        retry: list[Hashable] = []
        for batch in processor(_keys_dataset(keys, options)).iter_batches(batch_size=None, batch_format="numpy"):
            rows = []
            for key_blob, answer in zip(batch["key"], batch["answer"], strict=True):
                key = pickle.loads(key_blob)
                try:
                    rows.append(job.accept(key, str(answer)))
                    reasons.pop(key, None)
                except InvalidAnswer as exc:
                    reasons[key] = f"invalid answer: {exc}"
                    retry.append(key)
            if rows:
                job.save(rows)
            report.generated += len(rows)
        keys = retry
    report.failed.update({key: (job.name_of(key), reasons[key]) for key in keys})
