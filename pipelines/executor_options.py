"""The ``--executor`` option group shared by gen_prompts, evaluate and segment.

``--executor local`` (the default) runs in this process; ``--executor ray`` runs on a Ray
cluster: a new local instance, or a running cluster with ``--ray-address auto|host:port``.
The ``--ray-*`` options are checked here, before any model is loaded, and are refused without
``--executor ray`` (they would silently do nothing).
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from lmseg.errors import LmsegError

if TYPE_CHECKING:
    from lmseg.distributed.cluster import RayOptions

_RAY_FLAGS = {
    "ray_address": "--ray-address",
    "ray_workers": "--ray-workers",
    "ray_gpus_per_worker": "--ray-gpus-per-worker",
    "ray_cpus_per_worker": "--ray-cpus-per-worker",
    "ray_batch_size": "--ray-batch-size",
    "ray_llm_engine": "--ray-llm-engine",
}


def add_executor_arguments(parser: argparse.ArgumentParser, *, llm: bool = False) -> None:
    """Add ``--executor`` and the ``--ray-*`` options (``llm``: also ``--ray-llm-engine``)."""
    group = parser.add_argument_group("executor")
    group.add_argument("--executor", choices=("local", "ray"), default="local",
                       help="where to run: this process, or a Ray cluster (default local)")
    group.add_argument("--ray-address", help="ray: 'auto' or host:port of a running cluster (default: start a "
                       "local Ray instance for this run)")
    group.add_argument("--ray-workers", type=int, help="ray: workers, each holding one model (default 1)")
    group.add_argument("--ray-gpus-per-worker", type=float, help="ray: GPUs per worker (default 0)")
    group.add_argument("--ray-cpus-per-worker", type=float, help="ray: CPUs per worker (default 1)")
    group.add_argument("--ray-batch-size", type=int, help="ray: items per batch handed to a worker (default 16 "
                       "LLM rows, 1 image)")
    if llm:
        group.add_argument("--ray-llm-engine", choices=("auto", "actors", "ray-data-llm"),
                           help="ray: 'ray-data-llm' = ray.data.llm over vLLM on GPU workers; 'actors' = an actor "
                           "pool holding this project's backend (any machine); auto picks ray-data-llm for "
                           "--backend vllm with --ray-gpus-per-worker > 0 (default auto)")


def ray_options_from_args(args: argparse.Namespace, *, default_batch_size: int) -> RayOptions | None:
    """The :class:`~lmseg.distributed.cluster.RayOptions` of ``--executor ray``, or None for local.

    Raises:
        LmsegError: ``--ray-*`` without ``--executor ray``; ``--executor ray`` with shard
            options (Ray spreads the work itself); ``ray-data-llm`` with a backend other than
            vLLM; a bad value (``nan`` included); ``--device cuda`` without GPUs per worker;
            Ray not installed.
    """
    given = [flag for name, flag in _RAY_FLAGS.items() if getattr(args, name, None) is not None]
    if args.executor == "local":
        if given:
            raise LmsegError(f"{', '.join(given)} only apply with --executor ray")
        return None
    if getattr(args, "shard_index", None) is not None or getattr(args, "num_shards", None) is not None:
        raise LmsegError("--executor ray spreads the work over the cluster itself; leave out --shard-index/"
                         "--num-shards (they are for running shards by hand with --executor local)")
    if getattr(args, "ray_llm_engine", None) == "ray-data-llm" and getattr(args, "backend", "vllm") != "vllm":
        raise LmsegError("--ray-llm-engine ray-data-llm runs vLLM itself; it does not apply to --backend openai")
    from lmseg.distributed.cluster import RayOptions, import_ray_for

    options = RayOptions(
        address=args.ray_address,
        workers=1 if args.ray_workers is None else args.ray_workers,
        gpus_per_worker=args.ray_gpus_per_worker or 0.0,
        cpus_per_worker=1.0 if args.ray_cpus_per_worker is None else args.ray_cpus_per_worker,
        batch_size=default_batch_size if args.ray_batch_size is None else args.ray_batch_size,
    )
    device = getattr(args, "device", None)
    if device is not None and str(device).startswith("cuda") and options.gpus_per_worker == 0:
        raise LmsegError(f"--device {device} on Ray needs a GPU reserved for each worker: add --ray-gpus-per-worker 1 "
                         "(or a fraction, to share a GPU)")
    import_ray_for(options)  # Ray missing: fail now, before any model loads
    return options
