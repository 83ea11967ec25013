"""Features, package versions and entitlements in the registry, read back as core values.

Entitlement changes follow the Keygen-like states of :class:`EntitlementState`: an active right
can be suspended, resumed, renewed (its end moved later) or revoked; a revoked one is final. A
purchase made at the dealer is stored active at once, keyed by the dealer and its purchase
reference, so a retried purchase finds the first one instead of granting twice; a VIN has one
trial of a feature, ever.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from forecourt.cloud.integrations.outbox import EventType, enqueue_event, entitlement_changed
from forecourt.cloud.problems import CloudProblem, ProblemCode
from forecourt.core import (
    Catalog,
    Entitlement,
    EntitlementSource,
    EntitlementState,
    Feature,
    LicenceKind,
    SoftwarePackage,
    Vin,
    from_dict,
    to_dict,
)
from forecourt.store.registry import EntitlementRow, FeatureRow, PackageRow


def put_feature(session: Session, feature: Feature) -> None:
    session.merge(FeatureRow(code=feature.code, document=to_dict(feature)))


def put_package(session: Session, package: SoftwarePackage) -> None:
    session.merge(
        PackageRow(
            name=package.name,
            version=str(package.version),
            sha256=package.sha256,
            document=to_dict(package),
        )
    )


def load_catalog(session: Session) -> Catalog:
    features = tuple(
        from_dict(Feature, r.document)
        for r in session.scalars(select(FeatureRow).order_by(FeatureRow.code))
    )
    packages = tuple(
        from_dict(SoftwarePackage, r.document)
        for r in session.scalars(select(PackageRow).order_by(PackageRow.name, PackageRow.version))
    )
    return Catalog(features, packages)


class CatalogCache:
    """The decoded catalog, shared by requests: decoding every feature and package per request
    dominated an authorisation. Writes through this process invalidate it at once; writes by
    another replica are seen after ``ttl_s`` at most (the catalog changes by publication, rarely).
    """

    def __init__(self, ttl_s: float = 5.0) -> None:
        self._ttl_s = ttl_s
        self._lock = threading.Lock()
        self._catalog: Catalog | None = None
        self._loaded_at = 0.0

    def get(self, session: Session) -> Catalog:
        with self._lock:
            fresh = time.monotonic() - self._loaded_at < self._ttl_s
            if self._catalog is not None and fresh:
                return self._catalog
        catalog = load_catalog(session)
        with self._lock:
            self._catalog, self._loaded_at = catalog, time.monotonic()
        return catalog

    def invalidate(self) -> None:
        with self._lock:
            self._catalog = None


def entitlement_from_row(row: EntitlementRow) -> Entitlement:
    return Entitlement(
        Vin.parse(row.vin, verify_check_digit=False),
        row.feature_code,
        EntitlementSource(row.source),
        row.valid_from,
        row.valid_until,
        EntitlementState(row.state),
    )


def entitlements_of(session: Session, vin: str) -> list[tuple[int, Entitlement]]:
    rows = session.scalars(
        select(EntitlementRow).where(EntitlementRow.vin == vin).order_by(EntitlementRow.id)
    )
    return [(r.id, entitlement_from_row(r)) for r in rows]


OEM_ISSUER = "oem"
"""The issuer of entitlements the OEM grants itself (feeds, the demo, staff)."""


def grant(
    session: Session,
    entitlement: Entitlement,
    reference: str,
    now: datetime,
    issuer: str = OEM_ISSUER,
) -> int:
    """Store ``entitlement`` under ``(issuer, reference)``; a repeated one returns the first id.

    References are per issuer: a dealer's reference never finds another dealer's entitlement."""
    existing = session.scalars(
        select(EntitlementRow).where(
            EntitlementRow.issuer == issuer, EntitlementRow.reference == reference
        )
    ).one_or_none()
    if existing is not None:
        return existing.id
    row = EntitlementRow(
        issuer=issuer,
        reference=reference,
        vin=str(entitlement.vin),
        feature_code=entitlement.feature_code,
        source=entitlement.source.value,
        valid_from=entitlement.valid_from,
        valid_until=entitlement.valid_until,
        state=entitlement.state.value,
        updated_at=now,
    )
    session.add(row)
    session.flush()
    _enqueue_change(session, EventType.ENTITLEMENT_GRANTED, row, now)
    return row.id


def _enqueue_change(session: Session, event_type: str, row: EntitlementRow, now: datetime) -> None:
    """Tell subscribed partners (CRM, digital key) in the transaction of the change."""
    enqueue_event(
        session,
        event_type,
        entitlement_changed(
            entitlement_id=row.id,
            vin=row.vin,
            feature_code=row.feature_code,
            source=row.source,
            issuer=row.issuer,
            valid_from=row.valid_from,
            valid_until=row.valid_until,
            state=row.state,
            at=now,
        ),
        at=now,
    )


@dataclass(frozen=True, slots=True)
class PurchaseOrder:
    """A purchase (or trial) a dealer records for one of its cars, by a confirmed manager."""

    vin: str
    feature_code: str
    reference: str
    dealer_id: str
    trial: bool = False


def purchase(session: Session, catalog: Catalog, order: PurchaseOrder, now: datetime) -> int:
    """A purchase (or trial) at the dealer: an active entitlement from ``now``, at once.

    A retried order (same dealer and reference) returns the first entitlement; a second trial of
    the same feature for the same VIN is refused (``trial_already_used``), whoever asks."""
    feature = catalog.feature(order.feature_code)
    if feature is None:
        raise CloudProblem(
            404, ProblemCode.FEATURE_UNKNOWN, "Feature unknown", f"no feature {order.feature_code}"
        )
    existing = session.scalars(
        select(EntitlementRow.id).where(
            EntitlementRow.issuer == order.dealer_id, EntitlementRow.reference == order.reference
        )
    ).one_or_none()
    if existing is not None:
        return existing
    if order.trial and _trial_used(session, order.vin, feature.code):
        raise _trial_used_problem(order)
    licence = feature.licence
    source = EntitlementSource.TRIAL if order.trial else EntitlementSource.PURCHASE
    days = licence.duration_days or 30
    until = (
        None
        if licence.kind is LicenceKind.PERPETUAL and not order.trial
        else (now + timedelta(days=days or 30))
    )
    entitlement = Entitlement(
        Vin.parse(order.vin, verify_check_digit=False), feature.code, source, now, until
    )
    try:
        with session.begin_nested():
            return grant(session, entitlement, order.reference, now, issuer=order.dealer_id)
    except IntegrityError as exc:  # a concurrent trial of the same VIN and feature won
        raise _trial_used_problem(order) from exc


def _trial_used(session: Session, vin: str, feature_code: str) -> bool:
    found = session.scalars(
        select(EntitlementRow.id).where(
            EntitlementRow.vin == vin,
            EntitlementRow.feature_code == feature_code,
            EntitlementRow.source == EntitlementSource.TRIAL.value,
        )
    ).first()
    return found is not None


def _trial_used_problem(order: PurchaseOrder) -> CloudProblem:
    return CloudProblem(
        409,
        ProblemCode.TRIAL_ALREADY_USED,
        "Trial already used",
        f"{order.vin} already had a trial of {order.feature_code}",
    )


_ALLOWED: dict[str, dict[EntitlementState, frozenset[EntitlementState]]] = {
    "suspend": {EntitlementState.ACTIVE: frozenset({EntitlementState.SUSPENDED})},
    "resume": {EntitlementState.SUSPENDED: frozenset({EntitlementState.ACTIVE})},
    "revoke": {
        EntitlementState.ACTIVE: frozenset({EntitlementState.REVOKED}),
        EntitlementState.SUSPENDED: frozenset({EntitlementState.REVOKED}),
        EntitlementState.EXPIRED: frozenset({EntitlementState.REVOKED}),
    },
}
_TARGET = {
    "suspend": EntitlementState.SUSPENDED,
    "resume": EntitlementState.ACTIVE,
    "revoke": EntitlementState.REVOKED,
}


def change_state(session: Session, entitlement_id: int, action: str, now: datetime) -> Entitlement:
    """Suspend, resume or revoke; any other edge is ``entitlement_transition_not_allowed``."""
    row = _row(session, entitlement_id)
    current = EntitlementState(row.state)
    target = _TARGET[action]
    if target not in _ALLOWED[action].get(current, frozenset()):
        raise CloudProblem(
            409,
            ProblemCode.ENTITLEMENT_TRANSITION,
            "Entitlement change not allowed",
            f"cannot {action} an entitlement that is {current.value}",
        )
    row.state, row.updated_at = target.value, now
    if target is EntitlementState.REVOKED:
        _enqueue_change(session, EventType.ENTITLEMENT_REVOKED, row, now)
    return entitlement_from_row(row)


def renew(session: Session, entitlement_id: int, days: int, now: datetime) -> Entitlement:
    """Move a subscription's end ``days`` later (from now if it already ended)."""
    row = _row(session, entitlement_id)
    if row.state == EntitlementState.REVOKED.value or row.valid_until is None:
        raise CloudProblem(
            409,
            ProblemCode.ENTITLEMENT_TRANSITION,
            "Entitlement cannot be renewed",
            "revoked or perpetual entitlements are not renewed",
        )
    start = max(row.valid_until, now)
    row.valid_until = start + timedelta(days=days)
    if row.state == EntitlementState.EXPIRED.value:
        row.state = EntitlementState.ACTIVE.value
    row.updated_at = now
    return entitlement_from_row(row)


def _row(session: Session, entitlement_id: int) -> EntitlementRow:
    row = session.get(EntitlementRow, entitlement_id)
    if row is None:
        raise CloudProblem(
            404,
            ProblemCode.ENTITLEMENT_UNKNOWN,
            "Entitlement unknown",
            f"no entitlement {entitlement_id}",
        )
    return row
