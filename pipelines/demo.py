"""Serve a web page to segment your own image into your own classes.

Examples::

    python -m pipelines.demo                      # tiny random-weight model: shows the page, output not meaningful
    python -m pipelines.demo --model trident_vitb16 --set clip=ViT-B-16.pt --set dino=dino_vitbase16_pretrain.pth \\
        --set sam=sam_vit_b_01ec64.pth --set benchmark=ade150
    python -m pipelines.demo --model lmseg_vitb16 --checkpoint lmseg.safetensors --set sam=sam_vit_b --port 8080

The page listens on 127.0.0.1 (this machine only) unless --host says otherwise, e.g.
--host 0.0.0.0 to let other machines in. The model options are those of `segment`
(--checkpoint, --device, --set KEY=VALUE). Programs can call the page too: see
docs/web.md (Gradio client, endpoint /segment).

Exit status: 0 stopped with Ctrl-C or SIGTERM; 2 bad arguments, unknown model, or the port is taken.
"""

from __future__ import annotations

import argparse
import signal
import socket
import sys
import time

from lmseg.errors import LmsegError
from pipelines.cli import run_command
from pipelines.model_options import add_model_arguments, build_segmenter, parse_options

DEFAULT_MODEL = "lmseg_tiny"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m pipelines.demo",
        description=__doc__.split("\n\n")[0],
        epilog=__doc__.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_model_arguments(parser, required=False)
    server = parser.add_argument_group("server")
    server.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    server.add_argument("--port", type=int, default=7860, help="port (default 7860)")
    limits = parser.add_argument_group("request limits")
    limits.add_argument("--max-upload-mb", type=float, default=20, help="largest image file (default 20 MB)")
    limits.add_argument("--max-megapixels", type=float, default=40,
                        help="largest image, in millions of pixels (default 40)")
    limits.add_argument("--max-classes", type=int, default=200, help="most classes per request (default 200)")
    limits.add_argument("--time-limit", type=float, default=120, help="seconds one request may take (default 120)")
    parser.add_argument("-v", "--verbose", action="store_true")
    return parser


def check_port_free(host: str, port: int) -> None:
    """Fail before loading a model when the address cannot be served."""
    if not 1 <= port <= 65535:
        raise LmsegError(f"--port must be between 1 and 65535, got {port}")
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server does: TIME_WAIT is no obstacle
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise LmsegError(
                f"cannot listen on {host}:{port} ({exc.strerror}); choose another --port or --host"
            ) from None


def web_limits(args: argparse.Namespace):
    """The page's :class:`~lmseg.web.limits.WebLimits` from the command's units (MB, millions of pixels).

    Raises:
        LmsegError: a limit that is not a finite number above 0 (the page would refuse every request).
    """
    from lmseg.web.limits import WebLimits, check_positive

    for flag, value in (("--max-upload-mb", args.max_upload_mb), ("--max-megapixels", args.max_megapixels),
                        ("--max-classes", args.max_classes), ("--time-limit", args.time_limit)):
        check_positive(flag, value)
    return WebLimits(max_upload_bytes=int(args.max_upload_mb * 1024 * 1024),
                     max_pixels=int(args.max_megapixels * 1_000_000), max_classes=args.max_classes,
                     time_limit_s=args.time_limit)


def run(args: argparse.Namespace) -> int:
    limits = web_limits(args)
    options = parse_options(args)
    name = args.model or DEFAULT_MODEL
    check_port_free(args.host, args.port)
    demo_weights = name.endswith("_tiny") and "checkpoint" not in options
    print(f"loading {name}{' (random demo weights)' if demo_weights else ''} ...", flush=True)
    segmenter = build_segmenter(name, options)

    from lmseg.web.app import build_app, launch
    from lmseg.web.service import SegmentService

    service = SegmentService(segmenter, name, limits=limits, demo_weights=demo_weights)
    app = build_app(service)
    launch(app, service, host=args.host, port=args.port, block=False)
    print(f"lmseg demo: {name} at http://{args.host}:{args.port}  (Ctrl-C to stop)", flush=True)
    signal.signal(signal.SIGTERM, _stop)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        print("\nstopping the page", file=sys.stderr)
    finally:
        app.close()
        service.close()
    return 0


def _stop(signum: int, frame: object) -> None:
    """SIGTERM stops the page as Ctrl-C does."""
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    return run_command(build_parser(), run, argv)


if __name__ == "__main__":
    sys.exit(main())
