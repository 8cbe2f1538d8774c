"""Network checks made before a download: the Hugging Face hub's address, and whether a host answers.

Both the vision weights (:mod:`lmseg.backbones.hub`) and the LLMs named by hub id
(:mod:`lmseg.llm.backends.vllm_backend`) ask :func:`reachable` first, so that an unreachable hub
fails within seconds instead of after ``huggingface_hub``'s minute of retries.
"""

from __future__ import annotations

import os
import socket
import urllib.parse

__all__ = ["CONNECT_TIMEOUT_S", "hub_endpoint", "reachable"]

#: Seconds to wait for a TCP connection to a host before treating it as unreachable.
CONNECT_TIMEOUT_S = 3.0


def hub_endpoint() -> str:
    """The Hugging Face hub's base URL: ``$HF_ENDPOINT`` (as ``huggingface_hub`` reads it) or
    ``https://huggingface.co``, without a trailing ``/``."""
    return os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/")


def reachable(url: str, timeout: float = CONNECT_TIMEOUT_S) -> bool:
    """Whether a TCP connection to ``url``'s host opens within ``timeout`` seconds (port 443 for
    ``https``, 80 otherwise, unless the URL names one)."""
    parts = urllib.parse.urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        socket.create_connection((parts.hostname or "", port), timeout=timeout).close()
    except OSError:
        return False
    return True
