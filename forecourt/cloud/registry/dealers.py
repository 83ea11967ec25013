"""Dealers, the operators each of their edges has registered, and their certificates.

The edge names the operator who asks and their role; the cloud never takes that claim as is: it
looks the operator up in the list *the calling edge* registered (scoped by the dealer and the
edge named in its client certificate) and checks the role recorded there. An operator unknown to
that edge, or holding a role without the permission, is refused.

Roles an edge may grant on its own word are technician-level (``technician``, ``auditor``). An
elevated role (``senior_technician``, ``service_manager``, ``dealer_admin``) pushed by an edge is
recorded as *claimed* and carries technician rights in the cloud until OEM staff confirm it
(:func:`confirm_role`). The dealer's own ``dealer_admin`` cannot confirm it: the cloud only ever
hears of a dealer admin through the same edge key, so such a confirmation would add nothing
against a stolen edge key. Every change is written to the audit (:mod:`forecourt.cloud.audit`).

Every change is also a :class:`~forecourt.ledger.entry.DealerEventRecord` leaf of the cloud's
Merkle log, appended in the transaction of the change (one append per transaction: an edge's
whole push is one batch), so a third party can prove it happened with the log's key alone. Who
acted (``edge:<serial>`` or ``staff:<subject>``) and the operator it concerned are in the leaf only
as salted commitments; the evidence hash is over ``{"event": kind, **audit detail}``, which names
no person. Each audit row names its leaf (``detail.ledger``: origin and index); a push that
changes nothing appends nothing.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cryptography import x509
from sqlalchemy import Connection, and_, exists, select
from sqlalchemy.orm import Session

from forecourt.cloud.audit import edge_actor, ledger_reference, record_change
from forecourt.cloud.problems import CloudProblem, ProblemCode
from forecourt.core import Dealer, Market
from forecourt.ledger.entry import DealerEventKind, DealerEventRecord, canonical_json
from forecourt.ledger.log import append_dealer_events_in
from forecourt.ledger.repository import MerkleLogStore
from forecourt.store.registry import DealerCertificateRow, DealerRow, EdgeOperatorRow

#: Roles (as the edge names them) allowed to start an activation; mirrors the edge's matrix.
ACTIVATING_ROLES = frozenset({"technician", "senior_technician", "service_manager", "dealer_admin"})
KNOWN_ROLES = ACTIVATING_ROLES | {"auditor"}
#: Roles that review others' requests or administer the dealer: OEM staff confirm them.
ELEVATED_ROLES = frozenset({"senior_technician", "service_manager", "dealer_admin"})
#: Roles that may record a purchase or a trial (confirmed roles only).
PURCHASING_ROLES = frozenset({"service_manager", "dealer_admin"})


@dataclass(frozen=True, slots=True)
class OperatorClaim:
    """Who the edge says is asking."""

    operator_id: str
    role: str


def dealer_from_row(row: DealerRow) -> Dealer:
    return Dealer(
        row.dealer_id,
        row.name,
        row.city,
        row.country,
        Market(row.market),
        row.latitude,
        row.longitude,
    )


def upsert_dealer(session: Session, dealer: Dealer) -> None:
    row = session.get(DealerRow, dealer.dealer_id)
    if row is None:
        row = DealerRow(dealer_id=dealer.dealer_id)
        session.add(row)
    row.name, row.city, row.country = dealer.name, dealer.city, dealer.country
    row.market, row.latitude, row.longitude = dealer.market.value, dealer.latitude, dealer.longitude


def get_dealer(session: Session, dealer_id: str) -> Dealer:
    row = session.get(DealerRow, dealer_id)
    if row is None:
        raise dealer_unknown(dealer_id)
    return dealer_from_row(row)


def dealer_unknown(dealer_id: str) -> CloudProblem:
    return CloudProblem(
        403,
        ProblemCode.DEALER_UNKNOWN,
        "Dealer unknown",
        f"dealer {dealer_id} is not registered",
    )


@dataclass(frozen=True, slots=True)
class RegistryLedger:
    """The cloud's Merkle log as the operator registry writes to it.

    ``store`` must be the log's own store (one per log: it caches subtree hashes), ``origin`` is
    what audit rows name beside a leaf's index so staff can find it again."""

    store: MerkleLogStore
    origin: str


