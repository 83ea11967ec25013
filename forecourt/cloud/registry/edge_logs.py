"""Onboarding an edge's ledger: the OEM registers its checkpoint key for the log of logs.

An edge signs checkpoints of its own Merkle log; the cloud accepts them into the log of logs
only under a key the OEM registered for that log's origin (``ledger_peer_logs``). Registration
binds the origin to a dealer and an edge (``registry_ledger_keys``) in the same transaction, so
the question "whose log is this?" has one answer. It is idempotent (the same key again changes
nothing) and never replaces a key silently: another key for a registered origin, or a second
origin for the same edge, is refused (a key rotation is an explicit, separate act).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from forecourt.cloud.problems import CloudProblem, ProblemCode
from forecourt.cloud.registry.dealers import get_dealer
from forecourt.ledger.checkpoint import NoteVerifier
from forecourt.ledger.errors import NoteError
from forecourt.logging import get_logger
from forecourt.store.ledger import LedgerPeerLog
from forecourt.store.registry import EdgeLogRow

_log = get_logger("cloud.registry.edge_logs")


@dataclass(frozen=True, slots=True)
class EdgeLogRegistration:
    origin: str
    dealer_id: str
    edge_id: str
    vkey: str
    created: bool

    def to_json(self) -> dict[str, object]:
        return {
            "origin": self.origin,
            "dealer_id": self.dealer_id,
            "edge_id": self.edge_id,
            "vkey": self.vkey,
            "created": self.created,
        }


def register_edge_log(
    session: Session, dealer_id: str, edge_id: str, vkey: str, *, by: str, now: datetime
) -> EdgeLogRegistration:
    """Register ``vkey`` (``origin+hash+key``) as the ledger key of ``edge_id`` of ``dealer_id``."""
    try:
        verifier = NoteVerifier.from_vkey(vkey)
    except NoteError as exc:
        raise _refused(422, dealer_id, edge_id, f"verifier key refused: {exc}") from exc
    get_dealer(session, dealer_id)
    canonical = verifier.to_vkey()
    held = session.get(EdgeLogRow, verifier.name, with_for_update=True)
    peer = session.get(LedgerPeerLog, verifier.name, with_for_update=True)
    if held is not None or peer is not None:
        if (
            held is not None
            and peer is not None
            and (held.dealer_id, held.edge, held.vkey) == (dealer_id, edge_id, canonical)
        ):
            return EdgeLogRegistration(verifier.name, dealer_id, edge_id, canonical, False)
        raise _refused(
            409, dealer_id, edge_id, f"ledger origin {verifier.name!r} is registered otherwise"
        )
    other = session.scalar(
        select(EdgeLogRow.origin).where(
            EdgeLogRow.dealer_id == dealer_id, EdgeLogRow.edge == edge_id
        )
    )
    if other is not None:
        raise _refused(409, dealer_id, edge_id, f"edge {edge_id} already logs as {other!r}")
    session.add(LedgerPeerLog(origin=verifier.name, vkey=canonical))
    session.add(
        EdgeLogRow(
            origin=verifier.name,
            dealer_id=dealer_id,
            edge=edge_id,
            vkey=canonical,
            registered_by=by,
            registered_at=now,
        )
    )
    _log.info(
        "edge_log_registered", origin=verifier.name, dealer_id=dealer_id, edge_id=edge_id, by=by
    )
    return EdgeLogRegistration(verifier.name, dealer_id, edge_id, canonical, True)


def _refused(status: int, dealer_id: str, edge_id: str, detail: str) -> CloudProblem:
    _log.warning(
        "edge_log_registration_refused", dealer_id=dealer_id, edge_id=edge_id, detail=detail
    )
    return CloudProblem(status, ProblemCode.VALIDATION_FAILED, "Edge log not registered", detail)
