"""The activation workflow of one car as a state machine: states, failure codes, legal moves.

Happy path, one committed transition per arrow (hawkBit-style explicit action states)::

    requested ─► connected ─► identified ─► authorised ─► transferring ─► applying
                                 │   ▲                                        │
                                 ▼   │                    done ◄─ verified ◄──┘
                          awaiting_review (foreign vehicle, re-activation, offline use, batch)

(offline: ``identified → authorised`` takes a package from the stock instead of the cloud)

Every non-terminal state may also move to ``failed`` (something broke: link, cloud, car refused),
``refused`` (a rule said no: permission, review rejected, cloud refusal, consent) or
``cancelled`` (the operator stopped it; not once ``applying`` has begun: the car decides then).
``done``, ``failed``, ``refused`` and ``cancelled`` are terminal.

Why a table and not methods per state: a reviewer reads every legal move in :data:`TRANSITIONS`,
and a test iterates it; the service refuses anything else with :class:`IllegalTransition`.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from types import MappingProxyType
from typing import Final


class WorkflowState(StrEnum):
    REQUESTED = "requested"
    CONNECTED = "connected"
    IDENTIFIED = "identified"
    AWAITING_REVIEW = "awaiting_review"
    AUTHORISED = "authorised"
    TRANSFERRING = "transferring"
    APPLYING = "applying"
    VERIFIED = "verified"
    DONE = "done"
    FAILED = "failed"
    REFUSED = "refused"
    CANCELLED = "cancelled"


class FailureCode(StrEnum):
    """Stable codes of why a workflow ended in ``failed`` or ``refused`` (console, API, logs)."""

    # refused: a rule said no
    PERMISSION_DENIED = "permission_denied"
    REVIEW_REJECTED = "review_rejected"
    REVIEW_EXPIRED = "review_expired"
    CLOUD_REFUSED = "cloud_refused"
    NO_OFFLINE_PACKAGE = "no_offline_package"
    OFFLINE_PACKAGE_STALE = "offline_package_stale"
    VIN_MISMATCH = "vin_mismatch"
    CAR_REFUSED_BUNDLE = "car_refused_bundle"
    # failed: something broke
    CAR_UNREACHABLE = "car_unreachable"
    LINK_ERROR = "link_error"
    AUTHENTICATION_FAILED = "authentication_failed"
    CLOUD_UNREACHABLE = "cloud_unreachable"
    PACKAGE_UNAVAILABLE = "package_unavailable"
    TRANSFER_FAILED = "transfer_failed"
    APPLY_FAILED = "apply_failed"
    MANIFEST_REJECTED = "manifest_rejected"
    RESUME_IMPOSSIBLE = "resume_impossible"
    INTERNAL_ERROR = "internal_error"


_S = WorkflowState
TERMINAL: Final = frozenset({_S.DONE, _S.FAILED, _S.REFUSED, _S.CANCELLED})
_ENDINGS: Final = frozenset({_S.FAILED, _S.REFUSED, _S.CANCELLED})
_ENDINGS_NO_CANCEL: Final = frozenset({_S.FAILED, _S.REFUSED})

#: state → the states it may move to. Nothing else is a legal move.
TRANSITIONS: Final[Mapping[WorkflowState, frozenset[WorkflowState]]] = MappingProxyType(
    {
        _S.REQUESTED: frozenset({_S.CONNECTED}) | _ENDINGS,
        _S.CONNECTED: frozenset({_S.IDENTIFIED}) | _ENDINGS,
        _S.IDENTIFIED: frozenset({_S.AWAITING_REVIEW, _S.AUTHORISED}) | _ENDINGS,
        _S.AWAITING_REVIEW: frozenset({_S.IDENTIFIED, _S.AUTHORISED}) | _ENDINGS,
        _S.AUTHORISED: frozenset({_S.TRANSFERRING}) | _ENDINGS,
        _S.TRANSFERRING: frozenset({_S.APPLYING}) | _ENDINGS,
        # Once the apply routine may have started, only the car's report decides the outcome.
        _S.APPLYING: frozenset({_S.VERIFIED}) | _ENDINGS_NO_CANCEL,
        _S.VERIFIED: frozenset({_S.DONE}) | _ENDINGS_NO_CANCEL,
        _S.DONE: frozenset(),
        _S.FAILED: frozenset(),
        _S.REFUSED: frozenset(),
        _S.CANCELLED: frozenset(),
    }
)

#: Order of the happy path, for progress bars (``awaiting_review`` sits beside ``identified``).
HAPPY_PATH: Final = (
    _S.REQUESTED,
    _S.CONNECTED,
    _S.IDENTIFIED,
    _S.AUTHORISED,
    _S.TRANSFERRING,
    _S.APPLYING,
    _S.VERIFIED,
    _S.DONE,
)


class IllegalTransition(Exception):
    """``source → target`` is not in :data:`TRANSITIONS`."""

    def __init__(self, workflow_id: str, source: WorkflowState, target: WorkflowState) -> None:
        super().__init__(f"workflow {workflow_id}: {source.value} → {target.value} is not allowed")
        self.workflow_id = workflow_id
        self.source = source
        self.target = target


def check_transition(workflow_id: str, source: WorkflowState, target: WorkflowState) -> None:
    """Return if ``source → target`` is legal, else raise :class:`IllegalTransition`."""
    if target not in TRANSITIONS[source]:
        raise IllegalTransition(workflow_id, source, target)


def is_terminal(state: WorkflowState) -> bool:
    return state in TERMINAL


def ending_for(code: FailureCode) -> WorkflowState:
    """``refused`` for a rule that said no, ``failed`` for anything that broke."""
    return _S.REFUSED if code in _REFUSALS else _S.FAILED


_REFUSALS: Final = frozenset(
    {
        FailureCode.PERMISSION_DENIED,
        FailureCode.REVIEW_REJECTED,
        FailureCode.REVIEW_EXPIRED,
        FailureCode.CLOUD_REFUSED,
        FailureCode.NO_OFFLINE_PACKAGE,
        FailureCode.OFFLINE_PACKAGE_STALE,
        FailureCode.VIN_MISMATCH,
        FailureCode.CAR_REFUSED_BUNDLE,
    }
)