@dataclass(frozen=True, slots=True)
class OperatorChanges:
    """What one edge's push changed (operator ids), and which elevated roles await confirmation.

    ``ledger_indices`` are the cloud log's leaves for the changes (none when nothing changed)."""

    added: tuple[str, ...]
    removed: tuple[str, ...]
    role_changed: tuple[str, ...]
    unconfirmed: tuple[str, ...]
    ledger_indices: tuple[int, ...] = ()

    def to_json(self) -> dict[str, object]:
        return {
            "added": list(self.added),
            "removed": list(self.removed),
            "role_changed": list(self.role_changed),
            "unconfirmed": list(self.unconfirmed),
            "ledger_indices": list(self.ledger_indices),
        }


@dataclass(frozen=True, slots=True)
class _Change:
    """One registry change about one operator, before it is ledgered and audited."""

    kind: DealerEventKind
    action: str
    operator_id: str
    role: str
    detail: Mapping[str, Any] = field(default_factory=dict)

    def record(self, dealer_id: str, edge: str, now: datetime) -> DealerEventRecord:
        evidence = canonical_json({"event": self.kind.value, **self.detail})
        return DealerEventRecord(
            timestamp=now,
            kind=self.kind,
            dealer_id=dealer_id,
            edge_id=edge,
            evidence_hash=hashlib.sha256(evidence).hexdigest(),
            role=self.role,
        )


def _ledger_and_audit(
    session: Session,
    ledger: RegistryLedger,
    changes: list[_Change],
    *,
    dealer_id: str,
    edge: str,
    actor: str,
    now: datetime,
) -> tuple[int, ...]:
    """Append every change as one batch, then audit each naming its leaf; all in ``session``.

    The registry rows are flushed first, so a change the database refuses fails before anything
    reaches the log; an audit row that fails afterwards rolls the leaves back with it."""
    if not changes:
        return ()
    session.flush()
    indices = append_dealer_events_in(
        ledger.store,
        session,
        [
            (c.record(dealer_id, edge, now), {"actor_id": actor, "subject_id": c.operator_id})
            for c in changes
        ],
    )
    for change, index in zip(changes, indices, strict=True):
        record_change(
            session,
            at=now,
            actor=actor,
            action=change.action,
            subject=change.operator_id,
            dealer_id=dealer_id,
            edge=edge,
            detail={**change.detail, "ledger": ledger_reference(ledger.origin, [index])},
        )
    return tuple(indices)


def _check_roles(listed: list[OperatorClaim]) -> None:
    seen: set[str] = set()
    for claim in listed:
        if claim.role not in KNOWN_ROLES:
            raise CloudProblem(
                422,
                ProblemCode.VALIDATION_FAILED,
                "Unknown role",
                f"operator {claim.operator_id}: role {claim.role!r} is not one of "
                + ", ".join(sorted(KNOWN_ROLES)),
            )
        if claim.operator_id in seen:
            raise CloudProblem(
                422,
                ProblemCode.VALIDATION_FAILED,
                "Operator listed twice",
                f"operator {claim.operator_id} is listed more than once",
            )
        seen.add(claim.operator_id)


