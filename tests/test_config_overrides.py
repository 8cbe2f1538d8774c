"""lmseg.config_overrides: typed settings from plain data (YAML, JSON, --set a.b=value)."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from lmseg.config_overrides import override_dataclass
from lmseg.errors import LmsegError


@dataclass(frozen=True)
class Inner:
    enabled: bool = False
    thresh: float = 0.5


@dataclass(frozen=True)
class Outer:
    size: int = 10
    names: tuple[str, ...] = ()
    inner: Inner = field(default_factory=Inner)

    def __post_init__(self) -> None:
        if self.size <= 0:
            raise ValueError("size must be positive")


def test_fields_are_replaced_recursively_and_the_rest_kept() -> None:
    base = Outer(size=3, inner=Inner(thresh=0.9))
    result = override_dataclass(base, {"names": ["a", "b"], "inner": {"enabled": True}}, where="test")
    assert result == Outer(size=3, names=("a", "b"), inner=Inner(enabled=True, thresh=0.9))
    assert base == Outer(size=3, inner=Inner(thresh=0.9))  # the base is untouched


def test_none_empty_and_complete_instances() -> None:
    base = Outer(size=3)
    assert override_dataclass(base, None, where="test") is base
    assert override_dataclass(base, {}, where="test") is base
    given = Outer(size=7)
    assert override_dataclass(base, given, where="test") is given


@pytest.mark.parametrize(
    "data, message",
    [
        ({"sise": 3}, "test: unknown field(s) sise; known: size, names, inner"),
        ({"inner": {"enable": True}}, "test.inner: unknown field(s) enable; known: enabled, thresh"),
        ({"size": -1}, "test: size must be positive"),
        ([("size", 1)], "test: expected a mapping"),
    ],
)
def test_bad_data_is_refused_with_where_it_came_from(data, message) -> None:
    with pytest.raises(LmsegError) as info:
        override_dataclass(Outer(), data, where="test")
    assert message in str(info.value)


def test_a_class_is_not_a_base() -> None:
    with pytest.raises(TypeError, match="dataclass instance"):
        override_dataclass(Outer, {"size": 1}, where="test")
