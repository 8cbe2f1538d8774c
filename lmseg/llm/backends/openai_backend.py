"""Generation through any OpenAI-compatible chat-completions server.

Works with a remote ``vllm serve``, hosted APIs, llama.cpp's and Ollama's servers. Requests
run concurrently (``concurrency`` at a time); each has a timeout, and transport failures
(connection errors, timeouts, HTTP 408/409/429/5xx) are retried by the openai client with
exponential backoff. The answer format is asked for with ``response_format`` (a JSON schema
by default); servers may ignore it, so answers are validated by the caller anyway.

The API key is read from an environment variable and is never written to disk or logs.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Sequence
from typing import Any, Literal

import openai

from lmseg.llm.backends.base import BackendUnavailable, RequestFailed, SamplingSettings
from lmseg.llm.instruction import ChatMessages

log = logging.getLogger(__name__)

ResponseFormat = Literal["json_schema", "json_object", "none"]


class OpenAIBackend:
    """A model behind an OpenAI-compatible server.

    Args:
        base_url: the API root, e.g. ``http://127.0.0.1:8000/v1``.
        model: the served model name; None takes the server's only (or first) model.
        api_key_env: the environment variable holding the API key (unset: no key).
        concurrency: requests in flight at once.
        timeout: seconds per request attempt.
        max_retries: retries of a request after transport failures.
        response_format: ``json_schema`` (structured output), ``json_object`` or ``none``
            for servers that support less.

    Raises:
        BackendUnavailable: the server cannot be reached, rejects the key, or does not
            serve ``model``.
    """

    def __init__(
        self,
        base_url: str,
        model: str | None = None,
        *,
        api_key_env: str = "OPENAI_API_KEY",
        concurrency: int = 8,
        timeout: float = 60.0,
        max_retries: int = 3,
        response_format: ResponseFormat = "json_schema",
    ) -> None:
        self._base_url = base_url
        self._api_key = os.environ.get(api_key_env) or "EMPTY"
        if self._api_key == "EMPTY":
            log.warning("$%s is not set: no API key is sent (a server that needs one answers 401 Unauthorized)",
                        api_key_env)
        self._client_args = {"base_url": base_url, "api_key": self._api_key, "timeout": timeout,
                             "max_retries": max_retries}
        self._concurrency = concurrency
        self._response_format = response_format
        self._model_name = self._check_server(model, api_key_env)

    @property
    def model_name(self) -> str:
        return self._model_name

    def _scrub(self, text: str) -> str:
        return text.replace(self._api_key, "***") if self._api_key != "EMPTY" else text

    def _check_server(self, model: str | None, api_key_env: str) -> str:
        """Ask the server for its models before any real work; returns the model to use."""
        client = openai.OpenAI(**{**self._client_args, "max_retries": 1})
        try:
            served = [m.id for m in client.models.list()]
        except openai.AuthenticationError:
            if self._api_key == "EMPTY":
                raise BackendUnavailable(
                    f"the server at {self._base_url} needs an API key (401 Unauthorized); ${api_key_env} is not set, "
                    f"so no key was sent: set it, or name the variable that holds the key with --api-key-env"
                ) from None
            raise BackendUnavailable(
                f"the server at {self._base_url} rejected the API key (read from ${api_key_env})"
            ) from None
        except openai.NotFoundError:
            if model is None:
                raise BackendUnavailable(
                    f"the server at {self._base_url} does not list its models; pass --model"
                ) from None
            log.warning("the server at %s does not list its models; using %r unchecked", self._base_url, model)
            return model
        except openai.APIError as exc:
            raise BackendUnavailable(
                f"cannot reach an OpenAI-compatible server at {self._base_url}: "
                f"{type(exc).__name__}: {self._scrub(str(exc))}"
            ) from None
        finally:
            client.close()
        if not served:
            raise BackendUnavailable(f"the server at {self._base_url} serves no model")
        if model is None:
            return served[0]
        if model not in served:
            raise BackendUnavailable(f"the server at {self._base_url} does not serve {model!r}; it serves {served}")
        return model

    def generate(
        self,
        conversations: Sequence[ChatMessages],
        json_schema: dict[str, Any],
        settings: SamplingSettings,
        attempt: int,
    ) -> list[str | RequestFailed]:
        """Answer all conversations concurrently (see ``Backend``)."""
        temperature, seed = settings.for_attempt(attempt)
        request = {"model": self._model_name, "temperature": temperature, "max_tokens": settings.max_tokens,
                   "seed": seed}
        if self._response_format == "json_schema":
            request["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "category_attributes", "schema": json_schema, "strict": False},
            }
        elif self._response_format == "json_object":
            request["response_format"] = {"type": "json_object"}
        return asyncio.run(self._generate(conversations, request))

    async def _generate(self, conversations: Sequence[ChatMessages], request: dict[str, Any]) -> list[str | RequestFailed]:
        """Send one chat request per conversation, ``concurrency`` at a time."""
        gate = asyncio.Semaphore(self._concurrency)

        async with openai.AsyncOpenAI(**self._client_args) as client:

            async def one(messages: ChatMessages) -> str | RequestFailed:
                async with gate:
                    try:
                        response = await client.chat.completions.create(messages=messages, **request)
                    except Exception as exc:  # any failure of one request is reported, not raised
                        # 400: the server refuses this request itself (e.g. longer than the model's context)
                        return RequestFailed(f"{type(exc).__name__}: {self._scrub(str(exc))}",
                                             input_refused=isinstance(exc, openai.BadRequestError))
                choices = getattr(response, "choices", None)  # bodies that are not JSON come back as text
                if not choices:
                    return RequestFailed(f"the server's reply is not a chat completion: {str(response)[:80]!r}")
                return choices[0].message.content or ""

            return list(await asyncio.gather(*(one(m) for m in conversations)))
