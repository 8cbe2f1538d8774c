"""Ray options, importing Ray, and starting or joining a cluster.

``address=None`` starts a private local Ray instance for the run (stopped at the end); it
talks over the loopback interface only, since it serves this machine alone. ``"auto"`` joins
the cluster that ``ray start`` left running on this machine (or ``$RAY_ADDRESS``), and
``"host:port"`` (a head node's GCS address) or ``"ray://host:port"`` (Ray Client) joins that
cluster. An address that does not answer is reported at once instead of Ray's minutes of
reconnect attempts.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import math
import os
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from types import ModuleType

from lmseg.errors import LmsegError

log = logging.getLogger(__name__)

_LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


@dataclass(frozen=True)
class RayOptions:
    """How a stage runs on Ray.

    Attributes:
        address: None starts a local instance; ``"auto"``, ``"host:port"`` or
            ``"ray://host:port"`` joins a running cluster.
        workers: actors (each holding one model) working in parallel, >= 1.
        gpus_per_worker: GPUs reserved by each actor (0 on CPU clusters; fractions share a GPU).
        cpus_per_worker: CPUs reserved by each actor (> 0; fractions let actors share cores).
        batch_size: rows (classes, captions, images) handed to an actor at once, >= 1; also
            how much a killed driver can lose per worker.
    """

    address: str | None = None
    workers: int = 1
    gpus_per_worker: float = 0.0
    cpus_per_worker: float = 1.0
    batch_size: int = 16

    def __post_init__(self) -> None:
        if self.workers < 1:
            raise LmsegError(f"--ray-workers must be at least 1, got {self.workers}")
        if not (math.isfinite(self.gpus_per_worker) and self.gpus_per_worker >= 0):
            raise LmsegError(f"--ray-gpus-per-worker must be a finite number >= 0, got {self.gpus_per_worker}")
        if not (math.isfinite(self.cpus_per_worker) and self.cpus_per_worker > 0):
            raise LmsegError(f"--ray-cpus-per-worker must be a finite number > 0, got {self.cpus_per_worker}")
        if self.batch_size < 1:
            raise LmsegError(f"--ray-batch-size must be at least 1, got {self.batch_size}")
        if self.address is not None and not self.address.strip():
            raise LmsegError("--ray-address is empty; give 'auto', host:port or ray://host:port, or leave it out")

    def actor_resources(self) -> dict[str, float]:
        """The ``num_cpus``/``num_gpus`` each actor of a pool reserves."""
        return {"num_cpus": self.cpus_per_worker, "num_gpus": self.gpus_per_worker}


def import_ray(submodule: str = "ray") -> ModuleType:
    """Import Ray (or one of its modules, e.g. ``ray.data``).

    Raises:
        LmsegError: Ray is not installed in this environment.
    """
    try:
        return importlib.import_module(submodule)
    except ImportError as exc:
        raise LmsegError(
            f"--executor ray needs Ray, which is not installed in this environment ({exc}); run `make setup` "
            "(it installs Ray into both environments), or use --executor local"
        ) from None


def _host_port(address: str) -> tuple[str, int] | None:
    """(host, port) of a ``host:port`` or ``ray://host:port`` address; None for ``auto``."""
    if address == "auto":
        return None
    text = address.removeprefix("ray://")
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise LmsegError(f"--ray-address {address!r} is not 'auto', host:port or ray://host:port")
    return host.strip("[]"), int(port)


def check_reachable(address: str, timeout: float = 5.0) -> None:
    """Fail fast when nothing listens at a ``host:port`` address (``auto`` is left to Ray).

    Raises:
        LmsegError: the address is malformed or nothing accepts a connection there.
    """
    target = _host_port(address)
    if target is None:
        return
    try:
        with socket.create_connection(target, timeout=timeout):
            pass
    except OSError as exc:
        raise LmsegError(
            f"cannot reach a Ray cluster at --ray-address {address} ({exc.strerror or exc}); start one with "
            "`ray start --head` on the head node, check the address, or leave --ray-address out to start a local "
            "instance"
        ) from None


def import_ray_for(options: RayOptions) -> ModuleType:
    """Import Ray for a run with ``options`` (call before anything else imports Ray).

    A local instance, or a cluster at a loopback address, serves this machine alone: Ray is
    told to use the loopback interface for all its traffic (read when Ray is imported).

    Raises:
        LmsegError: Ray is not installed, or the address is malformed.
    """
    if options.address is None or _is_loopback(options.address):
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    return import_ray()


@contextlib.contextmanager
def ray_cluster(options: RayOptions) -> Iterator[ModuleType]:
    """Connect this process to Ray for the duration of the block; yields the ``ray`` module.

    A local instance started here is shut down at the end; a joined cluster keeps running
    (only this driver disconnects). If this process is already connected (a notebook, a
    test), that connection is used as it is. An ``LmsegError`` of a worker comes out of the
    block as an ``LmsegError`` (:func:`worker_errors`).

    Raises:
        LmsegError: Ray is missing, the cluster cannot be reached, or a worker failed with one.
    """
    if options.address is not None:
        check_reachable(options.address)
    ray = import_ray_for(options)
    if ray.is_initialized():
        with worker_errors():
            yield ray
        return
    kwargs = {"include_dashboard": False, "log_to_driver": log.isEnabledFor(logging.DEBUG)}
    try:
        if options.address is None:
            ray.init(address="local", **kwargs)
        else:
            ray.init(address=options.address, **kwargs)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise LmsegError(f"cannot connect to Ray at {options.address or 'a new local instance'}: {exc}") from None
    try:
        with worker_errors():
            yield ray
    finally:
        ray.shutdown()


@contextlib.contextmanager
def worker_errors() -> Iterator[None]:
    """Turn an :class:`LmsegError` raised on a worker (a model that cannot be built, a server
    that cannot be reached, ...) back into an ``LmsegError`` here: one clear line for the user
    instead of Ray's remote traceback. Other exceptions pass unchanged."""
    try:
        yield
    except Exception as exc:
        if _is_ours(exc):  # raised here, on the driver: already what the user should see
            raise
        cause = _lmseg_cause(exc)
        if cause is None:
            raise
        raise LmsegError(f"on a Ray worker: {cause}") from None


def _lmseg_cause(exc: BaseException | None, depth: int = 8) -> str | None:
    """The message of the first ``LmsegError`` among ``exc``'s causes (Ray wraps worker errors)."""
    while exc is not None and depth > 0:
        original = getattr(exc, "cause", None)  # RayTaskError keeps the worker's exception here
        for candidate in (original, exc):
            if _is_ours(candidate):
                return str(candidate)
        exc, depth = original if isinstance(original, BaseException) else exc.__cause__, depth - 1
    return None


def _is_ours(exc: object) -> bool:
    """An ``LmsegError`` as lmseg raised it (not Ray's copy that also derives from Ray's error types)."""
    return isinstance(exc, LmsegError) and type(exc).__module__.startswith("lmseg")


def _is_loopback(address: str) -> bool:
    target = _host_port(address)
    return target is not None and target[0] in _LOOPBACK_HOSTS
