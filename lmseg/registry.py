"""Named segmenters and training tasks: ``create_segmenter("trident_vitb16", ...)`` in one call.

The rule that finds them: **every sub-package of** ``lmseg.models`` (a folder with an
``__init__.py`` in ``lmseg/models/``, or in any other folder on ``lmseg.models.__path__``) is a
method package, and so is every module named in :data:`EXTRA_PACKAGES`. A method package may
expose

* ``SEGMENTERS``: segmenter name -> builder ``(**kwargs) -> Segmenter`` (generated from its
  variants table, :func:`lmseg.models.building.segmenters`), and
* ``TRAIN_TASKS``: task name (a training config's ``task:``) -> a
  :data:`~lmseg.engine.task.TaskBuilder`.

So a new method is a new folder under ``lmseg/models/`` and nothing here changes. A name
defined by two packages is an error. Packages are imported only when a segmenter or task is
asked for, so ``import lmseg`` never loads torch.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from lmseg.errors import LmsegError
from lmseg.inference.segmenter import Segmenter

if TYPE_CHECKING:
    from lmseg.engine.config import TrainConfig
    from lmseg.engine.task import TrainTask

#: Modules outside ``lmseg.models`` that are searched as well (a test's fake segmenters, a
#: plugin's package), after the method packages.
EXTRA_PACKAGES: tuple[str, ...] = ()


def method_packages() -> list[str]:
    """The packages searched: every sub-package of ``lmseg.models`` (sorted), then :data:`EXTRA_PACKAGES`."""
    import lmseg.models

    found = sorted(f"lmseg.models.{m.name}" for m in pkgutil.iter_modules(lmseg.models.__path__) if m.ispkg)
    return found + [p for p in EXTRA_PACKAGES if p not in found]


def collect(attribute: str) -> dict[str, Any]:
    """Merge the dict ``attribute`` (``"SEGMENTERS"``, ``"TRAIN_TASKS"``) of every method package.

    Raises:
        LmsegError: a package needs a library this environment lacks, or two packages define
            the same name.
    """
    found: dict[str, Any] = {}
    owner: dict[str, str] = {}
    for package in method_packages():
        try:
            module = importlib.import_module(package)
        except ModuleNotFoundError as exc:
            if exc.name and (exc.name == package or package.startswith(exc.name + ".")):
                continue  # an extra package that is not part of this installation
            raise LmsegError(
                f"the segmentation models need {exc.name!r}, which is not installed in this environment; "
                "use the vision environment (`make setup`, then .venv/bin/python)"
            ) from None
        for name, value in getattr(module, attribute, {}).items():
            if name in owner and owner[name] != package:
                raise LmsegError(f"{attribute} name {name!r} is defined by both {owner[name]} and {package}")
            found[name], owner[name] = value, package
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
        **kwargs: the builder's options (weights, device, ...); ``help()`` on
            ``lmseg.models.<m>.SEGMENTERS[name]`` lists them.

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
