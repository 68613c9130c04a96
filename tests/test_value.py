"""manywheel.value.Value gives every frozen dataclass of the package the ``==``, ``hash``
and ``repr`` the dataclass decorator would have generated: checked class by class
against a twin the decorator builds from the same fields."""

from __future__ import annotations

import dataclasses
import importlib
import pkgutil
from typing import Any

import pytest

import manywheel
from manywheel.value import Value


def _frozen_dataclasses() -> list[type]:
    found: dict[str, type] = {}
    for info in pkgutil.iter_modules(manywheel.__path__):
        if info.name == "__main__":  # importing it runs the command line
            continue
        module = importlib.import_module(f"manywheel.{info.name}")
        for obj in vars(module).values():
            if (
                isinstance(obj, type)
                and dataclasses.is_dataclass(obj)
                and obj.__module__ == module.__name__
                and obj.__dataclass_params__.frozen  # type: ignore[attr-defined]
            ):
                found[f"{obj.__module__}.{obj.__qualname__}"] = obj
    return [found[name] for name in sorted(found)]


CLASSES = _frozen_dataclasses()


def test_every_frozen_dataclass_takes_its_value_semantics_from_value() -> None:
    assert len(CLASSES) > 70
    for cls in CLASSES:
        params = cls.__dataclass_params__  # type: ignore[attr-defined]
        assert issubclass(cls, Value), cls
        assert not params.eq and not params.repr, cls


def _twin(cls: type) -> type:
    """The same fields, with the methods the decorator generates (eq, hash, repr)."""
    specs = [
        (f.name, Any, dataclasses.field(compare=f.compare, repr=f.repr))
        for f in dataclasses.fields(cls)
    ]
    twin = dataclasses.make_dataclass(cls.__name__, specs, frozen=True)
    twin.__qualname__ = cls.__qualname__
    return twin


def _build(cls: type, values: dict[str, object]) -> object:
    """An instance of ``cls`` holding ``values``, without its __init__ checks."""
    obj = object.__new__(cls)
    for name, value in values.items():
        object.__setattr__(obj, name, value)
    return obj


def _samples(cls: type) -> list[dict[str, object]]:
    names = [f.name for f in dataclasses.fields(cls)]
    base = {name: (i, f"v{i}") for i, name in enumerate(names)}
    variants = [base]
    for name in names:
        variants.append({**base, name: ("other", name)})
    return variants


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: f"{c.__module__}.{c.__qualname__}")
def test_equality_hash_and_repr_are_the_generated_ones(cls: type) -> None:
    twin = _twin(cls)
    samples = _samples(cls)
    reals = [_build(cls, values) for values in samples]
    twins = [twin(**values) for values in samples]
    explicit_hash = "__hash__" in cls.__dict__
    for real, copy in zip(reals, twins, strict=True):
        assert repr(real) == repr(copy)
        if not explicit_hash:
            assert hash(real) == hash(copy)
        assert real != copy  # another class: NotImplemented both ways, as generated
    for i, (a, ta) in enumerate(zip(reals, twins, strict=True)):
        for j, (b, tb) in enumerate(zip(reals, twins, strict=True)):
            assert (a == b) is (ta == tb), (i, j)
            assert (a != b) is (ta != tb), (i, j)
            if a == b and not explicit_hash:
                assert hash(a) == hash(b)
    assert reals[0] == _build(cls, samples[0])
