"""Files from the Hugging Face hub: the local cache first, a download only where it can work.

:func:`hub_file` returns the path of ``filename`` of a hub repository:

1. a copy already in the local Hugging Face cache is used as it is (no network);
2. with downloads off (``LMSEG_OFFLINE=1``, ``HF_HUB_OFFLINE=1`` or ``download=False``), or when
   the hub's host does not accept a connection within
   :data:`~lmseg.io.net.CONNECT_TIMEOUT_S` seconds, it fails at once with one message saying
   how to get the file (instead of about 100 s of ``huggingface_hub`` retries);
3. otherwise ``huggingface_hub.hf_hub_download`` fetches it into that cache. A gated
   repository (SAM 3) that refuses the request is one message naming the page where access
   is requested and the two ways to give the token (``hf auth login`` or ``HF_TOKEN``).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, replace
from pathlib import Path

from lmseg.errors import LmsegError
from lmseg.io.net import CONNECT_TIMEOUT_S, hub_endpoint, reachable
from lmseg.paths import offline

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class HubFile:
    """One file of a Hugging Face hub repository.

    Attributes:
        repo_id: ``owner/name`` (``"facebook/sam3"``).
        filename: the file inside it (``"sam3.pt"``).
        gated: the repository asks users to accept its licence before downloading.
    """

    repo_id: str
    filename: str
    gated: bool = False

    @property
    def page(self) -> str:
        """The repository's web page (where access to a gated one is requested)."""
        return f"{hub_endpoint()}/{self.repo_id}"


def hub_offline() -> bool:
    """Whether downloads from the hub are off (``LMSEG_OFFLINE`` or ``HF_HUB_OFFLINE``)."""
    flag = os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")
    return offline() or flag


def cached_hub_file(entry: HubFile) -> Path | None:
    """The file in the local Hugging Face cache, or None (never touches the network)."""
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(entry.repo_id, entry.filename)
    return Path(found) if isinstance(found, str) else None


def access_hint(entry: HubFile) -> str:
    """How to get a file that could not be had (one sentence or two)."""
    get = f"`hf download {entry.repo_id} {entry.filename}`"
    if entry.gated:
        return (f"{entry.repo_id} is gated: request access at {entry.page} (log in, accept the licence), then "
                f"give your token with `hf auth login` or HF_TOKEN and run again, or download {entry.filename} "
                f"({get}) where you have access and pass its path")
    return f"download it where the hub is reachable ({get}) or pass the path of a copy you have"


def hub_file(entry: HubFile, *, download: bool | None = None, what: str | None = None) -> Path:
    """The local path of a hub file (see the module docstring for the order of attempts).

    Args:
        entry: the repository and file.
        download: allow a download (None: unless ``LMSEG_OFFLINE``/``HF_HUB_OFFLINE`` is set).
        what: a name for messages (default ``repo_id/filename``).

    Raises:
        LmsegError: not cached and not downloadable (offline, unreachable, gated without
            access, missing), with one message saying what to do.
    """
    what = what or f"{entry.repo_id}/{entry.filename}"
    cached = cached_hub_file(entry)
    if cached is not None:
        return cached
    allowed = (not hub_offline()) if download is None else download
    if not allowed:
        raise LmsegError(f"{what} is not in the local Hugging Face cache and downloads are off "
                         f"(LMSEG_OFFLINE / HF_HUB_OFFLINE); " + access_hint(entry))
    if not reachable(hub_endpoint()):
        raise LmsegError(f"{what} is not in the local Hugging Face cache and {hub_endpoint()} cannot be reached "
                         f"within {CONNECT_TIMEOUT_S:g} s; " + access_hint(entry))
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import GatedRepoError, HfHubHTTPError, RepositoryNotFoundError

    log.info("downloading %s from the Hugging Face hub", what)
    try:
        return Path(hf_hub_download(entry.repo_id, entry.filename))
    except GatedRepoError:
        raise LmsegError(f"access to {what} was refused; " + access_hint(replace(entry, gated=True))) from None
    except RepositoryNotFoundError:
        # the hub answers 401 "not found" for a gated repository without a token
        raise LmsegError(f"{what} was not found or access was refused; "
                         + access_hint(replace(entry, gated=True))) from None
    except (HfHubHTTPError, OSError, ValueError) as exc:
        raise LmsegError(f"could not download {what}: {str(exc).splitlines()[0]}; " + access_hint(entry)) from exc
