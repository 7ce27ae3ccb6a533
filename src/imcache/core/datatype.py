"""`@datatype`: a light stand-in for `@dataclass` on the start-up path.

`dataclasses` builds each class by generating and `exec`-ing source for `__init__`, `__eq__`,
`__repr__`, ...: about 0.35 ms per class, 7 ms for the twenty classes a hit defines, which is a
seventh of imcache's own start-up (issue 5). `datatype` builds the same methods from closures
instead, at about a hundredth of that. mypy reads it as a dataclass through `dataclass_transform`.

What it supports is what imcache uses: fields with a default or a `field(default_factory=...)`,
frozen (the default) or not, equality and hashing by fields, a readable repr, and `replace`.
No inheritance between datatypes, no `InitVar`, no ordering.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing is not imported at run time: a hit never needs it
    from collections.abc import Callable
    from typing import Any, TypeVar, dataclass_transform, overload

    T = TypeVar("T")
else:

    def overload(function: object) -> object:
        return function  # the last definition, the real one, is what stays (ruff: F811)

    def dataclass_transform(**_: object) -> object:
        return overload  # a marker for type checkers only


_MISSING: Any = object()


class _Factory:
    __slots__ = ("make",)

    def __init__(self, make: Callable[[], Any]) -> None:
        self.make = make


def field(*, default: Any = _MISSING, default_factory: Callable[[], Any] = _MISSING) -> Any:
    """A field's default: a value, or a factory called for every new instance."""
    if default_factory is not _MISSING:
        return _Factory(default_factory)
    return default


@overload
def datatype(cls: type[T], /) -> type[T]: ...
@overload
def datatype(*, frozen: bool = True) -> Callable[[type[T]], type[T]]: ...  # noqa: F811


@dataclass_transform(frozen_default=True, field_specifiers=(field,))
def datatype(cls: Any = None, /, *, frozen: bool = True) -> Any:  # noqa: F811
    """Give `cls` an `__init__` over its annotated fields, `__eq__`, `__hash__`, `__repr__`."""

    def build(cls: type[T]) -> type[T]:
        return _build(cls, frozen)

    return build if cls is None else build(cls)


def _build(cls: type[T], frozen: bool) -> type[T]:
    # The class's own annotations, as inspect.get_annotations gives them (without importing
    # inspect, whose ast and tokenize cost a hit more than all datatypes together).
    names = tuple(cls.__dict__.get("__annotations__", {}))  # noqa: RUF063
    defaults = {name: cls.__dict__[name] for name in names if name in cls.__dict__}
    for name in defaults:
        delattr(cls, name)  # a class attribute would hide a missing instance value
    _check_order(cls, names, defaults)
    setter = object.__setattr__

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        if len(args) > len(names):
            raise TypeError(f"{cls.__name__}() takes {len(names)} positional arguments")
        for name, value in zip(names, args, strict=False):
            if name in kwargs:
                raise TypeError(f"{cls.__name__}() got multiple values for {name!r}")
            setter(self, name, value)
        for name in names[len(args) :]:
            if name in kwargs:
                value = kwargs.pop(name)
            elif name in defaults:
                value = defaults[name]
                value = value.make() if isinstance(value, _Factory) else value
            else:
                raise TypeError(f"{cls.__name__}() missing argument {name!r}")
            setter(self, name, value)
        if kwargs:
            raise TypeError(f"{cls.__name__}() got unexpected arguments {sorted(kwargs)}")

    def fields_of(self: Any) -> tuple[Any, ...]:
        return tuple(getattr(self, name) for name in names)

    def __eq__(self: Any, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return bool(fields_of(self) == fields_of(other))

    def __repr__(self: Any) -> str:
        inner = ", ".join(f"{name}={getattr(self, name)!r}" for name in names)
        return f"{cls.__qualname__}({inner})"

    methods: dict[str, Any] = {
        "__init__": __init__,
        "__eq__": __eq__,
        "__repr__": __repr__,
        "__datatype_fields__": names,
        "__hash__": None,  # as a dataclass with eq and not frozen: unhashable
    }
    if frozen:
        methods["__hash__"] = lambda self: hash(fields_of(self))
        methods["__setattr__"] = methods["__delattr__"] = _refuse_change
    for name, method in methods.items():
        setattr(cls, name, method)
    return cls


def _check_order(cls: type, names: tuple[str, ...], defaults: dict[str, Any]) -> None:
    seen_default = False
    for name in names:
        if name in defaults:
            seen_default = True
        elif seen_default:
            raise TypeError(f"{cls.__name__}: field {name!r} without a default follows one with")


def _refuse_change(self: Any, name: str, *value: Any) -> None:
    raise AttributeError(f"cannot change field {name!r}: {type(self).__name__} is frozen")


def replace(obj: T, /, **changes: Any) -> T:
    """A copy of `obj` with some fields changed (as `dataclasses.replace`)."""
    names: tuple[str, ...] = type(obj).__datatype_fields__  # type: ignore[attr-defined]
    values = {name: getattr(obj, name) for name in names}
    unknown = set(changes) - set(values)
    if unknown:
        raise TypeError(f"{type(obj).__name__} has no fields {sorted(unknown)}")
    return type(obj)(**(values | changes))