def merge_edge_operators(
    session: Session,
    dealer_id: str,
    edge: str,
    *,
    certificate_serial: int,
    operators: Iterable[OperatorClaim],
    now: datetime,
    ledger: RegistryLedger,
) -> OperatorChanges:
    """Make ``edge``'s operator list exactly ``operators``; other edges' lists are untouched.

    Each addition (``operator-created``), removal (``operator-deactivated``) and role change is
    a leaf of ``ledger`` and an audit row under the edge's certificate serial, in the caller's
    transaction. A role change drops a confirmation that no longer matches; the confirmation of
    an unchanged role is kept."""
    listed = list(operators)
    _check_roles(listed)
    current = {
        row.operator_id: row
        for row in session.scalars(
            select(EdgeOperatorRow)
            .where(EdgeOperatorRow.dealer_id == dealer_id, EdgeOperatorRow.edge == edge)
            .with_for_update()
        )
    }
    wanted = {c.operator_id: c.role for c in listed}
    unconfirmed = tuple(
        sorted(
            operator_id
            for operator_id, role in wanted.items()
            if role in ELEVATED_ROLES
            and (current.get(operator_id) is None or current[operator_id].confirmed_role != role)
        )
    )
    changes: list[_Change] = []
    for operator_id, row in sorted(current.items()):
        if operator_id not in wanted:
            changes.append(
                _Change(
                    DealerEventKind.OPERATOR_DEACTIVATED,
                    "operator_removed",
                    operator_id,
                    row.role,
                    {"role": row.role},
                )
            )
            session.delete(row)
    for operator_id, role in sorted(wanted.items()):
        found = current.get(operator_id)
        if found is None:
            changes.append(
                _Change(
                    DealerEventKind.OPERATOR_CREATED,
                    "operator_added",
                    operator_id,
                    role,
                    {"role": role},
                )
            )
            session.add(
                EdgeOperatorRow(
                    dealer_id=dealer_id,
                    edge=edge,
                    operator_id=operator_id,
                    role=role,
                    confirmed_role=None,
                    confirmed_by=None,
                    updated_at=now,
                )
            )
        elif found.role != role:
            changes.append(
                _Change(
                    DealerEventKind.OPERATOR_ROLE_CHANGED,
                    "operator_role_changed",
                    operator_id,
                    role,
                    {"from": found.role, "to": role},
                )
            )
            found.role, found.updated_at = role, now
            if found.confirmed_role != role:
                found.confirmed_role, found.confirmed_by = None, None
    indices = _ledger_and_audit(
        session,
        ledger,
        changes,
        dealer_id=dealer_id,
        edge=edge,
        actor=edge_actor(certificate_serial),
        now=now,
    )
    session.flush()

    def ids(kind: DealerEventKind) -> tuple[str, ...]:
        return tuple(c.operator_id for c in changes if c.kind is kind)

    return OperatorChanges(
        added=ids(DealerEventKind.OPERATOR_CREATED),
        removed=ids(DealerEventKind.OPERATOR_DEACTIVATED),
        role_changed=ids(DealerEventKind.OPERATOR_ROLE_CHANGED),
        unconfirmed=unconfirmed,
        ledger_indices=indices,
    )


def confirm_role(
    session: Session,
    dealer_id: str,
    edge: str,
    operator_id: str,
    *,
    role: str,
    by: str,
    now: datetime,
    ledger: RegistryLedger,
) -> int:
    """OEM staff confirm the elevated ``role`` an edge claims for ``operator_id``; returns the
    confirmation's leaf index in ``ledger`` (``operator-role-confirmed``, ``by`` committed).

    The role confirmed must be the one currently claimed, so a confirmation can never grant
    more than the edge asked for; it lapses when the edge later claims another role."""
    row = session.get(EdgeOperatorRow, (dealer_id, edge, operator_id), with_for_update=True)
    if row is None:
        raise CloudProblem(
            404,
            ProblemCode.NOT_FOUND,
            "Operator unknown",
            f"edge {edge} of {dealer_id} has not registered operator {operator_id}",
        )
    if row.role != role:
        raise CloudProblem(
            409,
            ProblemCode.VALIDATION_FAILED,
            "Role not claimed",
            f"operator {operator_id} is registered as {row.role}, not {role}",
        )
    row.confirmed_role, row.confirmed_by = role, by
    confirmed = _Change(
        DealerEventKind.OPERATOR_ROLE_CONFIRMED,
        "operator_role_confirmed",
        operator_id,
        role,
        {"role": role},
    )
    [index] = _ledger_and_audit(
        session, ledger, [confirmed], dealer_id=dealer_id, edge=edge, actor=by, now=now
    )
    return index


def _operator_row(
    session: Session, dealer_id: str, edge: str, operator_id: str
) -> EdgeOperatorRow | None:
    return session.get(EdgeOperatorRow, (dealer_id, edge, operator_id))


def operator_problem(
    session: Session, dealer_id: str, edge: str, claim: OperatorClaim
) -> str | None:
    """Why the claimed operator may not activate through this edge, or ``None`` if they may.

    Returns ``"operator_unknown"`` or ``"operator_not_permitted"`` (the refusal codes)."""
    return _operator_verdict(_operator_row(session, dealer_id, edge, claim.operator_id), claim)


