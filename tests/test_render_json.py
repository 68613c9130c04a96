"""``render.document_json_text`` writes exactly ``json.dumps(document_to_json(...), indent=2)``.

``show --json`` and ``check --json`` print the one-walk text; the dict form stays the
documented data (and the schema's subject). Real wheels were diffed byte for byte when
the walk replaced json's encoder (docs/auditwheel-comparison.md); these tests keep the
two equal on every shape a report can take.
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from manywheel import check, render
from manywheel.policy import load_policies
from test_show_check import typical_report


def _reference(value: Any) -> str:
    return json.dumps(render._jsonable(value), indent=2)


def test_show_and_check_documents_equal_json_dumps() -> None:
    report = typical_report()
    result = check.check_report(report, load_policies())
    for reports, checks in (([report], None), ([report, report], [result, result]), ([], [])):
        expected = json.dumps(render.document_to_json(reports, checks), indent=2)
        assert render.document_json_text(reports, checks) == expected


class Colour(enum.Enum):
    RED = "red"


class Level(enum.IntEnum):
    HIGH = 3


class Name(str, enum.Enum):
    A = "a"


@dataclass(frozen=True)
class Empty:
    pass


@dataclass(frozen=True)
class Inner:
    text: str
    flag: bool
    count: int
    ratio: float
    nothing: None = None
    names: tuple[str, ...] = ()


@dataclass(frozen=True)
class Outer:
    inner: Inner
    inners: tuple[Inner, ...]
    mapping: Any
    empty: Empty = field(default_factory=Empty)
    nested: list[Any] = field(default_factory=list)


def test_every_shape_equals_json_dumps() -> None:
    inner = Inner('é "q" \\ \n\t\x00 \u2603 \U0001f600', True, -7, 1.5, names=("a", "ü"))
    odd = Inner("x", False, 0, float("nan"), names=())
    value = Outer(
        inner=inner,
        inners=(inner, odd, Inner("", False, 2**70, float("-inf"))),
        mapping=MappingProxyType({"k": (), 3: [], True: {}, "m": {"deep": [[["s"]], [1, None]]}}),
        nested=[Level.HIGH, Name.A, 0.1, [], {}, [Empty()], ("only", "strings")],
    )
    assert render._json_text(value) == _reference(value)


def test_deeper_than_the_precomputed_indents() -> None:
    value: Any = "leaf"
    for depth in range(40):
        value = [value, {"d": depth}] if depth % 2 else {"k": value, "n": None}
    assert render._json_text(value) == _reference(value)


def test_what_json_refuses_is_refused() -> None:
    with pytest.raises(TypeError):
        render._json_text({"colour": Colour.RED})
    with pytest.raises(TypeError):
        render._json_text([{1, 2}])


_leaves = st.none() | st.booleans() | st.integers() | st.floats() | st.text()
_values = st.recursive(
    _leaves,
    lambda children: (
        st.lists(children)
        | st.tuples(children, children)
        | st.dictionaries(st.text() | st.integers(), children)
    ),
    max_leaves=40,
)


@given(_values)
def test_random_values_equal_json_dumps(value: Any) -> None:
    assert render._json_text(value) == _reference(value)
