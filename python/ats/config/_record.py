"""Frozen record classes built without ``dataclasses`` at start-up.

Why: ``@dataclass`` compiles the source text of every generated method (``exec``), about
1.5 ms per class, and ``ats-run`` builds the configuration in every Python process it
starts. :func:`record` gives the configuration classes the same behaviour with shared,
already-compiled methods: an ``__init__`` from the annotations (positional or keyword,
defaults, ``field(default_factory=...)``), frozen attributes, and ``__eq__``/``__hash__``/
``__repr__`` over the fields. Type checkers are shown ``dataclasses.dataclass`` instead
(see the ``TYPE_CHECKING`` imports at the users), which describes exactly this behaviour.

Limits (not needed by the configuration): no inheritance between records, no ``ClassVar``
annotations, no ``order``/``slots``/``kw_only``.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any, TypeVar

    T = TypeVar("T")

__all__ = ["FrozenInstanceError", "field", "fields", "is_record", "record"]

_FIELDS = "__record_fields__"
_MISSING: Any = object()


class FrozenInstanceError(AttributeError):
    """Assigning to a field of a frozen record."""


class Field:
    __slots__ = ("name", "default", "default_factory", "repr", "compare")

    def __init__(self, default: Any, default_factory: Callable[[], Any] | None, repr: bool, compare: bool) -> None:
        self.name = ""
        self.default = default
        self.default_factory = default_factory
        self.repr = repr
        self.compare = compare


def field(*, default: Any = _MISSING, default_factory: Callable[[], Any] | None = None, repr: bool = True,
          compare: bool = True) -> Any:
    return Field(default, default_factory, repr, compare)


def fields(obj: Any) -> tuple[Field, ...]:
    result: tuple[Field, ...] = getattr(obj, _FIELDS)
    return result


def is_record(obj: Any) -> bool:
    return hasattr(obj, _FIELDS)


def _init(self: Any, *args: Any, **kwargs: Any) -> None:
    spec = fields(self)
    if len(args) > len(spec):
        raise TypeError(f"{type(self).__name__}() takes {len(spec)} positional arguments but {len(args)} were given")
    for f, value in zip(spec, args):
        if f.name in kwargs:
            raise TypeError(f"{type(self).__name__}() got multiple values for argument {f.name!r}")
        object.__setattr__(self, f.name, value)
    for f in spec[len(args):]:
        if f.name in kwargs:
            value = kwargs.pop(f.name)
        elif f.default_factory is not None:
            value = f.default_factory()
        elif f.default is not _MISSING:
            value = f.default
        else:
            raise TypeError(f"{type(self).__name__}() missing required argument {f.name!r}")
        object.__setattr__(self, f.name, value)
    if kwargs:  # every known name was taken above
        raise TypeError(f"{type(self).__name__}() got an unexpected keyword argument {next(iter(kwargs))!r}")


def _key(self: Any) -> tuple[Any, ...]:
    return tuple(getattr(self, f.name) for f in fields(self) if f.compare)


def _eq(self: Any, other: object) -> Any:
    if other.__class__ is not self.__class__:
        return NotImplemented
    return _key(self) == _key(other)


def _hash(self: Any) -> int:
    return hash(_key(self))


def _repr(self: Any) -> str:
    inner = ", ".join(f"{f.name}={getattr(self, f.name)!r}" for f in fields(self) if f.repr)
    return f"{type(self).__qualname__}({inner})"


def _setattr(self: Any, name: str, value: Any) -> None:
    raise FrozenInstanceError(f"cannot assign to field {name!r}")


def _delattr(self: Any, name: str) -> None:
    raise FrozenInstanceError(f"cannot delete field {name!r}")


def record(cls: type[T] | None = None, /, *, frozen: bool = True) -> Any:
    """Class decorator: ``@record`` or ``@record(frozen=True)`` (records are always frozen)."""

    def wrap(c: type[T]) -> type[T]:
        spec = []
        for name in c.__dict__.get("__annotations__", {}):
            declared = c.__dict__.get(name, _MISSING)
            f = declared if isinstance(declared, Field) else Field(declared, None, True, True)
            f.name = name
            if isinstance(declared, Field):
                delattr(c, name)  # as dataclasses do: a field() is not a class attribute
            spec.append(f)
        setattr(c, _FIELDS, tuple(spec))
        for attr, fn in (("__init__", _init), ("__eq__", _eq), ("__hash__", _hash), ("__repr__", _repr),
                         ("__setattr__", _setattr), ("__delattr__", _delattr)):
            setattr(c, attr, fn)
        return c

    return wrap if cls is None else wrap(cls)
