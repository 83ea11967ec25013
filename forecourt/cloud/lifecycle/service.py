"""The car's life after the dealer, applied to the registry and recorded in the cloud's ledger.

Every change (handover, service visit, change of owner, scrapping, and any other lifecycle edge
or owner registration) is one transaction holding: the registry change (state, owner), the end
of the rights it ends (each revoked with its reason and audited), the ledger records that
describe it (appended with :func:`~forecourt.ledger.log.append_activities_in`, the owner only as
a salted commitment) and one audit row that names the records' ledger indices, which is how a
car's history is found again by VIN. Either all of it commits or none of it does.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from forecourt.cloud.audit import record_change
from forecourt.cloud.catalog.service import change_state, entitlements_of
from forecourt.cloud.lifecycle.rules import (
    SERVICE_VISIT,
    LifecycleRefused,
    Outcome,
    RefusalKind,
    check_service_visit,
    plan_owner,
    plan_transition,
    rights_that_end,
)
from forecourt.cloud.problems import CloudProblem, ProblemCode
from forecourt.cloud.registry.dealers import get_dealer
from forecourt.cloud.registry.vehicles import vehicle_row
from forecourt.core import LifecycleState
from forecourt.ledger.entry import ActivityRecord, EventKind, NetworkEnvironment
from forecourt.ledger.log import append_activities_in
from forecourt.ledger.repository import MerkleLogStore
from forecourt.logging import get_logger
from forecourt.store.registry import VehicleRow

_log = get_logger("cloud.lifecycle")

#: The audit action of a lifecycle change; its rows index the car's ledger records by VIN.
LIFECYCLE_ACTION = "vehicle.lifecycle"
#: The ``edge_id`` of records the cloud itself writes (no dealer edge was involved).
CLOUD_EDGE = "cloud"
#: The ``dealer_id`` of a record about a car that has no dealer (still at the plant).
NO_DEALER = "oem"


@dataclass(frozen=True, slots=True)
class EndedRight:
    entitlement_id: int
    feature_code: str
    source: str
    reason: str

    def to_json(self) -> dict[str, Any]:
        return {
            "entitlement_id": self.entitlement_id,
            "feature_code": self.feature_code,
            "source": self.source,
            "reason": self.reason,
        }


@dataclass(frozen=True, slots=True)
class LifecycleResult:
    """What one change did; ``ledger_indices`` are the cloud log's new entries about it."""

    vin: str
    event: str
    from_state: LifecycleState
    state: LifecycleState
    owner_ref: str | None
    dealer_id: str
    ledger_indices: tuple[int, ...]
    ended: tuple[EndedRight, ...] = field(default=())

    def to_json(self) -> dict[str, Any]:
        return {
            "vin": self.vin,
            "event": self.event,
            "from_state": self.from_state.value,
            "state": self.state.value,
            "owner_ref": self.owner_ref,
            "dealer_id": self.dealer_id,
            "ledger_indices": list(self.ledger_indices),
            "ended_entitlements": [e.to_json() for e in self.ended],
        }


