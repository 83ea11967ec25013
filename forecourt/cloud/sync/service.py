"""Hold each pushed event once and apply what it means, in the transaction that holds it.

Exactly once as the cloud sees it, whatever the edge retries and wherever either side crashes:

* one transaction per event inserts its ``registry_sync_events`` row (the CloudEvents id is the
  primary key) *and* applies its effect; a crash before the commit leaves neither, so the edge's
  retry applies it then; after the commit the retry finds the row and is answered ``duplicate``;
* two pushes of one event racing on two replicas: the second insert waits on the key and fails,
  and is answered ``duplicate`` once the first committed;
* the same id with another body is ``event_id_reused``: refused, nothing overwritten.

Checks before anything is written: the envelope is CloudEvents 1.0, the ``source`` names the
edge of the caller's certificate, the data's ``dealer_id`` is the caller's dealer, the type is one
the cloud knows and its data is well formed. A refused event is logged and changes nothing; the
others in the batch are not held back by it.

Effects per type:

* ``consent.recorded``: one append-only ``registry_consent_records`` row per answered category,
  pointing at the notice version shown; a later answer for the same car, customer and category
  names the row it supersedes (a withdrawal is a new row). Propagation starts ``complete`` for
  the cloud and ``pending`` for the car and CRM.
* ``activation.completed``: the online activation is closed as applied (as ``POST
  /v1/activations/{id}/report`` does) or the offline package's use is checked; the car moves from
  ``at_dealer`` to ``activated`` and its activation counter to the one the car reported; every
  ECU's software before and after goes to ``registry_software_history`` (UNECE R156); the car's
  consent records are marked propagated to the car.
* ``offline_package.used``: the use is recorded on the package; a second use by another workflow
  is a double use, answered in ``double_uses`` (again on a retry, so a lost answer loses nothing).
* ``workflow.step``: held as the step record of the car's dossier.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import ValidationError
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from forecourt.cloud.auth import DealerCaller
from forecourt.cloud.context import CloudContext
from forecourt.cloud.offline.service import UseReport, record_use_in
from forecourt.cloud.problems import CloudProblem
from forecourt.cloud.sync.events import (
    ACTIVATION_COMPLETED,
    CONSENT_RECORDED,
    DATA_MODELS,
    OFFLINE_PACKAGE_USED,
    SOURCE_PREFIX,
    CloudEvent,
    CompletedData,
    ConsentData,
    EcuSoftware,
    OfflineUseData,
)
from forecourt.core import LifecycleState
from forecourt.logging import get_logger
from forecourt.store.registry import (
    ActivationRow,
    ConsentPropagationRow,
    ConsentRecordRow,
    OfflinePackageRow,
    SoftwareHistoryRow,
    SyncEventRow,
    VehicleRow,
)

_log = get_logger("cloud.sync")

#: Downstream systems a consent record must reach, and where each starts.
PROPAGATION_START: Mapping[str, str] = {"cloud": "complete", "car": "pending", "crm": "pending"}


class SyncCode(StrEnum):
    """Why one event of a batch was refused (stable; the edge keeps it on the dead message)."""

    EVENT_INVALID = "event_invalid"
    EVENT_TYPE_UNKNOWN = "event_type_unknown"
    EVENT_SOURCE_MISMATCH = "event_source_mismatch"
    EVENT_DEALER_MISMATCH = "event_dealer_mismatch"
    EVENT_ID_REUSED = "event_id_reused"
    VEHICLE_UNKNOWN = "vehicle_unknown"
    ACTIVATION_UNKNOWN = "activation_unknown"
    OFFLINE_PACKAGE_UNKNOWN = "offline_package_unknown"
    CONSENT_RECORD_REUSED = "consent_record_reused"
    CONSENT_SUPERSEDES_UNKNOWN = "consent_supersedes_unknown"


class EventRefused(Exception):
    """One event is refused for good; nothing of it was written."""

    def __init__(self, event_id: str, code: SyncCode, detail: str) -> None:
        super().__init__(f"event {event_id}: {code.value}: {detail}")
        self.event_id = event_id
        self.code = code
        self.detail = detail


@dataclass(frozen=True, slots=True)
class DoubleUseSeen:
    package_id: str
    vin: str
    uses: int


@dataclass
class BatchResult:
    """Per event of a batch: held now, held before (a retry), or refused with a code."""

    accepted: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    rejected: list[EventRefused] = field(default_factory=list)
    double_uses: list[DoubleUseSeen] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "accepted": self.accepted,
            "duplicates": self.duplicates,
            "rejected": [
                {"id": r.event_id, "code": r.code.value, "detail": r.detail} for r in self.rejected
            ],
            "double_uses": [
                {"package_id": d.package_id, "vin": d.vin, "uses": d.uses} for d in self.double_uses
            ],
        }


def event_digest(raw: Mapping[str, Any]) -> str:
    """SHA-256 of the event's canonical JSON: what "the same event" means for a reused id."""
    text = json.dumps(raw, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class _Checked:
    event: CloudEvent
    data: Any
    digest: str


class SyncService:
    """Accepts a batch of an edge's events (see the module docstring for the rules)."""

    def __init__(self, context: CloudContext) -> None:
        self._context = context
        self._db = context.db
        self._apply: dict[str, Callable[[Session, _Checked, DealerCaller, datetime], None]] = {
            CONSENT_RECORDED: self._consent,
            ACTIVATION_COMPLETED: self._completed,
            OFFLINE_PACKAGE_USED: self._offline_use,
        }

    def accept(self, caller: DealerCaller, events: Sequence[Mapping[str, Any]]) -> BatchResult:
        result = BatchResult()
        for raw in events:
            try:
                checked = self._check(caller, raw)
                self._hold(caller, checked, result)
            except EventRefused as refused:
                _log.warning(
                    "sync_event_refused",
                    event_id=refused.event_id,
                    code=refused.code.value,
                    detail=refused.detail,
                    dealer_id=caller.dealer_id,
                    edge_id=caller.edge_id,
                )
                result.rejected.append(refused)
        _log.info(
            "sync_batch",
            dealer_id=caller.dealer_id,
            edge_id=caller.edge_id,
            accepted=len(result.accepted),
            duplicates=len(result.duplicates),
            rejected=len(result.rejected),
        )
        return result

    # -- checks (nothing written) ----------------------------------------------------------

    @staticmethod
    def _check(caller: DealerCaller, raw: Mapping[str, Any]) -> _Checked:
        event_id = str(raw.get("id", "?"))[:64] if isinstance(raw, Mapping) else "?"
        try:
            event = CloudEvent.model_validate(raw)
        except ValidationError as exc:
            raise EventRefused(event_id, SyncCode.EVENT_INVALID, _short(exc)) from exc
        if event.source != f"{SOURCE_PREFIX}{caller.edge_id}":
            raise EventRefused(
                event.id,
                SyncCode.EVENT_SOURCE_MISMATCH,
                f"source {event.source!r} is not the certificate's edge {caller.edge_id!r}",
            )
        model = DATA_MODELS.get(event.type)
        if model is None:
            raise EventRefused(event.id, SyncCode.EVENT_TYPE_UNKNOWN, f"type {event.type!r}")
        try:
            data = model.model_validate(event.data)
        except ValidationError as exc:
            raise EventRefused(event.id, SyncCode.EVENT_INVALID, _short(exc)) from exc
        if data.dealer_id != caller.dealer_id:
            raise EventRefused(
                event.id,
                SyncCode.EVENT_DEALER_MISMATCH,
                f"data names dealer {data.dealer_id!r}, the certificate {caller.dealer_id!r}",
            )
        return _Checked(event, data, event_digest(raw))

    # -- hold and apply, one transaction per event ----------------------------------------

    def _hold(self, caller: DealerCaller, checked: _Checked, result: BatchResult) -> None:
        event = checked.event
        now = self._context.config.clock()
        try:
            with self._db.transaction() as session:
                known = session.get(SyncEventRow, event.id)
                if known is None:
                    session.add(
                        SyncEventRow(
                            event_id=event.id,
                            event_type=event.type,
                            source=event.source,
                            dealer_id=caller.dealer_id,
                            edge=caller.edge_id,
                            subject=event.subject,
                            occurred_at=event.time,
                            received_at=now,
                            digest=checked.digest,
                            data=event.data,
                        )
                    )
                    session.flush()  # the claim: a concurrent twin fails here
                    apply = self._apply.get(event.type)
                    if apply is not None:
                        apply(session, checked, caller, now)
        except IntegrityError:
            known = self._held(event.id)  # a twin committed first: this one is a retry
            if known is None:
                raise
        except CloudProblem as exc:  # a service helper's refusal, e.g. an unknown package
            raise EventRefused(event.id, _sync_code(exc), exc.detail) from exc
        if known is None:
            result.accepted.append(event.id)
        elif known.digest != checked.digest:
            raise EventRefused(
                event.id, SyncCode.EVENT_ID_REUSED, "this id was pushed with another body"
            )
        else:
            result.duplicates.append(event.id)
        if event.type == OFFLINE_PACKAGE_USED:
            self._report_double_use(checked.data, caller, result)

    def _held(self, event_id: str) -> SyncEventRow | None:
        with self._db.sessions() as session:
            return session.get(SyncEventRow, event_id)

    # -- effects ------------------------------------------------------------------------------

    def _consent(
        self, session: Session, checked: _Checked, caller: DealerCaller, now: datetime
    ) -> None:
        data: ConsentData = checked.data
        if not _dealer_may_record_consent(session, caller.dealer_id, data.vin):
            # Unknown and another dealer's car are refused alike (nothing disclosed).
            raise EventRefused(
                checked.event.id,
                SyncCode.VEHICLE_UNKNOWN,
                f"no vehicle {data.vin} assigned to or activated by {caller.dealer_id}",
            )
        for answer in data.records:
            if answer.supersedes_id is not None:
                earlier = session.get(ConsentRecordRow, answer.supersedes_id)
                if (
                    earlier is None
                    or earlier.vin != data.vin
                    or earlier.subject_sha256 != data.subject_sha256
                ):
                    raise EventRefused(
                        checked.event.id,
                        SyncCode.CONSENT_SUPERSEDES_UNKNOWN,
                        f"consent record {answer.supersedes_id} is not one of this car and"
                        " customer",
                    )
            if session.get(ConsentRecordRow, answer.record_id) is not None:
                raise EventRefused(
                    checked.event.id,
                    SyncCode.CONSENT_RECORD_REUSED,
                    f"consent record {answer.record_id} is already held",
                )
            supersedes = answer.supersedes_id or session.scalar(
                select(ConsentRecordRow.record_id)
                .where(
                    ConsentRecordRow.vin == data.vin,
                    ConsentRecordRow.subject_sha256 == data.subject_sha256,
                    ConsentRecordRow.category == answer.category,
                )
                .order_by(ConsentRecordRow.captured_at.desc(), ConsentRecordRow.received_at.desc())
                .limit(1)
            )
            session.add(
                ConsentRecordRow(
                    record_id=answer.record_id,
                    event_id=checked.event.id,
                    dealer_id=caller.dealer_id,
                    vin=data.vin,
                    subject_sha256=data.subject_sha256,
                    category=answer.category,
                    choice="granted" if answer.granted else "denied",
                    notice_id=data.notice_id,
                    notice_version=data.notice_version,
                    mechanism=data.mechanism,
                    region=data.region,
                    method=data.method,
                    supersedes_id=supersedes,
                    captured_at=data.captured_at,
                    received_at=now,
                )
            )
            session.flush()
            session.add_all(
                ConsentPropagationRow(
                    record_id=answer.record_id, system=system, status=status, updated_at=now
                )
                for system, status in PROPAGATION_START.items()
            )

    def _completed(
        self, session: Session, checked: _Checked, caller: DealerCaller, now: datetime
    ) -> None:
        data: CompletedData = checked.data
        event_id = checked.event.id
        car = session.scalars(
            select(VehicleRow).where(VehicleRow.vin == data.vin).with_for_update()
        ).one_or_none()
        if car is None:
            raise EventRefused(event_id, SyncCode.VEHICLE_UNKNOWN, f"no vehicle {data.vin}")
        if data.authorisation_id:
            issued_counter = self._close_activation(session, event_id, data, caller.dealer_id)
            change_ref = data.authorisation_id
        elif data.offline_package_id:
            package = session.get(OfflinePackageRow, data.offline_package_id)
            if package is None or package.dealer_id != caller.dealer_id or package.vin != data.vin:
                raise EventRefused(
                    event_id,
                    SyncCode.OFFLINE_PACKAGE_UNKNOWN,
                    f"no offline package {data.offline_package_id} of this dealer for {data.vin}",
                )
            change_ref = data.offline_package_id
            # An offline package is signed with the car's counter + 1 at issue, and the car's
            # counter never falls: no package of this car can carry more than this.
            issued_counter = car.activation_counter + 1
        else:
            raise EventRefused(
                event_id, SyncCode.EVENT_INVALID, "neither authorisation_id nor offline_package_id"
            )
        if car.state == LifecycleState.AT_DEALER.value:
            car.state = LifecycleState.ACTIVATED.value
        if data.activation_counter is not None:
            # The edge's figure is unsigned: it may confirm, never exceed, what the cloud issued.
            reported = min(data.activation_counter, issued_counter)
            car.activation_counter = max(car.activation_counter, reported)
        for ecu in data.software:
            session.add(
                SoftwareHistoryRow(
                    vin=data.vin,
                    event_id=event_id,
                    ecu_serial=ecu.serial,
                    ecu_address=ecu.address,
                    dealer_id=caller.dealer_id,
                    change_ref=change_ref,
                    offline=data.offline,
                    before=ecu.before.model_dump(),
                    after=ecu.after.model_dump(),
                    changed_at=checked.event.time,
                )
            )
        pending_for_car = select(ConsentRecordRow.record_id).where(ConsentRecordRow.vin == data.vin)
        session.execute(
            update(ConsentPropagationRow)
            .where(
                ConsentPropagationRow.system == "car",
                ConsentPropagationRow.status == "pending",
                ConsentPropagationRow.record_id.in_(pending_for_car),
            )
            .values(status="complete", updated_at=now)
            .execution_options(synchronize_session=False)
        )
        _log.info(
            "vehicle_activation_recorded",
            vin=data.vin,
            dealer_id=caller.dealer_id,
            offline=data.offline,
            state=car.state,
            ecus=len(data.software),
        )

    @staticmethod
    def _close_activation(
        session: Session, event_id: str, data: CompletedData, dealer_id: str
    ) -> int:
        """The report rule of ``ActivationService.report``: issued → applied, car released.

        Returns the activation counter the cloud signed into that activation's bundle."""
        row = session.get(ActivationRow, data.authorisation_id, with_for_update=True)
        if row is None or row.dealer_id != dealer_id or row.vin != data.vin:
            raise EventRefused(
                event_id,
                SyncCode.ACTIVATION_UNKNOWN,
                f"no activation {data.authorisation_id} of this dealer for {data.vin}",
            )
        if row.status == "issued":
            row.status, row.open_vin = "applied", None
        elif row.status != "applied":
            raise EventRefused(
                event_id,
                SyncCode.ACTIVATION_UNKNOWN,
                f"activation {data.authorisation_id} is {row.status}, not issued",
            )
        return row.activation_counter or 0

    @staticmethod
    def _offline_use(
        session: Session, checked: _Checked, caller: DealerCaller, now: datetime
    ) -> None:
        data: OfflineUseData = checked.data
        package = session.get(OfflinePackageRow, data.package_id)
        if package is not None and package.vin != data.vin:
            raise EventRefused(
                checked.event.id,
                SyncCode.OFFLINE_PACKAGE_UNKNOWN,
                f"offline package {data.package_id} is not for {data.vin}",
            )
        record_use_in(
            session,
            caller.dealer_id,
            data.package_id,
            UseReport(data.workflow_id, data.used_at, data.operator_id),
        )

    def _report_double_use(
        self, data: OfflineUseData, caller: DealerCaller, result: BatchResult
    ) -> None:
        with self._db.sessions() as session:
            row = session.get(OfflinePackageRow, data.package_id)
            if row is not None and row.dealer_id == caller.dealer_id and row.use_count > 1:
                result.double_uses.append(DoubleUseSeen(row.package_id, row.vin, row.use_count))


def software_history(session: Session, vin: str) -> list[dict[str, Any]]:
    """The car's R156 record: every ECU's software before and after each change, oldest first."""
    rows = session.scalars(
        select(SoftwareHistoryRow)
        .where(SoftwareHistoryRow.vin == vin)
        .order_by(SoftwareHistoryRow.id)
    )
    return [
        {
            "ecu_serial": r.ecu_serial,
            "ecu_address": r.ecu_address,
            "dealer_id": r.dealer_id,
            "change_ref": r.change_ref,
            "offline": r.offline,
            "changed_at": r.changed_at.isoformat(),
            "before": EcuSoftware.model_validate(r.before).model_dump(),
            "after": EcuSoftware.model_validate(r.after).model_dump(),
        }
        for r in rows
    ]


def consent_records(session: Session, vin: str) -> list[dict[str, Any]]:
    """The car's consent rows, oldest first, with their propagation per downstream system."""
    rows = session.scalars(
        select(ConsentRecordRow)
        .where(ConsentRecordRow.vin == vin)
        .order_by(ConsentRecordRow.captured_at, ConsentRecordRow.received_at)
    ).all()
    ids = [r.record_id for r in rows]
    propagation: dict[str, dict[str, str]] = {}
    for p in session.scalars(
        select(ConsentPropagationRow).where(ConsentPropagationRow.record_id.in_(ids))
    ):
        propagation.setdefault(p.record_id, {})[p.system] = p.status
    return [
        {
            "record_id": r.record_id,
            "dealer_id": r.dealer_id,
            "subject_sha256": r.subject_sha256,
            "category": r.category,
            "choice": r.choice,
            "notice_id": r.notice_id,
            "notice_version": r.notice_version,
            "mechanism": r.mechanism,
            "region": r.region,
            "method": r.method,
            "supersedes_id": r.supersedes_id,
            "captured_at": r.captured_at.isoformat(),
            "propagation": propagation.get(r.record_id, {}),
        }
        for r in rows
    ]


def events_held(session: Session, dealer_id: str) -> int:
    return int(
        session.scalar(
            select(func.count())
            .select_from(SyncEventRow)
            .where(SyncEventRow.dealer_id == dealer_id)
        )
        or 0
    )


def _sync_code(problem: CloudProblem) -> SyncCode:
    try:
        return SyncCode(problem.code.value)
    except ValueError:
        return SyncCode.EVENT_INVALID


def _short(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg', '')}" for e in exc.errors()
    )[:500]


def _dealer_may_record_consent(session: Session, dealer_id: str, vin: str) -> bool:
    """A dealer records consent for a car assigned to it, or one it activated."""
    assigned = session.scalar(
        select(VehicleRow.vin).where(VehicleRow.vin == vin, VehicleRow.dealer_id == dealer_id)
    )
    if assigned is not None:
        return True
    activated = session.scalar(
        select(ActivationRow.request_id)
        .where(
            ActivationRow.vin == vin,
            ActivationRow.dealer_id == dealer_id,
            ActivationRow.status == "applied",
        )
        .limit(1)
    )
    return activated is not None
