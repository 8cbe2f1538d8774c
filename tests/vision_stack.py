"""Skipping the vision test folders cleanly where the vision stack cannot be imported.

The LLM environment has no torchvision/open_clip/segment-anything, so the tests of those
folders are reported as skipped there, with a reason that names what is missing and how to get
it. ``import open_clip`` can fail with a RuntimeError rather than an ImportError (a CUDA
torchvision next to a CPU torch: "operator torchvision::nms does not exist"), so any exception
counts as "missing". A skip raised in a conftest would abort the whole run, so the skip
happens per test module instead (pytest's ``pytest_pycollect_makemodule`` hook).

Use in a folder's conftest.py::

    MISSING, pytest_pycollect_makemodule = require_vision_stack("tests/vision", ("torch", "open_clip"))
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence

import pytest

SETUP = "run `scripts/setup_vision_env.sh .venv` (or `make setup`) and use .venv/bin/python"


def missing_module(folder: str, modules: Sequence[str]) -> str | None:
    """Why the tests of ``folder`` cannot run here, or None if every module imports."""
    for module in modules:
        try:
            importlib.import_module(module)
        except Exception as exc:  # noqa: BLE001 - see the module docstring
            return f"{folder} need {module}, which cannot be imported here ({exc!s:.120}); {SETUP}"
    return None


def require_vision_stack(folder: str, modules: Sequence[str]) -> tuple[str | None, Callable]:
    """(the reason to skip or None, a ``pytest_pycollect_makemodule`` hook for the conftest).

    When the modules import, torch is limited to two threads: tests are small, and two
    threads keep them predictable on a shared 2-core machine.
    """
    reason = missing_module(folder, modules)

    class SkippedModule(pytest.Module):
        """A test module reported as skipped instead of being imported (it would fail)."""

        def collect(self):  # pytest API
            pytest.skip(reason)

    def make_module(module_path, parent):  # pytest hook
        return SkippedModule.from_parent(parent, path=module_path) if reason else None

    if reason is None:
        import torch

        torch.set_num_threads(min(2, torch.get_num_threads()))
    return reason, make_module
