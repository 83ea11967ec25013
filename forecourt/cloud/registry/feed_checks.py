"""Pure checks of one factory feed row: what the codec does not refuse but the database would.

The core codec checks the domain (VIN syntax, ECU addresses, enums); these checks cover what only
storage cares about, so a bad row becomes that row's error instead of an exception out of the
import: text that is not a sequence of Unicode scalar values (a lone surrogate from a JSON
``"\\ud800"`` cannot be encoded for the driver; NUL is refused by PostgreSQL), numbers beyond
the column's range and strings beyond the column's length. Reasons never quote the offending
value, so they can be logged.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy import FromClause, String

from forecourt.core import Vehicle
from forecourt.store.registry import EcuRow, VehicleRow

# 49 CFR 565.15: the position-10 year code covers two 30-year cycles, 1980–2009 and 2010–2039.
MODEL_YEAR_MIN: Final = 1980
MODEL_YEAR_MAX: Final = 2039


@dataclass(frozen=True, slots=True)
class FieldProblem:
    """Field ``field`` (a path such as ``ecus[0].serial``) cannot be stored, and why."""

    field: str
    reason: str

    def __str__(self) -> str:
        return f"{self.field}: {self.reason}"


def text_problem(raw: Mapping[str, Any]) -> FieldProblem | None:
    """The first key or string in ``raw`` (at any depth) that is not storable text, if any.

    Walks with an explicit stack: a JSON row may be nested as deep as the parser allowed.
    """
    stack: list[tuple[str, Any]] = [("", raw)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, str):
            reason = _text_reason(value)
            if reason is not None:
                return FieldProblem(path or "row", reason)
        elif isinstance(value, Mapping):
            for key, item in reversed(list(value.items())):
                name = f"{path}.{key}" if path else str(key)
                reason = _text_reason(key) if isinstance(key, str) else None
                if reason is not None:
                    return FieldProblem(f"{path or 'row'} key", reason)
                stack.append((name, item))
        elif isinstance(value, list):
            stack.extend((f"{path}[{i}]", item) for i, item in reversed(list(enumerate(value))))
    return None


def _text_reason(text: str) -> str | None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        return f"character {exc.start + 1} is a lone surrogate, not a Unicode scalar value"
    if "\x00" in text:
        return f"character {text.index(chr(0)) + 1} is NUL"
    return None


def storage_problem(vehicle: Vehicle) -> FieldProblem | None:
    """The first field of a decoded ``vehicle`` that its column cannot hold, if any."""
    if not MODEL_YEAR_MIN <= vehicle.model_year <= MODEL_YEAR_MAX:
        return FieldProblem("model_year", f"outside {MODEL_YEAR_MIN}–{MODEL_YEAR_MAX}")
    for name, limit in _VEHICLE_LIMITS.items():
        problem = _length_problem(name, getattr(vehicle, name), limit)
        if problem is not None:
            return problem
    for index, ecu in enumerate(vehicle.ecus):
        for name, limit in _ECU_LIMITS.items():
            problem = _length_problem(f"ecus[{index}].{name}", getattr(ecu, name), limit)
            if problem is not None:
                return problem
    return None


def _length_problem(field: str, value: object, limit: int) -> FieldProblem | None:
    if isinstance(value, str) and len(value) > limit:
        return FieldProblem(field, f"{len(value)} characters; at most {limit}")
    return None


def _string_limits(table: FromClause, fields: tuple[str, ...]) -> dict[str, int]:
    """Column lengths of ``fields``, read from the schema so they cannot drift from it."""
    limits: dict[str, int] = {}
    for name in fields:
        column_type = table.columns[name].type
        if isinstance(column_type, String) and column_type.length is not None:
            limits[name] = column_type.length
    return limits


_VEHICLE_LIMITS: Final = _string_limits(
    VehicleRow.__table__, ("model", "plant", "dealer_id", "owner_ref")
)
_ECU_LIMITS: Final = _string_limits(
    EcuRow.__table__, ("serial", "hardware_number", "software_version")
)
