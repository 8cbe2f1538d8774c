"""Every inference setting of every method is recorded: flipping any one field of a method's
settings dataclass changes ``settings()`` and the protocol record that ``evaluate`` and
``segment`` write (``protocol.json``).

Generic over the methods: every seeded (random-weight) variant of every method package's
``VARIANTS`` table, and every field of the settings dataclass its builder takes (nested
dataclasses field by field), so a new method or a new field is covered without editing this file.
"""

from __future__ import annotations

import dataclasses
import math
import sys
import types
import typing
from typing import Any

import pytest

pytest.importorskip("torch", reason="the segmenters need the vision environment")

from lmseg.config_overrides import override_dataclass  # noqa: E402
from lmseg.errors import LmsegError  # noqa: E402
from lmseg.inference.protocol import protocol_record  # noqa: E402
from lmseg.inference.segmenter import segmenter_settings  # noqa: E402
from lmseg.registry import collect, create_segmenter  # noqa: E402
from lmseg.vocab.class_lists import class_list_sources  # noqa: E402

VOCAB = ["background", "road", "sky, heaven"]  # class 0 "background", as Trident's background_names need
SEEDED = sorted(name for name, variant in collect("VARIANTS").items() if variant.seeded)


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("LMSEG_CACHE_DIR", str(tmp_path / "cache"))


def is_settings(kind: Any) -> bool:
    """A settings dataclass: every field has a default (an attribute table, also a dataclass, does not)."""
    return dataclasses.is_dataclass(kind) and all(
        f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
        for f in dataclasses.fields(kind))


def settings_option(name: str) -> tuple[str, type]:
    """The builder's first keyword that takes a settings dataclass (``inference`` / ``config``) and that class."""
    builder = collect("SEGMENTERS")[name]
    namespace = vars(sys.modules[builder.__module__])
    for parameter in builder.__signature__.parameters.values():
        annotation = parameter.annotation
        hint = eval(annotation, namespace) if isinstance(annotation, str) else annotation  # noqa: S307
        arms = typing.get_args(hint) if typing.get_origin(hint) in (typing.Union, types.UnionType) else (hint,)
        for arm in arms:
            if is_settings(arm):
                return parameter.name, arm
    raise AssertionError(f"{name}: no builder keyword takes a settings dataclass")


def candidates(value: Any, hint: Any) -> list[Any]:
    """Values other than ``value`` that a field of type ``hint`` may take, most plausible first."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        found = [c for arm in args if arm is not type(None) for c in candidates(value, arm)]
        return found + ([None] if type(None) in args and value is not None else [])
    if origin is typing.Literal:
        return [a for a in args if a != value]
    if hint is bool:
        return [not value]
    if hint is int:
        base = 64 if value is None else value
        return [v for v in (base + 16, base * 2, base + 1, base - 1, max(base // 2, 1), 1) if v != value]
    if hint is float:
        base = 0.5 if value is None or not math.isfinite(value) else value
        return [v for v in (base * 0.5, base + 0.1, base * 2, 0.25, 1.0) if v != value]
    if hint is str:
        return [c for c in sorted(class_list_sources()) if c != value]
    if origin is tuple:
        element = args[0] if args else str
        options = typing.get_args(element) if typing.get_origin(element) is typing.Literal else ("sky", "wall")
        found = [tuple(options[:1]), tuple(options[::-1]), ()]
        return [c for c in found if c != tuple(value)]
    raise AssertionError(f"no candidate values for a field of type {hint}")


def flips(settings: Any, prefix: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], list[Any]]]:
    """``(path, candidates)`` for every leaf field of a settings dataclass."""
    hints = typing.get_type_hints(type(settings))
    out = []
    for f in dataclasses.fields(settings):
        value = getattr(settings, f.name)
        if dataclasses.is_dataclass(value):
            out += flips(value, (*prefix, f.name))
        else:
            out.append(((*prefix, f.name), candidates(value, hints[f.name])))
    return out


def nested(path: tuple[str, ...], value: Any) -> dict[str, Any]:
    return {path[0]: value} if len(path) == 1 else {path[0]: nested(path[1:], value)}


@pytest.mark.parametrize("name", SEEDED)
def test_every_settings_field_is_recorded(name: str) -> None:
    option, kind = settings_option(name)
    variant = collect("VARIANTS")[name]
    defaults = override_dataclass(kind(), variant.settings, where=name)
    base = create_segmenter(name)
    base_settings, base_record = segmenter_settings(base), protocol_record(base, VOCAB)["method"]
    unrecorded, unflippable = [], []
    for path, values in flips(defaults):
        for value in values:
            change = nested(path, value)
            try:
                override_dataclass(defaults, change, where=name)
                changed = create_segmenter(name, **{option: change})
            except LmsegError:
                continue  # not a valid value of this field: try the next
            if segmenter_settings(changed) == base_settings or protocol_record(changed, VOCAB)["method"] == base_record:
                unrecorded.append(f"{'.'.join(path)}={value!r}")
            break
        else:
            unflippable.append(".".join(path))
    assert not unflippable, f"{name}: no valid other value found for {unflippable}"
    assert not unrecorded, f"{name}: settings not recorded: {unrecorded}"


def test_mgca_units_give_different_records() -> None:
    """The finding behind this file: MGCA's unit changed the labels but not protocol.json."""
    records = [protocol_record(create_segmenter("mgca_tiny", inference={"unit": unit}), VOCAB)
               for unit in ("adaptive", "pixel")]
    assert records[0]["method"]["settings"]["inference"]["unit"] == "adaptive"
    assert records[0]["method"] != records[1]["method"]
