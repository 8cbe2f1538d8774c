"""The attribute stage (``gen_prompts --executor ray``) on a Ray cluster.

The driver holds the table's lock for the whole run (as the local run does), connects to
Ray and runs :func:`lmseg.distributed.llm_tables.fill_table_on_ray` on
an :class:`~lmseg.attributes.table_job.AttributeTableJob`: the same table, schema and
provenance as a local run, so local and Ray runs may even continue each other's tables.
"""

from __future__ import annotations

from typing import Any, Literal

from lmseg.attributes.generate import GenerationJob, GenerationReport
from lmseg.attributes.table_job import AttributeTableJob
from lmseg.distributed.cluster import RayOptions
from lmseg.distributed.llm_tables import BackendFactory, LLMEngine, fill_table_on_ray
from lmseg.errors import LmsegError

EngineChoice = Literal["auto", "actors", "ray-data-llm"]


def choose_engine(choice: EngineChoice, backend: str, options: RayOptions, *, scored: bool = False) -> LLMEngine:
    """``auto``: ``ray-data-llm`` for free generation with the vLLM backend on GPU workers, else
    ``actors``. The scored method needs next-word log-probabilities from the project's own vLLM
    backend, so it always runs on ``actors``.

    Raises:
        LmsegError: ``ray-data-llm`` asked for with the scored method.
    """
    if choice == "auto":
        use_llm = backend == "vllm" and options.gpus_per_worker > 0 and not scored
        return "ray-data-llm" if use_llm else "actors"
    if choice == "ray-data-llm" and scored:
        raise LmsegError("--ray-llm-engine ray-data-llm generates free text; the scored method (the default with "
                         "vllm) runs on --ray-llm-engine actors, or use --method generate")
    return choice


def generate_attributes_on_ray(
    job: GenerationJob,
    options: RayOptions,
    *,
    model_name: str,
    engine: LLMEngine,
    make_backend: BackendFactory,
    model_source: str | None = None,
    vllm_engine_kwargs: dict[str, Any] | None = None,
    worker_env: dict[str, str] | None = None,
) -> GenerationReport:
    """Generate the attributes that ``job.output`` lacks on Ray.

    Args:
        job: what to generate and where.
        options: cluster address and resources.
        model_name: the model's name as stored in the table.
        engine: ``actors`` or ``ray-data-llm``.
        make_backend: builds the project's backend inside each actor (``actors``).
        model_source: the model folder or hub id (``ray-data-llm``).
        vllm_engine_kwargs: vLLM engine arguments (``ray-data-llm``).
        worker_env: environment variables of each actor (``actors``).

    Raises:
        LmsegError: the table cannot be extended, another run holds it, the cluster cannot be
            reached, or ``ray-data-llm`` was asked for on a cluster without GPUs.
    """
    report = fill_table_on_ray(
        AttributeTableJob(job, model_name), options, lock=job.output, engine=engine, make_backend=make_backend,
        vllm_engine_kwargs=vllm_engine_kwargs, model_source=model_source, worker_env=worker_env,
    )
    report.output = job.output
    return report
