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
``from_dict(T, to_dict(x)) == x`` for every core type ``T`` (tested).
"""

from __future__ import annotations

import dataclasses
import types
import typing
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
    hints = typing.get_type_hints(cls)
    kwargs: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if f.name in data:
            kwargs[f.name] = _from_json(hints[f.name], data[f.name], f.name)
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise DomainValueError(f.name, f"missing from {cls.__name__} data")
    return cast(T, cls(**kwargs))


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
