"""The vehicle dossier ("one car, one file") built from plain data, with no I/O.

:func:`build_dossier` turns what the registry holds about one car (:class:`DossierFacts`, read by
:mod:`forecourt.cloud.dossier.queries`) into one JSON document, so the HTTP route and the
offline command give the very same file and the rules are testable without a database.

What never enters the document: key material (an ECU's public keys appear only as SHA-256
fingerprints) and bundle bytes (an activation or offline package appears with the SHA-256 of its
bundle, which is what a third party compares against the edge's evidence). The facts carry
digests already: bundle and key bytes stay in the query layer.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from typing import Any, Final

DOSSIER_VERSION: Final = 1
"""Bumped on any change a reader of an older dossier could misread (fields renamed, meaning
changed); added fields keep the version."""


@dataclass(frozen=True, slots=True)
class VehicleFacts:
    """The car's registry row and its dealer's name and place (when assigned)."""

    vin: str
    check_digit_valid: bool
    model: str
    model_year: int
    plant: str
    build_date: date
    market: str
    option_codes: tuple[str, ...]
    state: str
    dealer_id: str | None
    dealer_name: str | None
    dealer_city: str | None
    dealer_country: str | None
    owner_ref: str | None
    activation_counter: int
    offline_counter: int
    factory_digest: str


@dataclass(frozen=True, slots=True)
class EcuFacts:
    role: str
    logical_address: int
    serial: str
    hardware_number: str
    software_version: str
    signing_key_sha256: str
    sealing_key_sha256: str


@dataclass(frozen=True, slots=True)
class EntitlementFacts:
    feature_code: str
    source: str
    issuer: str
    state: str
    valid_from: datetime
    valid_until: datetime | None
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class ActivationFacts:
    request_id: str
    dealer_id: str
    operator_id: str
    status: str
    activation_counter: int | None
    created_at: datetime
    expires_at: datetime
    features: tuple[str, ...]
    refusal_codes: tuple[str, ...]
    bundle_sha256: str | None
    ledger_index: int | None = None
    """The cloud log's record of an applied activation; ``None`` until the follower logs it."""


@dataclass(frozen=True, slots=True)
class OfflineUseFacts:
    use_id: str
    used_at: datetime
    operator_id: str


@dataclass(frozen=True, slots=True)
class OfflinePackageFacts:
    package_id: str
    dealer_id: str
    counter: int
    issued_at: datetime
    not_after: datetime
    used_at: datetime | None
    use_count: int
    uses: tuple[OfflineUseFacts, ...]
    bundle_sha256: str


@dataclass(frozen=True, slots=True)
class LedgerRef:
    """Where an edge put the evidence: its log's origin and the entry's index.

    ``anchored_size`` is the size of that log's latest checkpoint held in the cloud's log of logs
    (``None`` when the edge never anchored one, or its log is not registered): an entry below it
    is provable to a third party with ``/v1/ledger`` proofs."""

    origin: str | None
    index: int
    anchored_size: int | None

    def to_json(self) -> dict[str, Any]:
        return {
            "origin": self.origin,
            "index": self.index,
            "anchored": self.anchored_size is not None and self.index < self.anchored_size,
        }


@dataclass(frozen=True, slots=True)
class StepFacts:
    """A workflow step an edge synced (``forecourt.edge.workflow.step.v1``)."""

    event_id: str
    dealer_id: str
    edge: str
    occurred_at: datetime
    workflow_id: str
    seq: int
    from_state: str | None
    to_state: str
    status: str
    offline: bool
    evidence_sha256: str
    ledger: LedgerRef | None


@dataclass(frozen=True, slots=True)
class CompletionFacts:
    """An activation an edge reported done (``forecourt.edge.activation.completed.v1``)."""

    event_id: str
    dealer_id: str
    occurred_at: datetime
    workflow_id: str
    authorisation_id: str | None
    offline_package_id: str | None
    bundle_sha256: str
    features: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class SoftwareChangeFacts:
    event_id: str
    ecu_serial: str
    ecu_address: str
    dealer_id: str
    change_ref: str
    offline: bool
    before: Mapping[str, Any]
    after: Mapping[str, Any]
    changed_at: datetime


