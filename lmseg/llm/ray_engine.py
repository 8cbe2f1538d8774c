"""How an LLM table stage runs on Ray: the engine and what it needs, in one value.

``actors`` (any machine, CPU vLLM builds included) runs an actor pool, each actor holding the
project's own backend built by ``make_backend``; ``ray-data-llm`` (GPU clusters) runs
``ray.data.llm`` on ``model_source`` with ``vllm_engine_kwargs``. The commands build a
:class:`RayEngineOptions` from their options (``pipelines/llm_options.py``) and the Ray executor
(:mod:`lmseg.distributed.llm_tables`) reads it; nothing here imports Ray.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from lmseg.errors import LmsegError
from lmseg.llm.backends.base import Backend

LLMEngine = Literal["actors", "ray-data-llm"]
EngineChoice = Literal["auto", "actors", "ray-data-llm"]
BackendFactory = Callable[[], Backend]


@dataclass(frozen=True)
class RayEngineOptions:
    """The Ray engine of an LLM table stage.

    Attributes:
        engine: ``actors`` or ``ray-data-llm``.
        make_backend: ``actors``: builds one backend inside each actor (picklable).
        model_source: ``ray-data-llm``: the model folder or hub id.
        vllm_engine_kwargs: ``ray-data-llm``: arguments of the vLLM engine (max_model_len, ...).
        worker_env: ``actors``: environment variables set in each actor.

    Raises:
        LmsegError: the engine lacks what it needs (a backend factory, a model).
    """

    engine: LLMEngine
    make_backend: BackendFactory | None = None
    model_source: str | None = None
    vllm_engine_kwargs: dict[str, object] = field(default_factory=dict)
    worker_env: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.engine == "actors" and self.make_backend is None:
            raise LmsegError("the actor engine needs a backend factory")
        if self.engine == "ray-data-llm" and self.model_source is None:
            raise LmsegError("the ray-data-llm engine needs the model")


def choose_engine(choice: EngineChoice, backend: str, gpus_per_worker: float, *, scored: bool = False) -> LLMEngine:
    """``auto``: ``ray-data-llm`` for free generation with the vLLM backend on GPU workers, else
    ``actors``. The scored method needs next-word log-probabilities from the project's own vLLM
    backend, so it always runs on ``actors``.

    Raises:
        LmsegError: ``ray-data-llm`` asked for with the scored method.
    """
    if choice == "auto":
        return "ray-data-llm" if backend == "vllm" and gpus_per_worker > 0 and not scored else "actors"
    if choice == "ray-data-llm" and scored:
        raise LmsegError("--ray-llm-engine ray-data-llm generates free text; the scored method (the default with "
                         "vllm) runs on --ray-llm-engine actors, or use --method generate")
    return choice
