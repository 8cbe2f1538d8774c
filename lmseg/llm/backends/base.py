"""What every LLM backend provides, and the sampling settings they share.

A backend turns a batch of chat conversations into raw text answers, one per conversation,
in order. It does not parse or validate the answers (each stage does, through
:func:`lmseg.llm.jobs.ask`), and it retries only transport failures (timeouts, dropped
connections, HTTP 5xx/429); a malformed answer is retried by the caller with the next
attempt's sampling settings. A conversation the model cannot take (longer than its context)
is answered with a :class:`RequestFailed` that says so, never by failing the whole batch.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from lmseg.errors import LmsegError
from lmseg.llm.instruction import ChatMessages


class BackendUnavailable(LmsegError):
    """The model cannot be reached or loaded at all (no point in trying other classes)."""


@dataclass(frozen=True)
class RequestFailed:
    """A request that got no answer even after the backend's own retries.

    Attributes:
        reason: a one-line description (exception type and message; never an API key).
        input_refused: the model refused this input itself (too long for its context, or a
            server's 400 Bad Request): a failure of this key only, not of the backend.
    """

    reason: str
    input_refused: bool = False


@dataclass(frozen=True)
class SamplingSettings:
    """How answers are sampled.

    The first attempt uses ``temperature`` (0 = greedy); each retry of a malformed answer uses
    ``retry_temperature`` and the seed ``seed + attempt``, so that it can come out differently.

    Attributes:
        temperature: sampling temperature of the first attempt, >= 0.
        retry_temperature: temperature of retries, > 0.
        max_tokens: most tokens generated per answer.
        seed: base random seed.
    """

    temperature: float = 0.0
    retry_temperature: float = 0.7
    max_tokens: int = 160
    seed: int = 0

    def __post_init__(self) -> None:
        if not (math.isfinite(self.temperature) and self.temperature >= 0
                and math.isfinite(self.retry_temperature) and self.retry_temperature > 0):
            raise LmsegError("temperature must be a finite number >= 0 and retry temperature one > 0")
        if self.max_tokens < 16:
            raise LmsegError("max_tokens must be >= 16")

    def for_attempt(self, attempt: int) -> tuple[float, int]:
        """(temperature, seed) of attempt ``attempt`` (0-based)."""
        return (self.temperature if attempt == 0 else self.retry_temperature, self.seed + attempt)


class Backend(Protocol):
    """An LLM that answers chat conversations with JSON constrained by a schema."""

    @property
    def model_name(self) -> str:
        """The model's name as stored in the table (a hub id, folder name or served name)."""
        ...

    def generate(
        self,
        conversations: Sequence[ChatMessages],
        json_schema: dict[str, Any],
        settings: SamplingSettings,
        attempt: int,
    ) -> list[str | RequestFailed]:
        """Answer every conversation, in order.

        Args:
            conversations: chat messages, one conversation per class.
            json_schema: the schema the answers must follow (structured output).
            settings: sampling settings; use ``settings.for_attempt(attempt)``.
            attempt: 0 for the first try of these conversations, 1 for the first retry, ...

        Returns:
            One raw answer text or :class:`RequestFailed` per conversation.

        Raises:
            BackendUnavailable: the model or server cannot be used at all.
        """
        ...
