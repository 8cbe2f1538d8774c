"""Frozen dataclass settings from plain data: YAML files, JSON, ``--opt section.field=value``.

One rule for every typed config of the project (``TridentConfig``, ``InferenceConfig``,
``LMSegConfig``, the training configs): start from a base instance, replace the fields the
data names, recurse into fields that are themselves dataclasses, turn lists into tuples, and
reject unknown keys with a message that lists the known ones. Invalid values (the classes'
own ``__post_init__`` checks) become :class:`~lmseg.errors.LmsegError` naming where they
came from.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, TypeVar

from lmseg.errors import LmsegError

__all__ = ["override_dataclass"]

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
    values = {}
    for key, value in data.items():
        current = getattr(base, key)
        if isinstance(value, Mapping) and dataclasses.is_dataclass(current):
            value = override_dataclass(current, value, where=f"{where}.{key}")
        elif isinstance(value, list):
            value = tuple(value)
        values[key] = value
    try:
        return dataclasses.replace(base, **values)
    except (TypeError, ValueError, LmsegError) as exc:
        raise LmsegError(f"{where}: {exc}") from None
