"""Frozen dataclass settings from plain data: YAML files, JSON, ``--set section.field=value``.

One rule for every typed config of the project (``TridentConfig``, ``InferenceConfig``,
``LMSegConfig``, the training configs): start from a base instance, replace the fields the
data names, recurse into fields that are themselves dataclasses, turn lists into tuples, and
reject unknown keys with a message that lists the known ones, and reject values of the wrong
type (checked against the field annotations). Invalid values (the classes' own
``__post_init__`` checks) become :class:`~lmseg.errors.LmsegError` naming where they came from.

The command line uses one override syntax for every stage (``--set`` of ``train``,
``evaluate``, ``segment`` and ``demo``):
``KEY=VALUE`` where KEY may be dotted (``optim.lr=1e-4``, ``config.stride=112``) and VALUE is
read as JSON if it is valid JSON, else as YAML (``[a, b]``, ``{pooling: mean}``, plain text);
:func:`parse_overrides` turns a list of them into nested mappings.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

from lmseg.errors import LmsegError

__all__ = ["override_dataclass", "merge_nested", "parse_override_value", "parse_overrides"]

T = TypeVar("T")


def override_dataclass(base: T, data: T | Mapping[str, Any] | None, *, where: str) -> T:
    """``base`` with the fields in ``data`` replaced.

    Args:
        base: a dataclass instance (frozen or not); fields not in ``data`` keep its values.
        data: field name -> value. A mapping given for a field whose current value is a
            dataclass overrides that dataclass's fields in turn (``{"refinement": {"enabled":
            True}}``); lists become tuples. None or ``{}`` return ``base`` unchanged; an
            instance of ``type(base)`` is returned as it is (a complete config was given).
        where: what the data is, for messages (``"Trident config"``, ``"train.yaml: optim"``).

    Returns:
        A new instance of ``type(base)``.

    Raises:
        LmsegError: ``data`` is not a mapping, names unknown fields (the message lists the
            known ones), or a value is rejected by the class.
    """
    if not dataclasses.is_dataclass(base) or isinstance(base, type):
        raise TypeError(f"override_dataclass needs a dataclass instance, got {base!r}")
    if isinstance(data, type(base)):
        return data
    if not data:
        return base
    if not isinstance(data, Mapping):
        raise LmsegError(f"{where}: expected a mapping of field -> value, got {type(data).__name__} {data!r}")
    known = [f.name for f in dataclasses.fields(base)]
    unknown = sorted(str(key) for key in data if key not in known)
    if unknown:
        raise LmsegError(f"{where}: unknown field(s) {', '.join(unknown)}; known: {', '.join(known)}")
    hints = _type_hints(type(base))
    values = {}
    for key, value in data.items():
        current = getattr(base, key)
        if isinstance(value, Mapping) and dataclasses.is_dataclass(current):
            value = override_dataclass(current, value, where=f"{where}.{key}")
        elif isinstance(value, list):
            value = tuple(value)
        if not _fits(value, hints.get(key, Any)):
            raise LmsegError(
                f"{where}: {key} must be {_type_name(hints.get(key, Any))}, got {type(value).__name__} {value!r}"
            )
        values[key] = value
    try:
        return dataclasses.replace(base, **values)
    except (TypeError, ValueError, LmsegError) as exc:
        raise LmsegError(f"{where}: {exc}") from None


def _type_hints(cls: type) -> dict[str, Any]:
    try:
        return typing.get_type_hints(cls)
    except Exception:  # noqa: BLE001 - an annotation that cannot be resolved is simply not checked
        return {}


def _fits(value: Any, hint: Any) -> bool:
    """Whether ``value`` is of the annotated type (ints pass for floats; unknown hints pass)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any or isinstance(hint, TypeVar):
        return True
    if origin in (typing.Union, types.UnionType):
        return any(_fits(value, arm) for arm in args)
    if hint is type(None):
        return value is None
    if origin is typing.Literal:
        return value in args
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if origin in (tuple, list, Sequence):
        if not isinstance(value, (tuple, list)):
            return False
        if origin is tuple and args and args[-1] is not Ellipsis:
            return len(value) == len(args) and all(_fits(v, a) for v, a in zip(value, args))
        return all(_fits(v, args[0]) for v in value) if args else True
    if origin in (dict, Mapping) or hint in (dict, Mapping):
        return isinstance(value, Mapping)
    return isinstance(value, hint) if isinstance(hint, type) else True


def _type_name(hint: Any) -> str:
    if typing.get_origin(hint) is typing.Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(hint))
    return getattr(hint, "__name__", None) or str(hint).replace("typing.", "")


def parse_override_value(text: str) -> Any:
    """A command-line value: JSON if it is valid JSON, else YAML (plain words stay text).

    Raises:
        LmsegError: neither valid JSON nor valid YAML (e.g. an unclosed ``[``).
    """
    try:
        return json.loads(text)
    except ValueError:
        pass
    import yaml

    try:
        return yaml.safe_load(text) if text.strip() else text
    except yaml.YAMLError as exc:
        first = str(exc).splitlines()[0]
        raise LmsegError(f"value {text!r} is neither valid JSON nor valid YAML ({first})") from None


def parse_overrides(items: Sequence[str], *, flag: str = "--set") -> dict[str, Any]:
    """``["a.b=1", "c=[x, y]"]`` -> ``{"a": {"b": 1}, "c": ["x", "y"]}`` (later items win).

    A mapping value given twice for one key is merged (``a={x: 1}`` then ``a.y=2``).

    Raises:
        LmsegError: an item without ``=``, a key that is not a dotted identifier, a bad value,
            or a key below one that already holds a plain value.
    """
    result: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        path = key.strip().split(".")
        if not sep or not all(part.isidentifier() for part in path):
            raise LmsegError(f"{flag} expects KEY=VALUE with KEY a name or a dotted path (optim.lr=1e-4), got {item!r}")
        try:
            value = parse_override_value(text)
        except LmsegError as exc:
            raise LmsegError(f"{flag} {item!r}: {exc}") from None
        node = result
        for depth, part in enumerate(path[:-1]):
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise LmsegError(f"{flag} {item!r}: {'.'.join(path[: depth + 1])} was already given a plain value")
            node = child
        old = node.get(path[-1])
        node[path[-1]] = {**old, **value} if isinstance(old, dict) and isinstance(value, dict) else value
    return result


def merge_nested(base: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` with ``overrides`` applied: mappings merge key by key, anything else replaces."""
    merged = dict(base)
    for key, value in overrides.items():
        old = merged.get(key)
        merged[key] = merge_nested(old, value) if isinstance(old, Mapping) and isinstance(value, Mapping) else value
    return merged