class LifecycleService:
    """Applies :mod:`~forecourt.cloud.lifecycle.rules` inside the caller's transaction.

    The caller owns the transaction (a route's ``db.transaction()``, the command line's), so a
    failure anywhere, the ledger's append included, rolls back the registry change too.
    """

    def __init__(self, store: MerkleLogStore, origin: str, clock: Callable[[], datetime]) -> None:
        self.store = store
        self.origin = origin
        self.clock = clock

    def transition(
        self,
        session: Session,
        vin: str,
        to: LifecycleState,
        *,
        actor: str,
        owner_ref: str | None = None,
        dealer_id: str | None = None,
    ) -> LifecycleResult:
        """Move the car along one lifecycle edge (``owner_ref``: the owner it names, if any;
        ``dealer_id``: the dealer where it happens, default the car's)."""
        row = vehicle_row(session, vin, for_update=True)
        current = LifecycleState(row.state)
        try:
            outcome = plan_transition(current, row.owner_ref, to, owner_ref)
        except LifecycleRefused as exc:
            raise _refused(vin, to.value, exc) from exc
        return self._apply(session, row, outcome, to.value, actor=actor, dealer_id=dealer_id)

    def set_owner(
        self, session: Session, vin: str, owner_ref: str | None, *, actor: str
    ) -> LifecycleResult:
        """Register (or clear) the owner without a transition, where the rules allow it."""
        row = vehicle_row(session, vin, for_update=True)
        try:
            outcome = plan_owner(LifecycleState(row.state), row.owner_ref, owner_ref)
        except LifecycleRefused as exc:
            raise _refused(vin, "owner", exc) from exc
        return self._apply(session, row, outcome, "owner-registered", actor=actor)

    def service_visit(
        self, session: Session, vin: str, dealer_id: str, *, actor: str
    ) -> LifecycleResult:
        """A workshop visit at ``dealer_id``: recorded, no state change."""
        row = vehicle_row(session, vin, for_update=True)
        current = LifecycleState(row.state)
        try:
            check_service_visit(current)
        except LifecycleRefused as exc:
            raise _refused(vin, SERVICE_VISIT, exc) from exc
        outcome = Outcome(current, row.owner_ref, EventKind.LIFECYCLE_CHANGE)
        return self._apply(session, row, outcome, SERVICE_VISIT, actor=actor, dealer_id=dealer_id)

    def _apply(
        self,
        session: Session,
        row: VehicleRow,
        outcome: Outcome,
        event: str,
        *,
        actor: str,
        dealer_id: str | None = None,
    ) -> LifecycleResult:
        now = self.clock()
        if dealer_id is not None:
            get_dealer(session, dealer_id)
        where = dealer_id or row.dealer_id or NO_DEALER
        previous_state, previous_owner = LifecycleState(row.state), row.owner_ref
        row.state, row.owner_ref = outcome.state.value, outcome.owner_ref
        ended = self._end_rights(session, row.vin, outcome.ends_rights, now, actor)
        personal: Mapping[str, str] = (
            {"owner_ref": outcome.owner_ref}
            if outcome.owner_changed and outcome.owner_ref is not None
            else {}
        )
        items = [(self._record(now, outcome.kind, row.vin, where, event), personal)]
        if ended:
            features = tuple(sorted({e.feature_code for e in ended}))
            revocation = self._record(
                now, EventKind.REVOCATION, row.vin, where, ended[0].reason, features=features
            )
            items.append((revocation, {"owner_ref": previous_owner} if previous_owner else {}))
        session.flush()  # a registry change that cannot be written fails before the ledger's
        indices = tuple(append_activities_in(self.store, session, items))
        record_change(
            session,
            at=now,
            actor=actor,
            action=LIFECYCLE_ACTION,
            subject=row.vin,
            dealer_id=where if where != NO_DEALER else None,
            detail={
                "event": event,
                "from": previous_state.value,
                "to": outcome.state.value,
                "owner_changed": outcome.owner_changed,
                "ended_entitlements": [e.entitlement_id for e in ended],
                "ledger": {"origin": self.origin, "indices": list(indices)},
            },
        )
        _log.info(
            "lifecycle_changed", vin=row.vin, change=event, to=outcome.state.value, ledger=indices
        )
        return LifecycleResult(
            vin=row.vin,
            event=event,
            from_state=previous_state,
            state=outcome.state,
            owner_ref=outcome.owner_ref,
            dealer_id=where,
            ledger_indices=indices,
            ended=tuple(ended),
        )

    def _end_rights(
        self, session: Session, vin: str, reason: str | None, now: datetime, actor: str
    ) -> list[EndedRight]:
        if reason is None:
            return []
        ended = []
        for ident, right in rights_that_end(entitlements_of(session, vin), reason, now):
            change_state(session, ident, "revoke", now)
            record_change(
                session,
                at=now,
                actor=actor,
                action="entitlement.revoke",
                subject=f"entitlement:{ident}",
                detail={"vin": vin, "feature_code": right.feature_code, "reason": reason},
            )
            ended.append(EndedRight(ident, right.feature_code, right.source.value, reason))
        return ended

    @staticmethod
    def _record(
        now: datetime,
        kind: EventKind,
        vin: str,
        dealer_id: str,
        status: str,
        *,
        features: tuple[str, ...] = (),
    ) -> ActivityRecord:
        return ActivityRecord(
            timestamp=now,
            kind=kind,
            vin=vin,
            dealer_id=dealer_id,
            edge_id=CLOUD_EDGE,
            network=NetworkEnvironment.ONLINE,
            response_status=status,
            features=features,
        )


def _refused(vin: str, wanted: str, exc: LifecycleRefused) -> CloudProblem:
    """The problem for a refusal, logged here too (the command line has no HTTP handler)."""
    _log.warning(
        "lifecycle_refused", vin=vin, wanted=wanted, rule=exc.kind.value, detail=exc.detail
    )
    if exc.kind is RefusalKind.TRANSITION:
        return CloudProblem(
            409, ProblemCode.LIFECYCLE_TRANSITION, "Lifecycle change refused", exc.detail
        )
    return CloudProblem(422, ProblemCode.VALIDATION_FAILED, "Owner change refused", exc.detail)
