"""Dealers, the operators each dealer has registered, and the certificates issued to them.

The edge names the operator who asks and their role; the cloud never takes that claim as is: it
looks the operator up in *this dealer's* registry (synced by the dealer admin) and checks the role
recorded here. An operator unknown to the dealer, deactivated, or holding a role without the
permission is refused.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from cryptography import x509
from sqlalchemy import Connection, and_, delete, exists, select
from sqlalchemy.orm import Session

from forecourt.cloud.problems import CloudProblem, ProblemCode
from forecourt.core import Dealer, Market
from forecourt.store.registry import DealerCertificateRow, DealerOperatorRow, DealerRow

#: Roles (as the edge names them) allowed to start an activation; mirrors the edge's matrix.
ACTIVATING_ROLES = frozenset({"technician", "senior_technician", "service_manager", "dealer_admin"})
KNOWN_ROLES = ACTIVATING_ROLES | {"auditor"}


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


def replace_operators(
    session: Session, dealer_id: str, operators: Iterable[OperatorClaim], now: datetime
) -> int:
    """Make the dealer's operator registry exactly ``operators`` (the edge's full list)."""
    listed = list(operators)
    for claim in listed:
        if claim.role not in KNOWN_ROLES:
            raise CloudProblem(
                422,
                ProblemCode.VALIDATION_FAILED,
                "Unknown role",
                f"operator {claim.operator_id}: role {claim.role!r} is not one of "
                + ", ".join(sorted(KNOWN_ROLES)),
            )
    session.execute(delete(DealerOperatorRow).where(DealerOperatorRow.dealer_id == dealer_id))
    for claim in listed:
        session.add(
            DealerOperatorRow(
                dealer_id=dealer_id,
                operator_id=claim.operator_id,
                role=claim.role,
                active=True,
                updated_at=now,
            )
        )
    return len(listed)


def operator_problem(session: Session, dealer_id: str, claim: OperatorClaim) -> str | None:
    """Why the claimed operator may not activate for this dealer, or ``None`` if they may.

    Returns ``"operator_unknown"`` or ``"operator_not_permitted"`` (the refusal codes).
    """
    row = session.scalars(
        select(DealerOperatorRow).where(
            DealerOperatorRow.dealer_id == dealer_id,
            DealerOperatorRow.operator_id == claim.operator_id,
        )
    ).one_or_none()
    return _operator_verdict(row, claim)


def dealer_and_operator(
    session: Session, dealer_id: str, claim: OperatorClaim
) -> tuple[Dealer, str | None]:
    """The dealer and :func:`operator_problem` for ``claim``, read in one query."""
    found = session.execute(
        select(DealerRow, DealerOperatorRow)
        .outerjoin(
            DealerOperatorRow,
            and_(
                DealerOperatorRow.dealer_id == DealerRow.dealer_id,
                DealerOperatorRow.operator_id == claim.operator_id,
            ),
        )
        .where(DealerRow.dealer_id == dealer_id)
    ).one_or_none()
    if found is None:
        raise dealer_unknown(dealer_id)
    dealer, operator = found
    return dealer_from_row(dealer), _operator_verdict(operator, claim)


def _operator_verdict(row: DealerOperatorRow | None, claim: OperatorClaim) -> str | None:
    if row is None or not row.active:
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
    "CertificateStanding",
    "OperatorClaim",
    "certificate_standing",
    "dealer_and_operator",
    "dealer_unknown",
    "get_dealer",
    "operator_problem",
    "record_certificate",
    "replace_operators",
    "revoke_certificate",
    "upsert_dealer",
]
