"""The engine tests need torch (and PyYAML for configs); skipped cleanly elsewhere."""

from __future__ import annotations

from tests.vision_stack import require_vision_stack

MISSING, pytest_pycollect_makemodule = require_vision_stack("tests/engine", ("torch", "yaml"))
