"""Read one car's dossier facts from the registry: one statement per section, never one per row.

Nine statements whatever the car's history: the car with its dealer, its ECUs, entitlements,
activations, offline packages, the synced events (workflow steps and completions, each joined to
its edge's registered log and that log's anchored size), the R156 software history, the
consent records joined to their propagation, and the lifecycle changes after the dealer with the
cloud log's anchored size. Key and bundle bytes are turned into SHA-256 here,
so :class:`~forecourt.cloud.dossier.document.DossierFacts` never holds them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import and_, select
from sqlalchemy.orm import Session

from forecourt.cloud.db import Database
from forecourt.cloud.dossier.document import (
    ActivationFacts,
    CompletionFacts,
    ConsentFacts,
    DossierFacts,
    EcuFacts,
    EntitlementFacts,
    LedgerRef,
    LifecycleEventFacts,
    OfflinePackageFacts,
    OfflineUseFacts,
    SoftwareChangeFacts,
    StepFacts,
    VehicleFacts,
)
from forecourt.cloud.lifecycle.history import lifecycle_entries
from forecourt.cloud.problems import CloudProblem, ProblemCode
from forecourt.cloud.sync.events import ACTIVATION_COMPLETED, WORKFLOW_STEP
from forecourt.core import Vin, VinError
from forecourt.store.ledger import LedgerPeerLog
from forecourt.store.registry import (
    ActivationRow,
    ConsentPropagationRow,
    ConsentRecordRow,
    DealerRow,
    EcuRow,
    EdgeLogRow,
    EntitlementRow,
    OfflinePackageRow,
    SoftwareHistoryRow,
    SyncEventRow,
    VehicleRow,
)


def _sha256(data: bytes | None) -> str | None:
    return None if data is None else hashlib.sha256(data).hexdigest()


def vehicle_unknown(vin: str) -> CloudProblem:
    return CloudProblem(404, ProblemCode.VEHICLE_UNKNOWN, "Vehicle unknown", f"no vehicle {vin}")


def _vehicle(session: Session, vin: Vin) -> VehicleFacts:
    found = session.execute(
        select(VehicleRow, DealerRow)
        .outerjoin(DealerRow, DealerRow.dealer_id == VehicleRow.dealer_id)
        .where(VehicleRow.vin == vin.value)
    ).one_or_none()
    if found is None:
        raise vehicle_unknown(vin.value)
    row, dealer = found
    return VehicleFacts(
        vin=row.vin,
        check_digit_valid=vin.check_digit_valid,
        model=row.model,
        model_year=row.model_year,
        plant=row.plant,
        build_date=row.build_date,
        market=row.market,
        option_codes=tuple(sorted(row.option_codes)),
        state=row.state,
        dealer_id=row.dealer_id,
        dealer_name=dealer.name if dealer else None,
        dealer_city=dealer.city if dealer else None,
        dealer_country=dealer.country if dealer else None,
        owner_ref=row.owner_ref,
        activation_counter=row.activation_counter,
        offline_counter=row.offline_counter,
        factory_digest=row.feed_digest,
    )


def _ecus(session: Session, vin: str) -> list[EcuFacts]:
    rows = session.scalars(select(EcuRow).where(EcuRow.vin == vin).order_by(EcuRow.logical_address))
    return [
        EcuFacts(
            role=e.role,
            logical_address=e.logical_address,
            serial=e.serial,
            hardware_number=e.hardware_number,
            software_version=e.software_version,
            signing_key_sha256=hashlib.sha256(e.signing_public_key).hexdigest(),
            sealing_key_sha256=hashlib.sha256(e.sealing_public_key).hexdigest(),
        )
        for e in rows
    ]


def _entitlements(session: Session, vin: str) -> list[EntitlementFacts]:
    rows = session.scalars(
        select(EntitlementRow)
        .where(EntitlementRow.vin == vin)
        .order_by(EntitlementRow.valid_from, EntitlementRow.id)
    )
    return [
        EntitlementFacts(
            feature_code=e.feature_code,
            source=e.source,
            issuer=e.issuer,
            state=e.state,
            valid_from=e.valid_from,
            valid_until=e.valid_until,
            updated_at=e.updated_at,
        )
        for e in rows
    ]


def _activations(session: Session, vin: str) -> list[ActivationFacts]:
    rows = session.scalars(
        select(ActivationRow)
        .where(ActivationRow.vin == vin)
        .order_by(ActivationRow.created_at, ActivationRow.request_id)
    )
    facts = []
    for a in rows:
        outcome: Mapping[str, Any] = a.outcome or {}
        facts.append(
            ActivationFacts(
                request_id=a.request_id,
                dealer_id=a.dealer_id,
                operator_id=a.operator_id,
                status=a.status,
                activation_counter=a.activation_counter,
                created_at=a.created_at,
                expires_at=a.expires_at,
                features=tuple(str(f) for f in outcome.get("features", ())),
                refusal_codes=tuple(
                    sorted({str(r.get("code")) for r in outcome.get("reasons", ())})
                ),
                bundle_sha256=_sha256(a.bundle),
                ledger_index=a.ledger_index,
            )
        )
    return facts


def _offline_packages(session: Session, vin: str) -> list[OfflinePackageFacts]:
    rows = session.scalars(
        select(OfflinePackageRow)
        .where(OfflinePackageRow.vin == vin)
        .order_by(OfflinePackageRow.issued_at, OfflinePackageRow.package_id)
    )
    return [
        OfflinePackageFacts(
            package_id=p.package_id,
            dealer_id=p.dealer_id,
            counter=p.counter,
            issued_at=p.issued_at,
            not_after=p.not_after,
            used_at=p.used_at,
            use_count=p.use_count,
            uses=tuple(
                OfflineUseFacts(
                    str(u["use_id"]), datetime.fromisoformat(u["used_at"]), str(u["operator_id"])
                )
                for u in p.uses
            ),
            bundle_sha256=hashlib.sha256(p.bundle).hexdigest(),
        )
        for p in rows
    ]


def _synced(
    session: Session, vin: str
) -> tuple[list[StepFacts], list[CompletionFacts], dict[str, int | None]]:
    """Workflow steps and completions the car's edges synced, with their ledger references."""
    found = session.execute(
        select(SyncEventRow, EdgeLogRow.origin, LedgerPeerLog.size)
        .outerjoin(
            EdgeLogRow,
            and_(
                EdgeLogRow.dealer_id == SyncEventRow.dealer_id, EdgeLogRow.edge == SyncEventRow.edge
            ),
        )
        .outerjoin(LedgerPeerLog, LedgerPeerLog.origin == EdgeLogRow.origin)
        .where(
            SyncEventRow.subject == vin,
            SyncEventRow.event_type.in_((WORKFLOW_STEP, ACTIVATION_COMPLETED)),
        )
        .order_by(SyncEventRow.occurred_at, SyncEventRow.event_id)
    ).all()
    steps: list[StepFacts] = []
    completions: list[CompletionFacts] = []
    origins: dict[str, int | None] = {}
    for event, origin, size in found:
        data: Mapping[str, Any] = event.data
        if origin is not None:
            origins[origin] = size
        if event.event_type == WORKFLOW_STEP:
            index = data.get("ledger_index")
            steps.append(
                StepFacts(
                    event_id=event.event_id,
                    dealer_id=event.dealer_id,
                    edge=event.edge,
                    occurred_at=event.occurred_at,
                    workflow_id=str(data.get("workflow_id", "")),
                    seq=int(data.get("seq", 0)),
                    from_state=None if data.get("from") is None else str(data["from"]),
                    to_state=str(data.get("to", "")),
                    status=str(data.get("status", "")),
                    offline=bool(data.get("offline", False)),
                    evidence_sha256=str(data.get("evidence_sha256", "")),
                    ledger=None if index is None else LedgerRef(origin, int(index), size),
                )
            )
        else:
            completions.append(
                CompletionFacts(
                    event_id=event.event_id,
                    dealer_id=event.dealer_id,
                    occurred_at=event.occurred_at,
                    workflow_id=str(data.get("workflow_id", "")),
                    authorisation_id=data.get("authorisation_id"),
                    offline_package_id=data.get("offline_package_id"),
                    bundle_sha256=str(data.get("bundle_sha256", "")),
                    features=tuple(str(f) for f in data.get("features", ())),
                )
            )
    return steps, completions, origins


