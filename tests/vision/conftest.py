"""Shared set-up of the vision tests: skip cleanly without the vision stack; tiny models; a loopback server.

The stage-1 environment has no torchvision/open_clip/segment-anything, so every test here is
skipped there with a reason that names what is missing and how to get it. Note that
``import open_clip`` can fail with a RuntimeError rather than an ImportError (a CUDA
torchvision next to a CPU torch: "operator torchvision::nms does not exist"), so any exception
counts as "missing" here.

Models are random and tiny (weights cannot be downloaded here): correctness is shown by parity
with the libraries' own computations or with independent re-computations.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.vision_stack import require_vision_stack

MISSING, pytest_pycollect_makemodule = require_vision_stack(
    "tests/vision", ("torch", "torchvision", "open_clip", "segment_anything", "timm", "safetensors"))

if MISSING is None:
    import torch


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path, monkeypatch) -> None:
    """Every test gets its own cache folder and is online unless it says otherwise."""
    monkeypatch.setenv("LMSEG_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("LMSEG_OFFLINE", raising=False)


@pytest.fixture(scope="session")
def tiny_clip():
    """A random ``lmseg-tiny-ViT`` DenseCLIP: 64 px, patch 16 (4x4 grid), width 48, 4 heads, 3 blocks, D=32."""
    from lmseg.backbones.clip_factory import create_dense_clip

    torch.manual_seed(0)
    return create_dense_clip("lmseg-tiny-ViT", pretrained=None)


def build_tiny_sam(img_size: int = 256, *, window_size: int = 4, global_attn_indexes=(1,), seed: int = 0):
    """A small stock ``Sam`` (see :func:`lmseg.backbones.sam_tiny.build_tiny_sam`) with random position
    tables, so that the tests exercise those terms."""
    from lmseg.backbones.sam_tiny import build_tiny_sam as build

    torch.manual_seed(seed)
    return build(img_size, window_size=window_size, global_attn_indexes=global_attn_indexes,
                 random_positions=True).eval()


@pytest.fixture(scope="session")
def make_tiny_sam():
    """The :func:`build_tiny_sam` builder, for tests that need other sizes."""
    return build_tiny_sam


@pytest.fixture(scope="session")
def tiny_sam():
    """SamEncoder around a 256-px tiny SAM (16x16 token grid)."""
    from lmseg.backbones.sam import SamEncoder

    return SamEncoder(build_tiny_sam(256)).eval()


class FileServer:
    """A real HTTP server on 127.0.0.1 serving in-memory files; counts requests per path."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.requests: dict[str, int] = {}
        files, requests = self.files, self.requests

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # http.server API
                requests[self.path] = requests.get(self.path, 0) + 1
                body = files.get(self.path)
                if body is None:
                    self.send_error(404, "not found")
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                return None

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def file_server() -> Iterator[FileServer]:
    server = FileServer()
    try:
        yield server
    finally:
        server.close()
