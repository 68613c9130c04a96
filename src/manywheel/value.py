"""Value semantics (``==``, ``hash``, ``repr``) of manywheel's frozen dataclasses, once.

Every fact and report is a frozen dataclass. On Python 3.11 the decorator compiles each
method it generates with ``exec``, six per frozen class, and ``__eq__``, ``__hash__`` and
``__repr__`` are the same logic for every class: over the fields in order, those with
``compare=True`` (``field(hash=...)`` is not supported) and ``repr=True``. Declared with
``eq=False, repr=False`` and inheriting :class:`Value`, a class gets those three from
here instead: the ~55 classes ``manywheel show`` imports start ~9 ms sooner, which is
a tenth of a small wheel's whole run. Behaviour is that of the generated methods
(tests/test_value.py compares both on every such class of the package).
"""

from __future__ import annotations

import dataclasses
import operator
from collections.abc import Callable
from typing import Any

__all__ = ["Value"]


def _accessors(cls: type) -> tuple[Callable[[Any], tuple[Any, ...]], tuple[str, ...]]:
    """The key ``==`` and ``hash`` compare and the field names ``repr`` shows, for
    ``cls``; computed on first use and kept on the class itself."""
    cached = cls.__dict__.get("_value_accessors")
    if cached is not None:
        return cached  # type: ignore[no-any-return]
    fields = dataclasses.fields(cls)
    if any(f.hash is not None for f in fields):
        raise TypeError(f"{cls.__qualname__}: Value hashes the compared fields; no field(hash=)")
    compared = [f.name for f in fields if f.compare]
    if len(compared) > 1:
        key: Callable[[Any], tuple[Any, ...]] = operator.attrgetter(*compared)
    elif compared:
        getter = operator.attrgetter(compared[0])
        key = lambda obj: (getter(obj),)  # noqa: E731 - one field: still a tuple
    else:
        key = lambda obj: ()  # noqa: E731
    shown = tuple(f.name for f in fields if f.repr)
    accessors = (key, shown)
    type.__setattr__(cls, "_value_accessors", accessors)
    return accessors


class Value:
    """Base of the frozen dataclasses declared ``eq=False, repr=False``: equal when of
    the same class with equal compared fields, hashed on them, shown as the dataclass
    decorator shows them (``Name(field=value, ...)``)."""

    __slots__ = ()

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        key = _accessors(self.__class__)[0]
        return key(self) == key(other)

    def __hash__(self) -> int:
        return hash(_accessors(self.__class__)[0](self))

    def __repr__(self) -> str:
        shown = _accessors(self.__class__)[1]
        body = ", ".join(f"{name}={getattr(self, name)!r}" for name in shown)
        return f"{self.__class__.__qualname__}({body})"
