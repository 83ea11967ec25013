"""The audit of changes to who may do what: every change is a row and a structured log event.

The row lands in the caller's transaction, so a change and its audit commit or roll back
together; the log event (``registry_changed``) feeds the central log pipeline. Actors are named
by what authenticated them: ``edge:<certificate serial hex>`` or ``staff:<token subject>``.
A change that is also a leaf of the cloud's Merkle log names it in ``detail["ledger"]``
(:func:`ledger_reference`), so staff go from the row to the leaf and its inclusion proof.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from forecourt.logging import get_logger
from forecourt.store.registry import AuditRow

_log = get_logger("cloud.audit")


def edge_actor(certificate_serial: int) -> str:
    return f"edge:{certificate_serial:x}"


def staff_actor(subject: str) -> str:
    return f"staff:{subject}"


def ledger_reference(origin: str, indices: Iterable[int]) -> dict[str, Any]:
    """Where an audited change is in the cloud's log: the log's origin and the leaf indices."""
    return {"origin": origin, "indices": list(indices)}


def record_change(
    session: Session,
    *,
    at: datetime,
    actor: str,
    action: str,
    subject: str,
    dealer_id: str | None = None,
    edge: str | None = None,
    detail: Mapping[str, Any] | None = None,
) -> None:
    """Append one audit row in ``session``'s transaction and log it."""
    session.add(
        AuditRow(
            at=at,
            actor=actor,
            dealer_id=dealer_id,
            edge=edge,
            action=action,
            subject=subject,
            detail=dict(detail or {}),
        )
    )
    _log.info(
        "registry_changed",
        action=action,
        actor=actor,
        dealer_id=dealer_id,
        edge=edge,
        subject=subject,
        detail=dict(detail or {}),
    )


__all__ = ["edge_actor", "ledger_reference", "record_change", "staff_actor"]
