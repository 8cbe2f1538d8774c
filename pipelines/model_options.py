"""The model options shared by ``pipelines.evaluate`` and ``pipelines.segment``.

``--model NAME`` picks a segmenter of :func:`lmseg.registry.create_segmenter`;
``--checkpoint`` and ``--device`` become its ``checkpoint=`` and ``device=``; every
``--set KEY=VALUE`` (the one override spelling of every stage) becomes another keyword argument,
with the override syntax of every stage (:func:`lmseg.config_overrides.parse_overrides`):
values are JSON when they are valid JSON (``0.5``, ``true``, ``null``, ``[1,2]``), else YAML
(``[a, b]``, plain text). A dotted key sets one field of a settings object: ``--set
config.stride=112`` becomes ``config={"stride": 112}``, which the builders apply as
overrides of their settings dataclass (:func:`lmseg.config_overrides.override_dataclass`:
unknown fields and wrong types are errors). Later options win.

A device (``--device``, or ``--set device=...``) is checked twice, each time before any model
loads: its spelling when the options are parsed (``cuda:0`` yes, ``bogus`` no), and whether
this machine has it when the segmenter is built (:func:`build_segmenter`), which with
``--executor ray`` happens on the workers, not on the driver.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from lmseg.config_overrides import parse_overrides
from lmseg.errors import LmsegError

if TYPE_CHECKING:
    from lmseg.inference.segmenter import Segmenter

__all__ = ["add_model_arguments", "build_segmenter", "check_device_available", "check_device_name", "parse_options"]


def add_model_arguments(parser: argparse.ArgumentParser, *, required: bool) -> None:
    """Add the "model" argument group: --model, --checkpoint, --device, --set."""
    model = parser.add_argument_group("model")
    model.add_argument("--model", required=required, help="segmenter name (see lmseg.available_segmenters())")
    model.add_argument("--checkpoint", type=Path, help="model weights, passed to the builder as checkpoint=")
    model.add_argument("--device", help="passed to the builder as device= (e.g. cpu, cuda)")
    model.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
        help="any other builder option (JSON or YAML value); a dotted key sets a settings field "
             "(config.stride=112)",
    )


def parse_options(args: argparse.Namespace) -> dict[str, object]:
    """Builder keyword arguments from --checkpoint, --device and --set key=value.

    A dotted key builds nested mappings: ``config.refinement.enabled=true`` becomes
    ``{"config": {"refinement": {"enabled": True}}}``, which the builders apply as field
    overrides of their settings dataclasses.
    """
    options: dict[str, object] = parse_overrides(args.overrides, flag="--set")
    if args.checkpoint is not None:
        if not args.checkpoint.is_file():
            raise LmsegError(f"--checkpoint {args.checkpoint} does not exist or is not a file")
        options["checkpoint"] = str(args.checkpoint)
    if args.device is not None:
        options["device"] = args.device
    if "device" in options:
        check_device_name(options["device"])
    return options


def check_device_name(device: object) -> None:
    """Fail unless ``device`` is a device torch can parse (``cpu``, ``cuda``, ``cuda:1``, ``mps``, ...).

    Raises:
        LmsegError: a misspelt device.
    """
    import torch

    try:
        torch.device(str(device))
    except (RuntimeError, TypeError):
        raise LmsegError(f"--device {device!r} is not a device name (cpu, cuda, cuda:1, mps, ...)") from None


def check_device_available(device: object) -> None:
    """Fail unless this machine has ``device`` (a driver, the device index, a torch built for it).

    Raises:
        LmsegError: the device does not exist here.
    """
    import torch

    try:
        torch.empty(0, device=str(device))
    except (RuntimeError, AssertionError, NotImplementedError) as exc:  # no driver, index or backend here
        reason = (str(exc).strip().split(". ")[0].splitlines() or [type(exc).__name__])[0]
        raise LmsegError(f"--device {device}: this machine has no such device ({reason}); use --device cpu, or run "
                         "where the device exists") from None


def build_segmenter(name: str, options: dict[str, object]) -> Segmenter:
    """``create_segmenter`` with a clear message for options the builder does not take, after
    checking that the device exists here."""
    from lmseg.registry import create_segmenter

    if "device" in options:
        check_device_available(options["device"])
    try:
        return create_segmenter(name, **options)
    except TypeError as exc:
        if "unexpected keyword argument" in str(exc) or "got an unexpected" in str(exc):
            raise LmsegError(f"segmenter {name!r} does not accept these options {sorted(options)}: {exc}") from None
        raise
