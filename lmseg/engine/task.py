"""The training-task contract: what a method gives the shared :class:`~lmseg.engine.trainer.Trainer`.

A method that can train (LMSeg, MROVSeg, MGCA, ...) subclasses :class:`TrainTask` in its own
package (``lmseg/models/<method>/task.py``) and lists a builder in that package's
``TRAIN_TASKS`` dict; :func:`lmseg.registry.create_train_task` finds it there. The Trainer owns
the optimiser, schedule, AMP, clipping, accumulation, DDP, checkpoints, resume,
``metrics.jsonl`` and progress; the task owns the model, the data and the loss.

``TrainTask`` is a ``Protocol`` that declares every method the Trainer calls: the required
ones, and the optional hooks (:meth:`TrainTask.resolved_sections`,
:attr:`TrainTask.load_model_checkpoint`) with their defaults, which a task inherits by
subclassing it (as ``class MyTask(TrainTask): ...``) and overrides where it has more to say.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import torch

__all__ = ["ParamGroup", "TaskBuilder", "TrainTask"]


@dataclass(frozen=True)
class ParamGroup:
    """Parameters trained with one learning rate.

    Attributes:
        name: e.g. ``"head"``, ``"clip"``; the metrics log it as ``lr_<name>`` (the first
            group's rate is logged as ``lr``).
        params: the parameters.
        lr_scale: multiplies ``OptimConfig.lr``.
        weight_decay: None = ``OptimConfig.weight_decay``.
    """

    name: str
    params: list[torch.nn.Parameter]
    lr_scale: float = 1.0
    weight_decay: float | None = None


class TrainTask(Protocol):
    """One method's training recipe (see the module docstring)."""

    name: str

    def build_model(self) -> torch.nn.Module:
        """The trainable model, on the CPU, in train mode; deterministic under ``torch.manual_seed``."""
        ...

    def train_dataset(self) -> torch.utils.data.Dataset:
        """Map-style; item ``k`` is a pure function of ``(seed, k)`` (the Trainer asks for global
        sample counters ``k = (micro_step * world + rank) * batch + j``), so resumption is exact."""
        ...

    def collate(self, items: list[Any]) -> Any:
        """Batch the items (``torch.utils.data.default_collate`` will often do)."""
        ...

    def loss(self, model: torch.nn.Module, batch: Any) -> dict[str, torch.Tensor]:
        """``{"loss": scalar to minimise, ...other scalar terms to log}``; called under autocast.
        ``model`` may be wrapped (DDP): call it, and reach its attributes through ``.module``."""
        ...

    def param_groups(self, model: torch.nn.Module) -> list[ParamGroup]:
        """Exactly the parameters to train (the others get ``requires_grad=False``)."""
        ...

    def model_checkpoint(self, model: torch.nn.Module) -> dict[str, Any]:
        """The ``"model"`` entry of a training checkpoint: what the method's factory loads."""
        ...

    def log_values(self, model: torch.nn.Module) -> dict[str, float]:
        """Extra values to log each step (e.g. LMSeg's fusion weight ``w``); ``{}`` if none."""
        ...

    # ---- optional hooks: a subclass inherits these defaults --------------------------------

    def resolved_sections(self) -> dict[str, Any]:
        """The config's task sections with every default filled in (``{"model": {...}, "data":
        {...}}``), written to ``config.yaml`` and compared on resume. Default ``{}``: the
        sections as the config gives them."""
        return {}

    #: Restores a model's weights on resume from a checkpoint's ``"model"`` entry, as
    #: ``load_model_checkpoint(model, entry, source)`` (the inverse of :meth:`model_checkpoint`;
    #: ``source`` names the file for messages). None (the default): the Trainer also saves the
    #: trained parameters and all buffers under ``"trained"`` and restores those.
    load_model_checkpoint: Callable[[torch.nn.Module, Mapping[str, Any], str], None] | None = None


TaskBuilder = Callable[[Mapping[str, Any], Mapping[str, Any], int], TrainTask]
