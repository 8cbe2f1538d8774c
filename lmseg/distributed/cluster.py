"""Ray options, importing Ray, and starting or joining a cluster.

``address=None`` starts a private local Ray instance for the run (stopped at the end); it
talks over the loopback interface only, since it serves this machine alone. ``"auto"`` joins
the cluster that ``ray start`` left running on this machine (or ``$RAY_ADDRESS``), and
``"host:port"`` (a head node's GCS address) or ``"ray://host:port"`` (Ray Client) joins that
cluster. Joining is bounded: an address where nothing listens (``auto`` included: it is
resolved first, as Ray resolves it) is reported at once, a cluster that does not accept the
driver within ``CONNECT_TIMEOUT_S`` is reported then, and a refused authentication token
says where the token comes from. Before any work, the actor pool is checked against the
cluster's nodes (:func:`lmseg.distributed.resources.check_fits`), since Ray waits forever for
resources no node has. Ray's own console output goes to ``<cache>/logs/ray.log`` (``-v``
keeps it on the console; :mod:`lmseg.distributed.ray_output`).
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import math
import os
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from lmseg.distributed.ray_output import ray_output_to
from lmseg.distributed.resources import check_fits
from lmseg.errors import LmsegError
from lmseg.paths import cache_dir

log = logging.getLogger(__name__)

_LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
CONNECT_TIMEOUT_S = 60.0  # joining a cluster that answers takes seconds; Ray itself retries for many minutes
TOKEN_DOCS = "https://docs.ray.io/en/latest/ray-security/token-auth.html"


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

    def actor_options(self, env: dict[str, str] | None = None) -> dict[str, Any]:
        """Ray's options for each actor (or task) of a pool: the ``num_cpus``/``num_gpus`` it
        reserves, and its environment: the driver's ``LMSEG_*`` variables (:func:`lmseg_settings`)
        and ``env``. They are given per actor so that they hold also when this process joined
        Ray before lmseg did (a notebook, a test) and the job's own environment lacks them."""
        return {"num_cpus": self.cpus_per_worker, "num_gpus": self.gpus_per_worker,
                "runtime_env": {"env_vars": {**lmseg_settings(), **(env or {})}}}


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


def check_reachable(address: str, timeout: float = 5.0, *, given: str | None = None) -> None:
    """Fail fast when nothing listens at a ``host:port`` or ``ray://host:port`` address.

    Args:
        address: where to connect (``auto`` already resolved by :func:`resolve_address`).
        timeout: seconds to wait for the connection.
        given: the ``--ray-address`` the user gave, when it differs (``auto``), for the message.

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
        shown = address if given in (None, address) else f"{given} (= {address}, from $RAY_ADDRESS or `ray start`)"
        raise LmsegError(
            f"cannot reach a Ray cluster at --ray-address {shown} ({exc.strerror or exc}); start one with "
            "`ray start --head` on the head node, check the address, or leave --ray-address out to start a local "
            "instance"
        ) from None


def resolve_address(address: str) -> str:
    """``auto`` as the cluster of this machine: ``$RAY_ADDRESS``, else the cluster that ``ray
    start`` last recorded here (read as ``ray.init`` reads them); other addresses as given.

    Unlike ``ray.init("auto")``, a Ray instance that some other program started privately on
    this machine is never joined.

    Raises:
        LmsegError: ``auto`` finds no cluster.
    """
    if address != "auto":
        return address
    from ray._private.services import canonicalize_bootstrap_address  # ray.init's own lookup

    found = canonicalize_bootstrap_address(None)  # None: $RAY_ADDRESS or `ray start`'s record, nothing else
    if found is None:
        raise LmsegError(
            "--ray-address auto found no Ray cluster on this machine (no $RAY_ADDRESS, no cluster started with "
            "`ray start`); start one with `ray start --head`, give the head node's host:port, or leave --ray-address "
            "out to start a local instance"
        )
    return found


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
    test), that connection is used as it is. The actor pool of ``options`` is checked against
    the cluster's nodes first. An ``LmsegError`` of a worker comes out of the block as an
    ``LmsegError`` (:func:`worker_errors`). Meanwhile Ray's console output goes to
    :func:`ray_log_path` (unless debug logging is on: ``-v``).

    Raises:
        LmsegError: Ray is missing, the cluster cannot be reached or does not accept this
            driver, the pool does not fit the cluster, or a worker failed with one.
    """
    ray = import_ray_for(options)
    address = None if options.address is None else resolve_address(options.address)
    if address is not None:
        check_reachable(address, given=options.address)
    import_ray("ray.data")  # Ray Data sets up its console logging when imported: redirected below
    verbose = log.isEnabledFor(logging.DEBUG)
    log_path = None if verbose else ray_log_path()
    with ray_output_to(log_path):
        started = not ray.is_initialized()
        if started:
            log.info("%s%s", f"joining the Ray cluster at {address}" if address else "starting a local Ray instance",
                     f"; Ray's own messages go to {log_path}" if log_path else "")
            _connect(ray, address, given=options.address, log_to_driver=verbose, log_path=log_path)
        try:
            nodes = [node["Resources"] for node in ray.nodes() if node.get("Alive")]
            check_fits(nodes, workers=options.workers, cpus_per_worker=options.cpus_per_worker,
                       gpus_per_worker=options.gpus_per_worker)
            with worker_errors():
                yield ray
        finally:
            if started:
                ray.shutdown()


