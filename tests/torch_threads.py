"""One torch CPU thread per test, for the test modules of small models (faster on the shared 2-core machines).

Use in a test module (the fixture is autouse: importing it is enough)::

    from tests.torch_threads import one_torch_thread  # noqa: F401 - autouse fixture
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest
import torch


@contextlib.contextmanager
def torch_threads(count: int) -> Iterator[None]:
    """torch's intra-op CPU threads set to ``count`` meanwhile, restored afterwards."""
    threads = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


@pytest.fixture(autouse=True)
def one_torch_thread() -> Iterator[None]:
    """Each test of the importing module runs with one torch thread."""
    with torch_threads(1):
        yield