@dataclass(frozen=True, slots=True)
class ConsentFacts:
    record_id: str
    dealer_id: str
    subject_sha256: str
    category: str
    choice: str
    notice_id: str
    notice_version: str
    mechanism: str
    region: str
    method: str
    supersedes_id: str | None
    captured_at: datetime
    propagation: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class LifecycleEventFacts:
    """A change after the factory recorded by the cloud (handover, service visit, change of
    owner, scrapping, ...) with the cloud log's entries about it; owners never appear here."""

    at: datetime
    event: str
    from_state: str
    to_state: str
    dealer_id: str | None
    ended_entitlements: tuple[int, ...]
    ledger: tuple[LedgerRef, ...]


@dataclass(frozen=True, slots=True)
class DossierFacts:
    """Everything the registry holds about one car, as plain values."""

    vehicle: VehicleFacts
    ecus: Sequence[EcuFacts] = ()
    entitlements: Sequence[EntitlementFacts] = ()
    activations: Sequence[ActivationFacts] = ()
    offline_packages: Sequence[OfflinePackageFacts] = ()
    completions: Sequence[CompletionFacts] = ()
    software_history: Sequence[SoftwareChangeFacts] = ()
    consent_records: Sequence[ConsentFacts] = ()
    workflow_steps: Sequence[StepFacts] = ()
    lifecycle_events: Sequence[LifecycleEventFacts] = ()
    ledger_origins: Mapping[str, int | None] = field(default_factory=dict)
    """Every edge log the steps point into, with its anchored size in the log of logs."""


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).isoformat()


