"""Named segmenters: ``create_segmenter("trident_vitb16", ...)`` in one call.

Each model package (``lmseg.models.<model>``) listed in :data:`MODEL_PACKAGES` exposes
``SEGMENTERS``: a dict from a segmenter name to a builder ``(**kwargs) -> Segmenter`` (the one
place segmenter names are registered), and, if it can train, ``TRAIN_TASKS``: a dict from a
task name (a training config's ``task:``) to a :data:`~lmseg.engine.task.TaskBuilder`. Packages are imported only when a
segmenter is asked for, so ``import lmseg`` never loads torch.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from lmseg.errors import LmsegError
from lmseg.inference.segmenter import Segmenter

if TYPE_CHECKING:
    from lmseg.engine.config import TrainConfig
    from lmseg.engine.task import TrainTask

MODEL_PACKAGES: tuple[str, ...] = (
    "lmseg.models.lmseg", "lmseg.models.trident", "lmseg.models.mrovseg", "lmseg.models.mgca",
)


def collect(attribute: str) -> dict[str, Any]:
    """Merge the dict ``attribute`` (``"SEGMENTERS"``, ``"TRAIN_TASKS"``) of every installed model package.

    Raises:
        LmsegError: a model package needs a library this environment lacks.
    """
    found: dict[str, Any] = {}
    for package in MODEL_PACKAGES:
        try:
            module = importlib.import_module(package)
        except ModuleNotFoundError as exc:
            if exc.name and (exc.name == package or package.startswith(exc.name + ".")):
                continue  # that model is not part of this installation
            raise LmsegError(
                f"the segmentation models need {exc.name!r}, which is not installed in this environment; "
                "use the vision environment (`make setup`, then .venv/bin/python)"
            ) from None
        found.update(getattr(module, attribute, {}))
    return found


def _builders() -> dict[str, Callable[..., Segmenter]]:
    return collect("SEGMENTERS")


def available_segmenters() -> list[str]:
    """Names accepted by :func:`create_segmenter`, sorted."""
    return sorted(_builders())


def create_segmenter(name: str, **kwargs: Any) -> Segmenter:
    """Build a named segmenter.

    Args:
        name: e.g. ``"trident_vitb16"`` or ``"lmseg_vitb16"`` (see :func:`available_segmenters`).
        **kwargs: the builder's options (weights, device, ...); see each model's factory.

    Raises:
        LmsegError: unknown name (the message lists the known ones).
    """
    builders = _builders()
    if name not in builders:
        raise LmsegError(f"unknown segmenter {name!r}; available: {', '.join(sorted(builders)) or 'none'}")
    return builders[name](**kwargs)


def create_train_task(config: TrainConfig) -> TrainTask:
    """The training task that ``config.task`` names, built from the config's model and data sections.

    Raises:
        LmsegError: unknown task name (the message lists the known ones), or the task's own
            validation of its sections.
    """
    builders = collect("TRAIN_TASKS")
    if config.task not in builders:
        raise LmsegError(f"unknown training task {config.task!r}; available: {', '.join(sorted(builders)) or 'none'}")
    return builders[config.task](config.model, config.data, config.run.seed)