def _software_history(session: Session, vin: str) -> list[SoftwareChangeFacts]:
    rows = session.scalars(
        select(SoftwareHistoryRow)
        .where(SoftwareHistoryRow.vin == vin)
        .order_by(SoftwareHistoryRow.changed_at, SoftwareHistoryRow.id)
    )
    return [
        SoftwareChangeFacts(
            event_id=s.event_id,
            ecu_serial=s.ecu_serial,
            ecu_address=s.ecu_address,
            dealer_id=s.dealer_id,
            change_ref=s.change_ref,
            offline=s.offline,
            before=s.before,
            after=s.after,
            changed_at=s.changed_at,
        )
        for s in rows
    ]


def _consent_records(session: Session, vin: str) -> list[ConsentFacts]:
    found = session.execute(
        select(ConsentRecordRow, ConsentPropagationRow.system, ConsentPropagationRow.status)
        .outerjoin(
            ConsentPropagationRow, ConsentPropagationRow.record_id == ConsentRecordRow.record_id
        )
        .where(ConsentRecordRow.vin == vin)
        .order_by(
            ConsentRecordRow.captured_at, ConsentRecordRow.received_at, ConsentRecordRow.record_id
        )
    ).all()
    records: dict[str, ConsentRecordRow] = {}
    propagation: dict[str, dict[str, str]] = {}
    for record, system, status in found:
        records.setdefault(record.record_id, record)
        if system is not None:
            propagation.setdefault(record.record_id, {})[system] = status
    return [
        ConsentFacts(
            record_id=c.record_id,
            dealer_id=c.dealer_id,
            subject_sha256=c.subject_sha256,
            category=c.category,
            choice=c.choice,
            notice_id=c.notice_id,
            notice_version=c.notice_version,
            mechanism=c.mechanism,
            region=c.region,
            method=c.method,
            supersedes_id=c.supersedes_id,
            captured_at=c.captured_at,
            propagation=propagation.get(c.record_id, {}),
        )
        for c in records.values()
    ]


