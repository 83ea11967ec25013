"""Plain-JSON form of the core types, one set of rules for all of them.

Storage, the HTTP APIs and the demo data all need the same mapping, so it lives here once:

==================  =============================================
Python              JSON
==================  =============================================
dataclass           object, fields in declaration order
StrEnum             its value
Vin, SemVer         their canonical text
datetime, date      ISO 8601 text (datetimes must be aware)
bytes               lower-case hex
frozenset           sorted array
tuple               array
==================  =============================================

:func:`from_dict` reverses :func:`to_dict` using the dataclass type hints, so
``from_dict(T, to_dict(x)) == x`` for every core type ``T`` (tested). The hints are resolved
and turned into per-field decoders once per class (decoding sits on the request path).
"""

from __future__ import annotations

import dataclasses
import functools
import types
import typing
from collections.abc import Callable
from datetime import date, datetime
from enum import Enum
from typing import Any, TypeVar, cast

from forecourt.core.errors import DomainValueError
from forecourt.core.package import SemVer
from forecourt.core.vin import Vin

T = TypeVar("T")

Json = None | bool | int | float | str | list["Json"] | dict[str, "Json"]


def to_dict(obj: object) -> dict[str, Json]:
    """The JSON object of a core dataclass instance."""
    if not dataclasses.is_dataclass(obj) or isinstance(obj, type):
        raise TypeError(f"{type(obj).__name__} is not a dataclass instance")
    return cast(dict[str, Json], to_json(obj))


def to_json(value: object) -> Json:
    """The JSON value of any core value (see the module table)."""
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, Enum):
        return cast(Json, value.value)
    if isinstance(value, str):
        return value
    if isinstance(value, Vin | SemVer):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, frozenset | set):
        items = [to_json(v) for v in value]
        return sorted(items, key=_sort_key)
    if isinstance(value, tuple | list):
        return [to_json(v) for v in value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        data: dict[str, Json] = {
            f.name: to_json(getattr(value, f.name)) for f in dataclasses.fields(value)
        }
        code = getattr(type(value), "code", None)
        if isinstance(code, Enum):  # refusal reasons: the class-level code travels too
            data = {"code": code.value, **data}
        return data
    raise TypeError(f"no JSON form for {type(value).__name__}")


def _sort_key(item: Json) -> str:
    return repr(item) if not isinstance(item, str) else item


def from_dict(cls: type[T], data: typing.Mapping[str, Any]) -> T:
    """Rebuild a ``cls`` instance from :func:`to_dict` output; invariants are checked again."""
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"{cls.__name__} is not a dataclass")
    kwargs: dict[str, Any] = {}
    for name, decode, required in _plan(cls):
        if name in data:
            kwargs[name] = decode(data[name], name)
        elif required:
            raise DomainValueError(name, f"missing from {cls.__name__} data")
    return cast(T, cls(**kwargs))


_Decoder = Callable[[Any, str], Any]
"""Decodes one JSON value for the field named by the second argument."""


@functools.cache
def _plan(cls: type) -> tuple[tuple[str, _Decoder, bool], ...]:
    """Each field's name, decoder and whether it is required, resolved once per class.

    ``typing.get_type_hints`` evaluates every annotation string of the class and its bases;
    doing that on each call was most of the cost of decoding a small record.
    """
    hints = typing.get_type_hints(cls)
    return tuple(
        (
            f.name,
            _decoder(hints[f.name]),
            f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING,
        )
        for f in dataclasses.fields(cls)
    )


def _decoder(hint: Any) -> _Decoder:
    try:
        return _compiled(hint)
    except TypeError:  # an unhashable hint cannot be cached: interpret it on every call
        return functools.partial(_from_json, hint)


@functools.cache
def _compiled(hint: Any) -> _Decoder:
    """A decoder equivalent to ``_from_json(hint, ...)`` with the type dispatch done now.

    Shapes not specialised here are handed to :func:`_from_json` itself, so they behave (and
    fail) exactly as before. Nested dataclasses are decoded through :func:`from_dict` at call
    time, which keeps recursive types from recursing here.
    """
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        inners = [a for a in args if a is not type(None)]
        if len(inners) == 1:
            return _optional(_decoder(inners[0]), type(None) in args)
    elif origin is frozenset and len(args) == 1:
        return _frozenset_of(_decoder(args[0]))
    elif origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return _tuple_of(_decoder(args[0]))
        return _fixed_tuple(tuple(_decoder(a) for a in args))
    elif isinstance(hint, type):
        return _scalar_decoder(hint)
    return functools.partial(_from_json, hint)


def _optional(inner: _Decoder, optional: bool) -> _Decoder:
    def decode(value: Any, name: str) -> Any:
        if value is None and optional:
            return None
        return inner(value, name)

    return decode


