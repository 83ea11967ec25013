"""Who is calling: a dealer edge by its TLS client certificate, or OEM staff by a scoped token.

Dealer identity comes from the peer certificate the TLS handshake verified, carried in the ASGI
scope as the TLS extension (``scope["extensions"]["tls"]["client_cert_chain"]``, PEM, leaf first;
:mod:`forecourt.cloud.server` fills it from the uvicorn transport). The handshake already demands
a certificate chaining to the OEM root; this module checks again with the trust layer's
``verify_chain`` at the cloud's clock, for the dealer purpose, against the current CRL, the root's
CRL of issuing CAs and the registry's own revocations, so a certificate revoked after the server
started is refused (resumed TLS sessions included) and no deployment mistake (a TLS terminator
that forgot ``CERT_REQUIRED``) lets anyone in.

Staff tokens look like ``fct_<id>.<secret>``; only SHA-256 of the secret is stored (the secret
has 256 bits of entropy, so a slow hash adds nothing) and compared in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from cryptography import x509
from fastapi import Depends, Request
from sqlalchemy.orm import Session

from forecourt.cloud.context import CloudContext, get_context
from forecourt.cloud.problems import CloudProblem, ProblemCode
from forecourt.cloud.registry.dealers import certificate_standing, dealer_unknown
from forecourt.logging import get_logger
from forecourt.store.registry import ApiTokenRow
from forecourt.trust.errors import CertificateError, CertificateExpired, CertificateRevoked

_log = get_logger("cloud.auth")
TOKEN_PREFIX = "fct_"  # noqa: S105 - a prefix, not a secret


class Scope(StrEnum):
    """What an OEM staff token may do."""

    REGISTRY_WRITE = "registry:write"
    DEALERS_ADMIN = "dealers:admin"
    CATALOG_WRITE = "catalog:write"
    PACKAGES_WRITE = "packages:write"
    COMPLIANCE_WRITE = "compliance:write"
    INTEGRATIONS_ADMIN = "integrations:admin"
    READ = "read"


@dataclass(frozen=True, slots=True)
class DealerCaller:
    """A dealer edge whose certificate verified: ``dealer_id`` is registered in the cloud."""

    dealer_id: str
    edge_id: str
    certificate_serial: int


@dataclass(frozen=True, slots=True)
class StaffCaller:
    subject: str
    scopes: frozenset[str]


def peer_certificate_pems(scope: Mapping[str, Any]) -> list[str]:
    """The client's certificate chain (PEM, leaf first) from the ASGI TLS extension."""
    tls = (scope.get("extensions") or {}).get("tls") or {}
    return list(tls.get("client_cert_chain") or [])


def peer_certificate_chain(scope: Mapping[str, Any]) -> list[x509.Certificate]:
    """The client's certificate chain from the ASGI TLS extension (empty if none was sent)."""
    try:
        return [
            x509.load_pem_x509_certificate(pem.encode("ascii"))
            for pem in peer_certificate_pems(scope)
        ]
    except ValueError as exc:
        raise _cert_problem(ProblemCode.CLIENT_CERTIFICATE_INVALID, f"unreadable: {exc}") from exc


def _cert_problem(code: ProblemCode, detail: str) -> CloudProblem:
    return CloudProblem(401, code, "Client certificate refused", detail)