def _lifecycle_events(session: Session, vin: str) -> list[LifecycleEventFacts]:
    entries, anchored = lifecycle_entries(session, vin)
    return [
        LifecycleEventFacts(
            at=e.at,
            event=e.event,
            from_state=e.from_state,
            to_state=e.to_state,
            dealer_id=e.dealer_id,
            ended_entitlements=e.ended_entitlements,
            ledger=tuple(LedgerRef(e.origin, i, anchored) for i in e.indices),
        )
        for e in entries
    ]


def parse_vin(text: str) -> Vin:
    """``text`` as a VIN (the core parser: length and alphabet), or a 422 problem naming the
    position at fault. The check digit is reported in the dossier, not enforced: the factory
    feed accepts VINs whose check digit is optional, and their dossier must still be readable."""
    try:
        return Vin.parse(text, verify_check_digit=False)
    except VinError as exc:
        raise CloudProblem(
            422, ProblemCode.VALIDATION_FAILED, "VIN invalid", str(exc), position=exc.position
        ) from exc


def load_facts(session: Session, vin: Vin) -> DossierFacts:
    """Everything the registry holds about ``vin`` (``vehicle_unknown`` if it holds nothing),
    in ``session``'s transaction, one statement per section."""
    car = _vehicle(session, vin)
    steps, completions, origins = _synced(session, car.vin)
    return DossierFacts(
        vehicle=car,
        ecus=_ecus(session, car.vin),
        entitlements=_entitlements(session, car.vin),
        activations=_activations(session, car.vin),
        offline_packages=_offline_packages(session, car.vin),
        completions=completions,
        software_history=_software_history(session, car.vin),
        consent_records=_consent_records(session, car.vin),
        workflow_steps=steps,
        lifecycle_events=_lifecycle_events(session, car.vin),
        ledger_origins=origins,
    )


def read_facts(db: Database, vin: Vin) -> DossierFacts:
    """:func:`load_facts` in one read transaction; on PostgreSQL at REPEATABLE READ, so the
    sections agree with each other even while an edge syncs the car's events meanwhile."""
    with db.sessions() as session:
        if db.is_postgresql:
            session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
        return load_facts(session, vin)