def ray_log_path() -> Path:
    """Where Ray's console output goes: ``<cache>/logs/ray.log``."""
    return cache_dir() / "logs" / "ray.log"


def lmseg_settings() -> dict[str, str]:
    """The driver's ``LMSEG_*`` environment (cache folder, offline mode), which the workers get
    too: a worker reads and writes the driver's caches and downloads only what the driver may."""
    return {name: value for name, value in os.environ.items() if name.startswith("LMSEG_")}


def _connect(ray: ModuleType, address: str | None, *, given: str | None, log_to_driver: bool,
             log_path: Path | None) -> None:
    """``ray.init``: a new local instance (``address=None``), or joining ``address`` (resolved
    from the ``given`` one) within ``CONNECT_TIMEOUT_S`` (Ray itself retries an unresponsive or
    refusing cluster for minutes). ``ray.init`` gets the address as given: with ``auto`` Ray
    sends this machine's authentication token by itself, with a ``host:port`` only when
    ``RAY_AUTH_MODE=token`` says so.

    Raises:
        LmsegError: Ray cannot start or join, with the reason and what to do.
    """
    kwargs = {"include_dashboard": False, "log_to_driver": log_to_driver, "runtime_env": {"env_vars": lmseg_settings()}}
    where = f" (Ray's messages are in {log_path})" if log_path else ""
    if address is None:
        try:
            ray.init(address="local", **kwargs)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise LmsegError(f"cannot start a local Ray instance: {_first_line(exc)}{where}") from None
        return
    failure: list[BaseException] = []

    def join() -> None:
        try:
            ray.init(address=given, **kwargs)
        except BaseException as exc:  # handed to the waiting thread
            failure.append(exc)

    joining = threading.Thread(target=join, name="lmseg-ray-join", daemon=True)
    joining.start()
    joining.join(CONNECT_TIMEOUT_S)
    if joining.is_alive():
        raise LmsegError(
            f"the Ray cluster at {address} did not accept this driver within {CONNECT_TIMEOUT_S:g} s{where}; check "
            "that the address is a Ray head node (`ray status` there) and that this machine runs the same Ray version"
        )
    if failure:
        if _refused_token(failure[0]):
            raise LmsegError(
                f"the Ray cluster at {address} refused this driver: it uses token authentication and this driver sent "
                "no token or another one. Make the cluster's token available here (copy ~/.ray/auth_token from the "
                "head node, or set $RAY_AUTH_TOKEN or $RAY_AUTH_TOKEN_PATH) and, with a host:port address, set "
                f"RAY_AUTH_MODE=token (Ray sends a token by itself only with --ray-address auto); see {TOKEN_DOCS}"
            ) from None
        raise LmsegError(f"cannot connect to Ray at {address}: {_first_line(failure[0])}{where}") from None


def _first_line(exc: BaseException) -> str:
    """The first line of an error's message (Ray quotes whole tracebacks in some)."""
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def _refused_token(exc: BaseException | None) -> bool:
    """Whether Ray failed to connect because the cluster refused the authentication token
    (Ray chains the error, or quotes it in the message of the error it raises instead)."""
    from ray.exceptions import AuthenticationError

    for _ in range(8):
        if exc is None:
            return False
        if isinstance(exc, AuthenticationError) or "InvalidAuthToken" in str(exc):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


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