def _frozenset_of(item: _Decoder) -> _Decoder:
    def decode(value: Any, name: str) -> Any:
        return frozenset(item(v, name) for v in _array(value, name))

    return decode


def _tuple_of(item: _Decoder) -> _Decoder:
    def decode(value: Any, name: str) -> Any:
        return tuple(item(v, name) for v in _array(value, name))

    return decode


def _fixed_tuple(items: tuple[_Decoder, ...]) -> _Decoder:
    def decode(value: Any, name: str) -> Any:
        values = _array(value, name)
        if len(values) != len(items):
            raise DomainValueError(name, f"expected {len(items)} items, got {len(values)}")
        return tuple(d(v, name) for d, v in zip(items, values, strict=True))

    return decode


def _scalar_decoder(hint: type) -> _Decoder:
    """The branch of :func:`_scalar` that ``hint`` takes, chosen once."""
    if hint in (str, int, bool):
        return functools.partial(_exact, hint)
    parse: Callable[[Any], Any] | None = None
    if hint is Vin:
        parse = functools.partial(Vin.parse, verify_check_digit=False)
    elif hint is SemVer:
        parse = SemVer.parse
    elif dataclasses.is_dataclass(hint):
        pass  # object checks and refusal-reason subclasses: see _scalar
    elif issubclass(hint, Enum):
        parse = hint
    elif hint is datetime:
        parse = datetime.fromisoformat
    elif hint is date:
        parse = date.fromisoformat
    elif hint is bytes:
        parse = bytes.fromhex
    if parse is None:
        return functools.partial(_scalar, hint)
    return functools.partial(_parsed, parse)


def _exact(hint: type, value: Any, name: str) -> Any:
    if type(value) is hint:
        return value
    raise DomainValueError(name, f"expected {hint.__name__}, got {type(value).__name__}")


def _parsed(parse: Callable[[Any], Any], value: Any, name: str) -> Any:
    try:
        return parse(value)
    except (TypeError, ValueError) as exc:
        if isinstance(exc, DomainValueError):
            raise
        raise DomainValueError(name, str(exc)) from exc


def _from_json(hint: Any, value: Any, name: str) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return _from_json(inner, value, name)
    if origin is frozenset:
        return frozenset(_from_json(args[0], v, name) for v in _array(value, name))
    if origin is tuple:
        items = _array(value, name)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_from_json(args[0], v, name) for v in items)
        if len(items) != len(args):
            raise DomainValueError(name, f"expected {len(args)} items, got {len(items)}")
        return tuple(_from_json(a, v, name) for a, v in zip(args, items, strict=True))
    if isinstance(hint, type):
        return _scalar(hint, value, name)
    raise TypeError(f"{name}: unsupported type {hint!r}")


def _array(value: Any, name: str) -> list[Any]:
    if not isinstance(value, list):
        raise DomainValueError(name, f"expected an array, got {type(value).__name__}")
    return value


def _scalar(hint: type, value: Any, name: str) -> Any:
    try:
        if hint is Vin:  # Vin and SemVer are dataclasses written as text: test them first
            return Vin.parse(value, verify_check_digit=False)
        if hint is SemVer:
            return SemVer.parse(value)
        if dataclasses.is_dataclass(hint):
            if not isinstance(value, dict):
                raise DomainValueError(name, f"expected an object, got {type(value).__name__}")
            if "code" in value and "code" not in _fields(hint):
                # A class-level code (refusal reasons) picks the concrete subclass.
                hint = _subclass_with_code(hint, value["code"], name)
                value = {k: v for k, v in value.items() if k != "code"}
            return from_dict(hint, value)
        if issubclass(hint, Enum):
            return hint(value)
        if hint is datetime:
            return datetime.fromisoformat(value)
        if hint is date:
            return date.fromisoformat(value)
        if hint is bytes:
            return bytes.fromhex(value)
        if hint is float and isinstance(value, int) and not isinstance(value, bool):
            return float(value)
    except (TypeError, ValueError) as exc:
        if isinstance(exc, DomainValueError):
            raise
        raise DomainValueError(name, str(exc)) from exc
    if hint in (str, int, float, bool) and type(value) is hint:
        return value
    raise DomainValueError(name, f"expected {hint.__name__}, got {type(value).__name__}")


@functools.cache
def _fields(cls: type) -> frozenset[str]:
    return frozenset(f.name for f in dataclasses.fields(cls))


def _subclass_with_code(base: type, code: object, name: str) -> type:
    pending = [base]
    while pending:
        cls = pending.pop()
        own = getattr(cls, "code", None)
        if isinstance(own, Enum) and own.value == code:
            return cls
        pending.extend(cls.__subclasses__())
    raise DomainValueError(name, f"unknown code {code!r} for {base.__name__}")
