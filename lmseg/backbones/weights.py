"""Weight resolution: a local file, or a known checkpoint fetched once into the weights cache.

Model code never downloads anything implicitly. A builder receives a *weights spec* from the
user and calls :func:`resolve_weights`, which returns the path of a file on disk:

* an existing file path is returned as it is (any name, any folder);
* a known name (``sam_vit_b``, ``sam_vit_l``, ``sam_vit_h``, ``dino_vitb16``,
  ``sam2.1_hiera_tiny`` ...; see :data:`KNOWN_WEIGHTS`) with an official URL is looked up in the
  weights cache, ``<cache>/weights/<filename>`` (``<cache>`` is :func:`lmseg.paths.cache_dir`).
  If it is not there it is downloaded from that URL with a progress bar, checked against its
  size and sha256 where they are known, and moved into place atomically
  (:func:`lmseg.io.atomic.atomic_path`), so an interrupted or corrupt download never leaves a
  file under the final name;
* a known name or model-hub id whose file lives on the Hugging Face hub (``sam3`` /
  ``facebook/sam3``, ``dinov3_vitb16`` / ``timm/vit_base_patch16_dinov3.lvd1689m``, ...) comes
  from the local Hugging Face cache, or is downloaded into it (:mod:`lmseg.backbones.hub`:
  offline and unreachable hubs fail at once; the gated SAM 3 says how to get access);
* anything else is an :class:`~lmseg.errors.LmsegError` that says what to download and where to
  put it.

Downloads are skipped (and the message says what to do instead) when ``download=False`` is
passed or the environment variable ``LMSEG_OFFLINE`` is set to ``1``/``true``/``yes``.

Where the checksums come from: Meta publishes no checksums for the SAM checkpoints. The sha256
digests and sizes below are the values that several independent public projects record for
these exact URLs in their own verified-download code (for example micro-sam's model registry
and the Fooocus/SimpleSDXL model lists); all sources agree. They could not be re-computed here
because the files cannot be downloaded on the development machines. For DINO ViT-B/16 no
published checksum or size was found: it is marked unknown (``None``) and only the strict key
check at load time guards that file.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import logging
import os
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from lmseg.backbones.hub import HubFile, hub_file
from lmseg.errors import LmsegError
from lmseg.io.atomic import atomic_path
from lmseg.paths import cache_dir, offline

log = logging.getLogger(__name__)

_CHUNK = 1 << 20


@dataclass(frozen=True)
class KnownWeights:
    """A checkpoint that lmseg knows how to fetch.

    Attributes:
        name: the short name a user passes instead of a path (e.g. ``"sam_vit_b"``).
        url: where the publisher serves the file ("" where only the hub has it).
        filename: the file's name in the weights cache.
        sha256: lowercase hex digest of the whole file, or None where none is known.
        size: file size in bytes, or None where it is not known.
        description: one line naming the model, used in messages.
        hub: the same file on the Hugging Face hub (its ``repo_id`` is also accepted as a
            name), or None.
        licence: the weights' licence, as the publisher names it.
    """

    name: str
    url: str
    filename: str
    sha256: str | None
    size: int | None
    description: str
    hub: HubFile | None = None
    licence: str = ""


_SAM_URL = "https://dl.fbaipublicfiles.com/segment_anything/"
_SAM2_URL = "https://dl.fbaipublicfiles.com/segment_anything_2/092824/"

#: The original SAM checkpoints: (size, file name, sha256, bytes); see the module docstring for the digests.
_SAM_WEIGHTS = (
    ("b", "sam_vit_b_01ec64.pth", "ec2df62732614e57411cdcf32a23ffdf28910380d03139ee0f4fcbe91eb8c912", 375_042_383),
    ("l", "sam_vit_l_0b3195.pth", "3adcc4315b642a4d2101128f611684e8734c41232a17c648ed1693702a49a622", 1_249_524_607),
    ("h", "sam_vit_h_4b8939.pth", "a7bf3b02f3ebf1267aba913ff637d9a2d5c33d3173bb679e46d9f338c26f262e", 2_564_550_879),
)

#: timm's hub copies of the DINOv2, DINOv3 and C-RADIO weights: (known name, timm model.tag,
#: description, licence). The same names are the backbones of :mod:`lmseg.backbones.dense_vit`.
_TIMM_HUB_WEIGHTS = (
    ("dinov2_vits14", "vit_small_patch14_dinov2.lvd142m", "DINOv2 ViT-S/14", "Apache-2.0"),
    ("dinov2_vitb14", "vit_base_patch14_dinov2.lvd142m", "DINOv2 ViT-B/14", "Apache-2.0"),
    ("dinov2_vitl14", "vit_large_patch14_dinov2.lvd142m", "DINOv2 ViT-L/14", "Apache-2.0"),
    ("dinov2_vitb14_reg", "vit_base_patch14_reg4_dinov2.lvd142m", "DINOv2 ViT-B/14 with registers", "Apache-2.0"),
    ("dinov3_vits16", "vit_small_patch16_dinov3.lvd1689m", "DINOv3 ViT-S/16", "DINOv3 License"),
    ("dinov3_vitb16", "vit_base_patch16_dinov3.lvd1689m", "DINOv3 ViT-B/16", "DINOv3 License"),
    ("dinov3_vitl16", "vit_large_patch16_dinov3.lvd1689m", "DINOv3 ViT-L/16", "DINOv3 License"),
    ("radio_v3_b", "naflexvit_base_patch16_radio_v3.c_radio", "C-RADIOv3-B", "NVIDIA Open Model License"),
    ("radio_v3_l", "naflexvit_large_patch16_radio_v3.c_radio", "C-RADIOv3-L", "NVIDIA Open Model License"),
    ("radio_v4_so400m", "naflexvit_so400m_patch16_radio_v4.c_radio", "C-RADIOv4-SO400M",
     "NVIDIA Open Model License"),
)

KNOWN_WEIGHTS: dict[str, KnownWeights] = {
    w.name: w
    for w in (
        *(
            KnownWeights(
                name=f"sam_vit_{size}",
                url=_SAM_URL + filename,
                filename=filename,
                sha256=sha256,
                size=nbytes,
                description=f"Segment Anything ViT-{size.upper()} (official checkpoint)",
                licence="Apache-2.0",
            )
            for size, filename, sha256, nbytes in _SAM_WEIGHTS
        ),
        KnownWeights(
            name="dino_vitb16",
            url="https://dl.fbaipublicfiles.com/dino/dino_vitbase16_pretrain/dino_vitbase16_pretrain.pth",
            filename="dino_vitbase16_pretrain.pth",
            sha256=None,  # no published checksum found; see the module docstring
            size=None,
            description="DINO ViT-B/16 backbone (official checkpoint, checksum unknown)",
            licence="Apache-2.0",
        ),
        *(
            KnownWeights(
                name=f"sam2.1_hiera_{size}",
                url=f"{_SAM2_URL}sam2.1_hiera_{size}.pt",
                filename=f"sam2.1_hiera_{size}.pt",
                sha256=None,  # Meta publishes none for SAM 2.1; the strict key check guards the file
                size=None,
                description=f"SAM 2.1 Hiera-{size} (official checkpoint, checksum unknown)",
                hub=HubFile(f"facebook/sam2.1-hiera-{size.replace('_', '-')}", f"sam2.1_hiera_{size}.pt"),
                licence="Apache-2.0",
            )
            for size in ("tiny", "small", "base_plus", "large")
        ),
        KnownWeights(
            name="sam3",
            url="",
            filename="sam3.pt",
            sha256=None,
            size=None,
            description="SAM 3 image and video model (official checkpoint, gated on the Hugging Face hub)",
            hub=HubFile("facebook/sam3", "sam3.pt", gated=True),
            licence="SAM License",
        ),
        *(
            KnownWeights(
                name=name,
                url="",
                filename=f"{timm_name}.safetensors",
                sha256=None,
                size=None,
                description=f"{what} (timm's copy on the Hugging Face hub)",
                hub=HubFile(f"timm/{timm_name}", "model.safetensors"),
                licence=licence,
            )
            for name, timm_name, what, licence in _TIMM_HUB_WEIGHTS
        ),
    )
}

#: Known names by their hub repository id (``"facebook/sam3"`` -> ``"sam3"``).
HUB_IDS: dict[str, str] = {w.hub.repo_id: w.name for w in KNOWN_WEIGHTS.values() if w.hub is not None}


def weights_dir() -> Path:
    """The weights cache folder, ``<cache>/weights`` (not created here)."""
    return cache_dir() / "weights"


def downloads_allowed(download: bool | None = None) -> bool:
    """Whether a missing known checkpoint may be downloaded.

    Args:
        download: an explicit choice; None means "yes unless ``LMSEG_OFFLINE`` is set".
    """
    if download is not None:
        return download
    return not offline()


def resolve_weights(
    spec: str | os.PathLike[str],
    *,
    download: bool | None = None,
    root: Path | None = None,
    known: dict[str, KnownWeights] | None = None,
) -> Path:
    """Turn a weights spec (a file path or a known name) into the path of a file on disk.

    Args:
        spec: a path to an existing checkpoint file, or a name from ``known``.
        download: allow downloading a missing known checkpoint (None: unless ``LMSEG_OFFLINE``).
        root: the weights cache folder (default :func:`weights_dir`).
        known: the table of known names (default :data:`KNOWN_WEIGHTS`).

    Returns:
        The path of the checkpoint file.

    Raises:
        LmsegError: the file does not exist, the name is unknown, or the download failed.
    """
    known = KNOWN_WEIGHTS if known is None else known
    path = Path(spec).expanduser()
    if path.is_file():
        return path
    name = os.fspath(spec)
    entry = known.get(name) or known.get(HUB_IDS.get(name, ""))
    if entry is not None:
        if entry.hub is not None and (name == entry.hub.repo_id or not entry.url):
            return hub_file(entry.hub, download=download, what=entry.description)
        return fetch_known(entry, download=download, root=root)
    if os.sep in name or "/" in name or path.suffix:
        hint = f" (known hub ids: {', '.join(sorted(HUB_IDS))})" if name.count("/") == 1 and not path.suffix else ""
        raise LmsegError(f"weights file not found: {path}{hint}")
    raise LmsegError(
        f"unknown weights name {name!r}: pass the path of a checkpoint file, or one of "
        f"{', '.join(sorted(known))} (or the hub id of one of them)"
    )


def fetch_known(entry: KnownWeights, *, download: bool | None = None, root: Path | None = None) -> Path:
    """The cached file of a known checkpoint, downloading it first if it is missing.

    A file already in the cache is checked against the known size (cheap) and, once, against
    the sha256; the verified digest is remembered in ``<file>.sha256`` so that later loads do
    not hash gigabytes again.

    Raises:
        LmsegError: the file is missing and may not or could not be downloaded, or the cached
            file does not match the known size or checksum.
    """
    if not entry.url and entry.hub is not None:
        return hub_file(entry.hub, download=download, what=entry.description)
    root = weights_dir() if root is None else Path(root)
    dest = root / entry.filename
    if dest.is_file():
        _check_cached(entry, dest)
        return dest
    if not downloads_allowed(download):
        raise LmsegError(f"{entry.description} ({entry.name}) is not in the weights cache and downloads are off. "
                         + _manual_hint(entry, dest))
    log.info("downloading %s from %s to %s", entry.name, entry.url, dest)
    download_file(entry.url, dest, sha256=entry.sha256, size=entry.size, what=entry.description)
    if entry.sha256 is not None:
        _stamp_path(dest).write_text(entry.sha256 + "\n")
    return dest


def _download_to(tmp: Path, url: str, dest: Path, *, what: str, size: int | None, sha256: str | None,
                 timeout: float) -> int:
    """Stream ``url`` into ``tmp`` and verify size and checksum; returns the bytes received."""
    digest = hashlib.sha256()
    received = 0
    with open(tmp, "wb") as out:
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response:
                length = response.headers.get("Content-Length") if hasattr(response, "headers") else None
                total = int(length) if length and length.isdigit() else size
                with _progress(total, dest.name) as bar:
                    while chunk := response.read(_CHUNK):
                        out.write(chunk)
                        digest.update(chunk)
                        received += len(chunk)
                        bar.update(len(chunk))
        except (urllib.error.URLError, http.client.HTTPException, TimeoutError, ConnectionError) as exc:
            if isinstance(exc, urllib.error.HTTPError):
                reason: object = f"HTTP {exc.code} {exc.reason}"
            else:
                reason = getattr(exc, "reason", None) or exc
            raise LmsegError(
                f"could not download {what} from {url}: {reason}. Download it yourself (for example "
                f"with a browser or `curl -L -o {dest} {url}`) and put it at {dest}, or pass the path "
                "of a copy you already have."
            ) from exc
    if size is not None and received != size:
        raise LmsegError(
            f"download of {what} from {url} is incomplete or wrong: got {received} bytes, expected {size}. "
            "Nothing was saved; try again."
        )
    if sha256 is not None and digest.hexdigest() != sha256.lower():
        raise LmsegError(
            f"checksum mismatch for {what} downloaded from {url}: sha256 {digest.hexdigest()}, expected "
            f"{sha256}. Nothing was saved; the server sent other data than the known checkpoint."
        )
    return received


def download_file(
    url: str,
    dest: Path,
    *,
    sha256: str | None = None,
    size: int | None = None,
    timeout: float = 60.0,
    what: str | None = None,
) -> Path:
    """Download ``url`` to ``dest`` atomically, verifying size and sha256 when they are known.

    The data goes to a temporary file in ``dest``'s folder, which is renamed to ``dest`` only
    after every check passed; on any failure the temporary file is removed and ``dest`` is left
    as it was (absent, normally).

    Args:
        url: http(s) or file URL.
        dest: final path of the file; its folder is created.
        sha256: expected lowercase hex digest, or None to skip the check.
        size: expected size in bytes, or None to skip the check.
        timeout: seconds to wait for the server on connect and on each read.
        what: a name for the file in messages (default: the file name).

    Returns:
        ``dest``.

    Raises:
        LmsegError: the server could not be reached or failed, or the data did not verify.
    """
    dest = Path(dest)
    what = what or dest.name
    with atomic_path(dest) as tmp:
        received = _download_to(tmp, url, dest, what=what, size=size, sha256=sha256, timeout=timeout)
    log.info("saved %s (%d bytes) to %s", what, received, dest)
    return dest


def sha256_of(path: Path) -> str:
    """Lowercase hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _stamp_path(dest: Path) -> Path:
    return dest.with_name(dest.name + ".sha256")


