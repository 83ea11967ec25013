"""The exceptions the domain core raises.

Every error carries the data that explains it, so a caller (CLI, API, console) can show a precise
message without parsing text::

    CoreError
    ├── DomainValueError (ValueError)   a field value breaks an invariant (field, reason)
    │   ├── VinError                    a VIN breaks ISO 3779 / 49 CFR 565 (position, reason)
    │   └── VersionError                a text is not a semantic version (text, reason)
    └── IllegalTransition               a lifecycle edge that is not allowed (from, to)

Refusing an activation is *not* an exception: :func:`forecourt.core.plan.plan_activation` returns
a :class:`~forecourt.core.plan.PlanRefusal` listing every reason at once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from forecourt.core.vehicle import LifecycleState


class CoreError(Exception):
    """Root of every error raised by :mod:`forecourt.core`."""


class DomainValueError(CoreError, ValueError):
    """A value handed to a domain type breaks one of its invariants."""

    def __init__(self, field: str, reason: str) -> None:
        self.field = field
        self.reason = reason
        super().__init__(f"{field}: {reason}")


class VinError(DomainValueError):
    """A VIN is malformed.

    ``position`` is the 1-based character position at fault, or ``None`` when the length is wrong
    (no single position is to blame).
    """

    def __init__(self, vin: str, position: int | None, reason: str) -> None:
        self.vin = vin
        self.position = position
        where = "length" if position is None else f"position {position}"
        super().__init__("vin", reason)
        # DomainValueError set args to "vin: reason"; say where, which is what a technician needs.
        self.args = (f"invalid VIN {vin!r} at {where}: {reason}",)


class VersionError(DomainValueError):
    """A text is not a semantic version (https://semver.org/spec/v2.0.0.html)."""

    def __init__(self, text: str, reason: str) -> None:
        self.text = text
        super().__init__("version", reason)
        self.args = (f"invalid version {text!r}: {reason}",)


class IllegalTransition(CoreError):
    """A vehicle lifecycle change that the lifecycle graph does not allow."""

    def __init__(self, from_state: LifecycleState, to_state: LifecycleState) -> None:
        self.from_state = from_state
        self.to_state = to_state
        super().__init__(f"illegal lifecycle transition {from_state.value} → {to_state.value}")