def authenticate_dealer(context: CloudContext, pems: list[str], now: datetime) -> DealerCaller:
    """Verify ``pems`` (the presented chain, leaf first) as a dealer certificate at ``now``.

    Path validation against the OEM root and the current CRL is remembered per chain and CRL
    (:class:`forecourt.cloud.verified.VerifiedDealerCache`); the registry's revocations and the
    dealer's registration are read from the database on every call, in one statement.
    """
    if not pems:
        raise _cert_problem(
            ProblemCode.CLIENT_CERTIFICATE_REQUIRED, "a dealer client certificate is required"
        )
    try:
        identity = context.verified_dealers.verify(
            pems, context.config.crl(), now, root_crl=context.config.root_crl()
        )
    except CertificateExpired as exc:
        raise _cert_problem(ProblemCode.CLIENT_CERTIFICATE_EXPIRED, str(exc)) from exc
    except CertificateRevoked as exc:
        raise _cert_problem(ProblemCode.CLIENT_CERTIFICATE_REVOKED, str(exc)) from exc
    except CertificateError as exc:
        raise _cert_problem(ProblemCode.CLIENT_CERTIFICATE_INVALID, str(exc)) from exc
    except ValueError as exc:
        raise _cert_problem(ProblemCode.CLIENT_CERTIFICATE_INVALID, f"unreadable: {exc}") from exc
    with context.db.read() as connection:
        standing = certificate_standing(connection, identity.serial, identity.dealer_id)
    if standing.revoked:
        _log.warning(
            "certificate_refused",
            code=ProblemCode.CLIENT_CERTIFICATE_REVOKED.value,
            dealer_id=identity.dealer_id,
            serial=format(identity.serial, "x"),
            reason="revoked in the registry",
        )
        raise _cert_problem(
            ProblemCode.CLIENT_CERTIFICATE_REVOKED,
            f"certificate {identity.serial:x} of {identity.dealer_id} is revoked",
        )
    if not standing.dealer_registered:
        raise dealer_unknown(identity.dealer_id)
    return DealerCaller(identity.dealer_id, identity.edge_id, identity.serial)


def require_dealer(request: Request) -> DealerCaller:
    """FastAPI dependency: the calling dealer, or a ``client_certificate_*`` problem."""
    context = get_context(request)
    pems = peer_certificate_pems(request.scope)
    caller = authenticate_dealer(context, pems, context.config.clock())
    request.state.caller = caller
    return caller


def new_token() -> tuple[str, str, str]:
    """A fresh token: (token id, the full token to hand out once, SHA-256 of its secret)."""
    token_id = secrets.token_hex(8)
    secret = secrets.token_urlsafe(32)
    return token_id, f"{TOKEN_PREFIX}{token_id}.{secret}", _digest(secret)


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def issue_token(session: Session, subject: str, scopes: frozenset[str], now: datetime) -> str:
    """Store a new staff token and return it (the only time it exists in clear)."""
    unknown = scopes - {s.value for s in Scope}
    if unknown:
        raise ValueError(f"unknown scopes: {', '.join(sorted(unknown))}")
    token_id, token, digest = new_token()
    session.add(
        ApiTokenRow(
            token_id=token_id,
            token_hash=digest,
            subject=subject,
            scopes=sorted(scopes),
            created_at=now,
            revoked_at=None,
        )
    )
    return token


def authenticate_staff(session: Session, authorization: str | None) -> StaffCaller:
    if not authorization or not authorization.lower().startswith("bearer "):
        raise CloudProblem(401, ProblemCode.TOKEN_REQUIRED, "Token required", "send a bearer token")
    token = authorization[7:].strip()
    token_id, _, secret = token.removeprefix(TOKEN_PREFIX).partition(".")
    row = session.get(ApiTokenRow, token_id) if token.startswith(TOKEN_PREFIX) else None
    if (
        row is None
        or row.revoked_at is not None
        or not hmac.compare_digest(row.token_hash, _digest(secret))
    ):
        raise CloudProblem(401, ProblemCode.TOKEN_INVALID, "Token refused", "unknown or revoked")
    return StaffCaller(row.subject, frozenset(row.scopes))


def require_scope(scope: Scope) -> Any:
    """FastAPI dependency factory: an OEM staff caller holding ``scope``."""

    def dependency(request: Request) -> StaffCaller:
        context = get_context(request)
        with context.db.sessions() as session:
            caller = authenticate_staff(session, request.headers.get("authorization"))
        if scope.value not in caller.scopes:
            raise CloudProblem(
                403,
                ProblemCode.SCOPE_MISSING,
                "Scope missing",
                f"{caller.subject} lacks scope {scope.value}",
            )
        return caller

    return Depends(dependency)


def require_dealer_or_staff(request: Request) -> DealerCaller | StaffCaller:
    """Downloads: a dealer edge by certificate, or OEM staff with the ``read`` scope."""
    if request.headers.get("authorization"):
        context = get_context(request)
        with context.db.sessions() as session:
            staff = authenticate_staff(session, request.headers.get("authorization"))
        if Scope.READ.value not in staff.scopes:
            raise CloudProblem(
                403, ProblemCode.SCOPE_MISSING, "Scope missing", f"{staff.subject} lacks read"
            )
        return staff
    return require_dealer(request)


DealerDep = Annotated[DealerCaller, Depends(require_dealer)]