def _start_of(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def entitlement_status(facts: EntitlementFacts, at: datetime) -> str:
    """What the entitlement means at ``at``: the stored state, unless time already decided it
    (``pending`` before its start, ``expired`` past its end)."""
    if facts.state != "active":
        return facts.state
    if at < facts.valid_from:
        return "pending"
    if facts.valid_until is not None and at >= facts.valid_until:
        return "expired"
    return "active"


def _factory(car: VehicleFacts) -> dict[str, Any]:
    return {
        "model": car.model,
        "model_year": car.model_year,
        "plant": car.plant,
        "build_date": car.build_date.isoformat(),
        "market": car.market,
        "option_codes": sorted(car.option_codes),
        "vin_check_digit_valid": car.check_digit_valid,
        "factory_record_sha256": car.factory_digest,
    }


def _lifecycle(car: VehicleFacts) -> dict[str, Any]:
    dealer = (
        None
        if car.dealer_id is None
        else {
            "dealer_id": car.dealer_id,
            "name": car.dealer_name,
            "city": car.dealer_city,
            "country": car.dealer_country,
        }
    )
    return {
        "state": car.state,
        "dealer": dealer,
        "owner_ref": car.owner_ref,
        "activation_counter": car.activation_counter,
        "offline_counter": car.offline_counter,
    }


def _ecu(ecu: EcuFacts) -> dict[str, Any]:
    return {
        "role": ecu.role,
        "logical_address": f"{ecu.logical_address:04X}",
        "serial": ecu.serial,
        "hardware_number": ecu.hardware_number,
        "software_version": ecu.software_version,
        "signing_key_sha256": ecu.signing_key_sha256,
        "sealing_key_sha256": ecu.sealing_key_sha256,
    }


def _entitlement(e: EntitlementFacts, at: datetime) -> dict[str, Any]:
    return {
        "feature": e.feature_code,
        "source": e.source,
        "issuer": e.issuer,
        "valid_from": _iso(e.valid_from),
        "valid_until": _iso(e.valid_until),
        "state": e.state,
        "status": entitlement_status(e, at),
    }


def _activation(a: ActivationFacts) -> dict[str, Any]:
    return {
        "request_id": a.request_id,
        "dealer_id": a.dealer_id,
        "operator_id": a.operator_id,
        "status": a.status,
        "activation_counter": a.activation_counter,
        "created_at": _iso(a.created_at),
        "expires_at": _iso(a.expires_at),
        "features": list(a.features),
        "refusal_codes": list(a.refusal_codes),
        "bundle_sha256": a.bundle_sha256,
        "ledger_index": a.ledger_index,
    }


def _offline(p: OfflinePackageFacts) -> dict[str, Any]:
    return {
        "package_id": p.package_id,
        "dealer_id": p.dealer_id,
        "counter": p.counter,
        "issued_at": _iso(p.issued_at),
        "not_after": _iso(p.not_after),
        "used_at": _iso(p.used_at),
        "use_count": p.use_count,
        "double_use": p.use_count > 1,
        "uses": [
            {"use_id": u.use_id, "used_at": _iso(u.used_at), "operator_id": u.operator_id}
            for u in p.uses
        ],
        "bundle_sha256": p.bundle_sha256,
    }


def _software(s: SoftwareChangeFacts) -> dict[str, Any]:
    return {
        "event_id": s.event_id,
        "ecu_serial": s.ecu_serial,
        "ecu_address": s.ecu_address,
        "dealer_id": s.dealer_id,
        "change_ref": s.change_ref,
        "offline": s.offline,
        "changed_at": _iso(s.changed_at),
        "before": dict(s.before),
        "after": dict(s.after),
    }


def _consent(c: ConsentFacts) -> dict[str, Any]:
    return {
        "record_id": c.record_id,
        "dealer_id": c.dealer_id,
        "subject_sha256": c.subject_sha256,
        "category": c.category,
        "choice": c.choice,
        "notice_id": c.notice_id,
        "notice_version": c.notice_version,
        "mechanism": c.mechanism,
        "region": c.region,
        "method": c.method,
        "supersedes_id": c.supersedes_id,
        "captured_at": _iso(c.captured_at),
        "propagation": dict(sorted(c.propagation.items())),
    }


def _step(s: StepFacts) -> dict[str, Any]:
    return {
        "event_id": s.event_id,
        "dealer_id": s.dealer_id,
        "edge": s.edge,
        "workflow_id": s.workflow_id,
        "seq": s.seq,
        "from": s.from_state,
        "to": s.to_state,
        "status": s.status,
        "offline": s.offline,
        "at": _iso(s.occurred_at),
        "evidence_sha256": s.evidence_sha256,
        "ledger": None if s.ledger is None else s.ledger.to_json(),
    }


def _completion(c: CompletionFacts) -> dict[str, Any]:
    return {
        "event_id": c.event_id,
        "dealer_id": c.dealer_id,
        "workflow_id": c.workflow_id,
        "authorisation_id": c.authorisation_id,
        "offline_package_id": c.offline_package_id,
        "bundle_sha256": c.bundle_sha256,
        "features": list(c.features),
        "at": _iso(c.occurred_at),
    }


def _lifecycle_event(e: LifecycleEventFacts) -> dict[str, Any]:
    return {
        "event": e.event,
        "from_state": e.from_state,
        "to_state": e.to_state,
        "dealer_id": e.dealer_id,
        "ended_entitlements": list(e.ended_entitlements),
        "ledger": [ref.to_json() for ref in e.ledger],
        "at": _iso(e.at),
    }


def _event(
    at: datetime, kind: str, summary: str, section: str, ref: str, **extra: Any
) -> dict[str, Any]:
    return {
        "at": _iso(at),
        "kind": kind,
        "summary": summary,
        "section": section,
        "ref": ref,
        **extra,
    }


def _timeline(facts: DossierFacts, at: datetime) -> list[dict[str, Any]]:
    """Every dated fact of the car, oldest first (ties keep the lifecycle's order)."""
    car = facts.vehicle
    events = [
        _event(
            _start_of(car.build_date),
            "built",
            f"built at {car.plant} ({car.model} {car.model_year}, {car.market})",
            "factory",
            car.vin,
        )
    ]
    events += [
        _event(
            e.valid_from,
            "entitlement",
            f"{e.feature_code} ({e.source}) from {e.issuer}: {entitlement_status(e, at)}",
            "entitlements",
            e.feature_code,
        )
        for e in facts.entitlements
    ]
    events += [
        _event(
            p.issued_at,
            "offline_package_issued",
            f"offline package {p.package_id} issued to {p.dealer_id} (counter {p.counter})",
            "offline_packages",
            p.package_id,
        )
        for p in facts.offline_packages
    ]
    events += [
        _event(
            u.used_at,
            "offline_package_used",
            f"offline package {p.package_id} used by {u.operator_id}"
            + (" (double use)" if p.use_count > 1 else ""),
            "offline_packages",
            p.package_id,
        )
        for p in facts.offline_packages
        for u in p.uses
    ]
    events += [
        _event(
            c.captured_at,
            "consent",
            f"consent {c.category}: {c.choice} (notice {c.notice_id} {c.notice_version})",
            "consent_records",
            c.record_id,
        )
        for c in facts.consent_records
    ]
    events += [
        _event(
            s.occurred_at,
            "workflow_step",
            f"workflow {s.workflow_id} step {s.seq}: {s.to_state} ({s.status})",
            "workflow_steps",
            s.event_id,
            ledger=None if s.ledger is None else s.ledger.to_json(),
        )
        for s in facts.workflow_steps
    ]
    events += [
        _event(
            a.created_at,
            "activation",
            f"activation {a.request_id} by {a.dealer_id}: {a.status}"
            + (f" ({', '.join(a.features)})" if a.features else ""),
            "activations",
            a.request_id,
        )
        for a in facts.activations
    ]
    events += [
        _event(
            c.occurred_at,
            "activation_completed",
            f"applied in the car at {c.dealer_id}"
            + (f" ({', '.join(c.features)})" if c.features else ""),
            "completions",
            c.authorisation_id or c.offline_package_id or c.event_id,
        )
        for c in facts.completions
    ]
    events += [
        _event(
            s.changed_at,
            "software_change",
            f"ECU {s.ecu_serial}: {s.before.get('software_version', '')} -> "
            f"{s.after.get('software_version', '')}",
            "software_history",
            s.change_ref,
        )
        for s in facts.software_history
    ]
    events += [
        _event(
            e.at,
            "lifecycle",
            f"{e.event}: {e.from_state} -> {e.to_state}"
            + (f" at {e.dealer_id}" if e.dealer_id else "")
            + (f", {len(e.ended_entitlements)} rights ended" if e.ended_entitlements else ""),
            "lifecycle_events",
            e.event,
            ledger=e.ledger[0].to_json() if e.ledger else None,
        )
        for e in facts.lifecycle_events
    ]
    # sorted() is stable: equal instants keep the order above (built, rights, ... changes).
    return sorted(events, key=lambda e: datetime.fromisoformat(str(e["at"])))


def build_dossier(facts: DossierFacts, generated_at: datetime) -> dict[str, Any]:
    """The car's dossier, schema version :data:`DOSSIER_VERSION`, as JSON-ready values.

    ``generated_at`` decides time-derived statuses (an entitlement past its end is
    ``expired``) and is stamped on the document, so one set of facts gives one document.
    """
    car = facts.vehicle
    return {
        "dossier_version": DOSSIER_VERSION,
        "vin": car.vin,
        "generated_at": _iso(generated_at),
        "factory": _factory(car),
        "ecus": [_ecu(e) for e in facts.ecus],
        "lifecycle": _lifecycle(car),
        "entitlements": [_entitlement(e, generated_at) for e in facts.entitlements],
        "activations": [_activation(a) for a in facts.activations],
        "completions": [_completion(c) for c in facts.completions],
        "offline_packages": [_offline(p) for p in facts.offline_packages],
        "software_history": [_software(s) for s in facts.software_history],
        "consent_records": [_consent(c) for c in facts.consent_records],
        "workflow_steps": [_step(s) for s in facts.workflow_steps],
        "lifecycle_events": [_lifecycle_event(e) for e in facts.lifecycle_events],
        "timeline": _timeline(facts, generated_at),
        "ledger": {
            "logs": [
                {"origin": origin, "anchored_size": size}
                for origin, size in sorted(facts.ledger_origins.items())
            ],
            "verify": "GET /v1/ledger/checkpoint and /v1/ledger/proof/inclusion; "
            "forecourt ledger verify checks proofs offline",
        },
    }