def _check_cached(entry: KnownWeights, dest: Path) -> None:
    if entry.size is not None and dest.stat().st_size != entry.size:
        raise LmsegError(
            f"{dest} has {dest.stat().st_size} bytes but {entry.description} has {entry.size}: it is incomplete "
            f"or another file. Delete it and run again to download it, or replace it. " + _manual_hint(entry, dest)
        )
    if entry.sha256 is None:
        return
    stamp = _stamp_path(dest)
    fresh = stamp.is_file() and stamp.stat().st_mtime_ns >= dest.stat().st_mtime_ns
    if fresh and stamp.read_text().strip() == entry.sha256:
        return
    actual = sha256_of(dest)
    if actual != entry.sha256:
        raise LmsegError(
            f"{dest} does not match {entry.description}: sha256 {actual}, expected {entry.sha256}. "
            "Delete it and run again to download it. " + _manual_hint(entry, dest)
        )
    stamp.write_text(actual + "\n")


def _manual_hint(entry: KnownWeights, dest: Path) -> str:
    check = f" (sha256 {entry.sha256})" if entry.sha256 else ""
    return f"Download {entry.url}{check} and put it at {dest}, or pass the path of a copy you already have."


class _LogProgress:
    """Progress lines in the log (at 25 % steps) where no terminal shows a bar."""

    def __init__(self, total: int | None, name: str) -> None:
        self.total, self.name, self.done, self.next_log = total, name, 0, 0.25

    def update(self, n: int) -> None:
        self.done += n
        if self.total and self.done / self.total >= self.next_log:
            log.info("%s: %d%% of %d bytes", self.name, int(100 * self.done / self.total), self.total)
            self.next_log += 0.25

    def close(self) -> None:
        return None


def _progress(total: int | None, name: str) -> contextlib.AbstractContextManager:
    """A progress bar on a terminal, progress lines in the log otherwise (closed on exit)."""
    if sys.stderr.isatty():
        try:
            from tqdm import tqdm

            return contextlib.closing(tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=name))
        except ImportError:  # pragma: no cover - tqdm is a base dependency
            pass
    return contextlib.closing(_LogProgress(total, name))
