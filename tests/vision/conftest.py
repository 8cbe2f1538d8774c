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

import importlib
import threading
from collections.abc import Iterator
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

_SETUP = "run `scripts/setup_vision_env.sh .venv` and use .venv/bin/python"
_NEEDED = ("torch", "torchvision", "open_clip", "segment_anything", "timm", "safetensors")


def _missing() -> str | None:
    """Why the vision stack cannot be used here, or None if it can."""
    for module in _NEEDED:
        try:
            importlib.import_module(module)
        except Exception as exc:  # noqa: BLE001 - see the module docstring
            return f"tests/vision need {module}, which cannot be imported here ({exc!s:.120}); {_SETUP}"
    return None


MISSING = _missing()


class _SkippedModule(pytest.Module):
    """A test module that is reported as skipped instead of being imported (it would fail)."""

    def collect(self):  # pytest API
        pytest.skip(MISSING)


def pytest_pycollect_makemodule(module_path, parent):  # pytest hook
    # A skip raised in a conftest aborts `pytest tests/vision` outright, so the skip happens per
    # test module instead, each one reported with the reason.
    if MISSING:
        return _SkippedModule.from_parent(parent, path=module_path)
    return None


if MISSING is None:
    import torch
    from torch import nn

    # Tests are small; two threads keep them predictable on a shared 2-core machine.
    torch.set_num_threads(min(2, torch.get_num_threads()))


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
    """A small stock ``Sam``: the official structure (rel. positions, windows, 256-channel neck), reduced widths.

    The relative-position tables are filled with random values (the library initialises them
    to zero), so that the tests exercise that term.
    """
    from segment_anything.modeling import ImageEncoderViT, MaskDecoder, PromptEncoder, Sam, TwoWayTransformer

    torch.manual_seed(seed)
    grid = img_size // 16
    encoder = ImageEncoderViT(
        img_size=img_size, patch_size=16, embed_dim=32, depth=2, num_heads=2, mlp_ratio=2.0, out_chans=256,
        qkv_bias=True, norm_layer=partial(nn.LayerNorm, eps=1e-6), use_rel_pos=True, window_size=window_size,
        global_attn_indexes=global_attn_indexes,
    )
    with torch.no_grad():
        for block in encoder.blocks:
            block.attn.rel_pos_h.normal_(std=0.5)
            block.attn.rel_pos_w.normal_(std=0.5)
        encoder.pos_embed.normal_(std=0.5)
    prompt = PromptEncoder(
        embed_dim=256, image_embedding_size=(grid, grid), input_image_size=(img_size, img_size), mask_in_chans=4
    )
    decoder = MaskDecoder(
        num_multimask_outputs=3,
        transformer=TwoWayTransformer(depth=1, embedding_dim=256, mlp_dim=32, num_heads=8),
        transformer_dim=256, iou_head_depth=2, iou_head_hidden_dim=32,
    )
    return Sam(encoder, prompt, decoder, pixel_mean=[123.675, 116.28, 103.53], pixel_std=[58.395, 57.12, 57.375]).eval()


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
