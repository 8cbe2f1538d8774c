"""The model options shared by ``pipelines.evaluate`` and ``pipelines.segment``.

``--model NAME`` picks a segmenter of :func:`lmseg.registry.create_segmenter`;
``--checkpoint`` and ``--device`` become its ``checkpoint=`` and ``device=``; every
``--opt KEY=VALUE`` becomes another keyword argument. Values are parsed as JSON when they can
be (``0.5``, ``true``, ``null``, ``[1,2]``, ``{"a": 1}``), otherwise kept as text. A dotted
key sets one field of a settings object: ``--opt config.stride=112`` becomes
``config={"stride": 112}``, which the builders apply as overrides of their settings
dataclass (:func:`lmseg.config_overrides.override_dataclass`). Later options win.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING

from lmseg.errors import LmsegError

if TYPE_CHECKING:
    from lmseg.inference.segmenter import Segmenter

__all__ = ["add_model_arguments", "build_segmenter", "parse_options"]


def add_model_arguments(parser: argparse.ArgumentParser, *, required: bool) -> None:
    """Add the "model" argument group: --model, --checkpoint, --device, --opt."""
    model = parser.add_argument_group("model")
    model.add_argument("--model", required=required, help="segmenter name (see lmseg.available_segmenters())")
    model.add_argument("--checkpoint", type=Path, help="model weights, passed to the builder as checkpoint=")
    model.add_argument("--device", help="passed to the builder as device= (e.g. cpu, cuda)")
    model.add_argument(
        "--opt", action="append", default=[], metavar="KEY=VALUE",
        help="any other builder option; a dotted key sets a settings field (config.stride=112)",
    )


def parse_options(args: argparse.Namespace) -> dict[str, object]:
    """Builder keyword arguments from --checkpoint, --device and --opt key=value.

    A dotted key builds nested mappings: ``config.refinement.enabled=true`` becomes
    ``{"config": {"refinement": {"enabled": True}}}``, which the builders apply as field
    overrides of their settings dataclasses.
    """
    options: dict[str, object] = {}
    for item in args.opt:
        key, sep, text = item.partition("=")
        path = key.strip().split(".")
        if not sep or not all(part.isidentifier() for part in path):
            raise LmsegError(
                f"--opt expects KEY=VALUE with KEY a Python identifier or a dotted path (config.stride), got {item!r}"
            )
        try:
            value: object = json.loads(text)
        except ValueError:
            value = text
        _set_nested(options, path, value, item)
    if args.checkpoint is not None:
        if not args.checkpoint.is_file():
            raise LmsegError(f"--checkpoint {args.checkpoint} does not exist or is not a file")
        options["checkpoint"] = str(args.checkpoint)
    if args.device is not None:
        options["device"] = args.device
    return options


def _set_nested(options: dict[str, object], path: list[str], value: object, item: str) -> None:
    node = options
    for depth, part in enumerate(path[:-1]):
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise LmsegError(f"--opt {item!r}: {'.'.join(path[: depth + 1])} was already given a plain value")
        node = child
    if isinstance(node.get(path[-1]), dict) and isinstance(value, dict):
        node[path[-1]] = {**node[path[-1]], **value}
    else:
        node[path[-1]] = value


def build_segmenter(name: str, options: dict[str, object]) -> Segmenter:
    """``create_segmenter`` with a clear message for options the builder does not take."""
    from lmseg.registry import create_segmenter

    try:
        return create_segmenter(name, **options)
    except TypeError as exc:
        if "unexpected keyword argument" in str(exc) or "got an unexpected" in str(exc):
            raise LmsegError(f"segmenter {name!r} does not accept these options {sorted(options)}: {exc}") from None
        raise