def purchase_problem(
    session: Session, dealer_id: str, edge: str, claim: OperatorClaim
) -> str | None:
    """Why the claimed operator may not record a purchase, or ``None``: the operator must be
    registered by this edge with a purchasing role that OEM staff confirmed."""
    row = _operator_row(session, dealer_id, edge, claim.operator_id)
    if row is None:
        return "operator_unknown"
    if row.role != claim.role or row.role not in PURCHASING_ROLES:
        return "operator_not_permitted"
    if row.confirmed_role != row.role:
        return "operator_role_unconfirmed"
    return None


def dealer_and_operator(
    session: Session, dealer_id: str, edge: str, claim: OperatorClaim
) -> tuple[Dealer, str | None]:
    """The dealer and :func:`operator_problem` for ``claim``, read in one query."""
    found = session.execute(
        select(DealerRow, EdgeOperatorRow)
        .outerjoin(
            EdgeOperatorRow,
            and_(
                EdgeOperatorRow.dealer_id == DealerRow.dealer_id,
                EdgeOperatorRow.edge == edge,
                EdgeOperatorRow.operator_id == claim.operator_id,
            ),
        )
        .where(DealerRow.dealer_id == dealer_id)
    ).one_or_none()
    if found is None:
        raise dealer_unknown(dealer_id)
    dealer, operator = found
    return dealer_from_row(dealer), _operator_verdict(operator, claim)


def _operator_verdict(row: EdgeOperatorRow | None, claim: OperatorClaim) -> str | None:
    """Activation needs technician rights, which every activating role carries whether or not
    an elevated role is confirmed; the claimed role must still be the registered one."""
    if row is None:
        return "operator_unknown"
    if row.role != claim.role or row.role not in ACTIVATING_ROLES:
        return "operator_not_permitted"
    return None


def record_certificate(session: Session, dealer_id: str, certificate: x509.Certificate) -> str:
    """Remember a certificate issued to ``dealer_id``; returns its serial in hex."""
    serial = format(certificate.serial_number, "x")
    session.merge(
        DealerCertificateRow(
            serial=serial,
            dealer_id=dealer_id,
            not_after=certificate.not_valid_after_utc,
            revoked_at=None,
            revocation_reason=None,
        )
    )
    return serial


def revoke_certificate(session: Session, serial: int, now: datetime, reason: str) -> bool:
    row = session.get(DealerCertificateRow, format(serial, "x"))
    if row is None:
        return False
    if row.revoked_at is None:
        row.revoked_at, row.revocation_reason = now, reason
    return True


def revoked_in_registry(session: Session, serial: int) -> bool:
    row = session.get(DealerCertificateRow, format(serial, "x"))
    return row is not None and row.revoked_at is not None


@dataclass(frozen=True, slots=True)
class CertificateStanding:
    """What the registry says of a dealer certificate: revoked here, and its dealer registered."""

    revoked: bool
    dealer_registered: bool


def certificate_standing(
    connection: Connection, serial: int, dealer_id: str
) -> CertificateStanding:
    """Both registry checks of a client certificate in one statement (read on every request, so
    a revocation recorded by any replica applies to the next request)."""
    revoked = (
        select(DealerCertificateRow.revoked_at)
        .where(DealerCertificateRow.serial == format(serial, "x"))
        .scalar_subquery()
    )
    registered = exists().where(DealerRow.dealer_id == dealer_id)
    row = connection.execute(select(revoked, registered)).one()
    return CertificateStanding(revoked=row[0] is not None, dealer_registered=bool(row[1]))


def revoked_serials(session: Session) -> frozenset[int]:
    rows = session.scalars(
        select(DealerCertificateRow.serial).where(DealerCertificateRow.revoked_at.is_not(None))
    )
    return frozenset(int(s, 16) for s in rows)


__all__ = [
    "ACTIVATING_ROLES",
    "ELEVATED_ROLES",
    "PURCHASING_ROLES",
    "CertificateStanding",
    "OperatorChanges",
    "OperatorClaim",
    "RegistryLedger",
    "certificate_standing",
    "confirm_role",
    "dealer_and_operator",
    "dealer_unknown",
    "get_dealer",
    "merge_edge_operators",
    "operator_problem",
    "purchase_problem",
    "record_certificate",
    "revoke_certificate",
    "upsert_dealer",
]
