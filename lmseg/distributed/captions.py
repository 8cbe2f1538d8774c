"""MGCA's caption stage (``parse_captions --executor ray``) on a Ray cluster.

The driver holds the lock of this run's part of the phrase table (as the local run does),
connects to Ray and runs :func:`lmseg.distributed.llm_tables.fill_table_on_ray` on a
:class:`~lmseg.captions.table_job.CaptionTableJob`: the same table folder, chunk files, schema
and provenance as a local run, so local and Ray runs may continue each other's tables.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from lmseg.captions.llm import CaptionJob, CaptionReport, lock_path
from lmseg.captions.table_job import CaptionTableJob
from lmseg.distributed.cluster import RayOptions
from lmseg.distributed.llm_tables import BackendFactory, LLMEngine, fill_table_on_ray


def parse_captions_on_ray(
    captions: Iterable[str],
    job: CaptionJob,
    options: RayOptions,
    *,
    model_name: str,
    engine: LLMEngine,
    make_backend: BackendFactory,
    model_source: str | None = None,
    vllm_engine_kwargs: dict[str, Any] | None = None,
    worker_env: dict[str, str] | None = None,
) -> CaptionReport:
    """Parse the captions that the table of ``job`` lacks on Ray (arguments as
    :func:`lmseg.distributed.attributes.generate_attributes_on_ray`).

    Raises:
        LmsegError: the table was made another way, another run holds its lock, the cluster
            cannot be reached, or ``ray-data-llm`` was asked for on a cluster without GPUs.
    """
    report = fill_table_on_ray(
        CaptionTableJob(job, model_name, captions), options, lock=lock_path(job), engine=engine,
        make_backend=make_backend, vllm_engine_kwargs=vllm_engine_kwargs, model_source=model_source,
        worker_env=worker_env,
    )
    failed = {sha: why for (sha, _), why in report.failed.items()}
    return CaptionReport(parsed=report.generated, skipped=report.skipped, failed=failed, seconds=report.seconds)
