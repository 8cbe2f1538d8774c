"""Does an actor pool fit the cluster? Checked before any work, because Ray waits forever for
resources that no node has (an actor asking for more CPUs than a node holds, or for GPUs on a
CPU cluster, stays pending, and so does the run).

Each actor must fit on one node, so the check counts how many actors fit on each alive node
(its total CPUs and GPUs, not what other jobs use at the moment: busy resources are freed
eventually, missing ones never are).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from lmseg.errors import LmsegError

__all__ = ["check_fits"]

_EPSILON = 1e-6  # Ray counts resources in units of 1/10000


def check_fits(
    nodes: Sequence[Mapping[str, float]], *, workers: int, cpus_per_worker: float, gpus_per_worker: float
) -> None:
    """Fail when ``workers`` actors of the given size cannot all run at once on ``nodes``.

    Args:
        nodes: each alive node's total resources (``{"CPU": 8.0, "GPU": 1.0, ...}``).
        workers: actors in the pool.
        cpus_per_worker, gpus_per_worker: what each actor reserves.

    Raises:
        LmsegError: no node can hold one actor, or the nodes together hold fewer than ``workers``.
    """
    cpus = sum(node.get("CPU", 0.0) for node in nodes)
    gpus = sum(node.get("GPU", 0.0) for node in nodes)
    cluster = f"{cpus:g} CPUs and {gpus:g} GPUs on {len(nodes)} node{'s' if len(nodes) != 1 else ''}"
    if gpus_per_worker > 0 and gpus == 0:
        raise LmsegError(
            f"--ray-gpus-per-worker {gpus_per_worker:g} asks for GPUs and this Ray cluster has none ({cluster}); "
            "leave --ray-gpus-per-worker out on a CPU cluster"
        )
    fits = sum(_actors_on(node, cpus_per_worker, gpus_per_worker) for node in nodes)
    worker = f"{cpus_per_worker:g} CPUs" + (f" and {gpus_per_worker:g} GPUs" if gpus_per_worker else "")
    if fits == 0:
        largest = max(nodes, key=lambda node: (node.get("GPU", 0.0), node.get("CPU", 0.0)), default={})
        raise LmsegError(
            f"a Ray worker asks for {worker}, more than any node of this cluster has (largest: "
            f"{largest.get('CPU', 0.0):g} CPUs, {largest.get('GPU', 0.0):g} GPUs; {cluster}); lower "
            "--ray-cpus-per-worker or --ray-gpus-per-worker"
        )
    if fits < workers:
        raise LmsegError(
            f"--ray-workers {workers} with {worker} each do not fit this Ray cluster ({cluster}): at most {fits} "
            "fit at once; lower --ray-workers or the resources per worker"
        )


def _actors_on(node: Mapping[str, float], cpus_per_worker: float, gpus_per_worker: float) -> int:
    """How many actors of this size one node holds."""
    counts = [math.floor(node.get("CPU", 0.0) / cpus_per_worker + _EPSILON)]
    if gpus_per_worker > 0:
        counts.append(math.floor(node.get("GPU", 0.0) / gpus_per_worker + _EPSILON))
    return min(counts)
