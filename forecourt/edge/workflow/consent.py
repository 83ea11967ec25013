"""The customer's privacy choices as captured on the console, and their append-only rows.

Each answered category becomes one ``edge_consent_records`` row pointing to the exact notice
version shown (as Fides does), written in the transaction of the workflow step that identified
the car, with a ``consent.recorded`` outbox message so the cloud (and from there CRM and the car's
dossier) learns it. The data subject's identity is kept only as a SHA-256 digest.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from forecourt.core import ConsentRecord, from_dict, to_dict
from forecourt.edge.outbox import CONSENT_RECORDED, enqueue
from forecourt.store.edge import EdgeConsentRecord

CROSS_BORDER_PURPOSE = "cross_border"


@dataclass(frozen=True, slots=True)
class ConsentCapture:
    """What the console captured: the choices (core value), which notice, where, how, whom."""

    record: ConsentRecord
    notice_id: str
    region: str
    subject_ref: str
    method: str = "console"
    mechanism: str = "opt_in"

    def to_context(self) -> dict[str, Any]:
        return {
            "record": to_dict(self.record),
            "notice_id": self.notice_id,
            "region": self.region,
            "subject_sha256": hashlib.sha256(self.subject_ref.encode()).hexdigest(),
            "method": self.method,
            "mechanism": self.mechanism,
        }


def consent_record_from_context(ctx: Mapping[str, Any]) -> ConsentRecord:
    return from_dict(ConsentRecord, ctx["record"])


def record_consent_in(
    session: Session,
    ctx: Mapping[str, Any],
    *,
    vin: str,
    dealer_id: str,
    operator_id: str,
    now: datetime,
) -> list[str]:
    """Write one row per answered category (and the cross-border answer); returns their ids."""
    record = consent_record_from_context(ctx)
    answers: list[tuple[str, bool]] = [(c.category.value, c.granted) for c in record.choices]
    if record.cross_border is not None:
        answers.append((CROSS_BORDER_PURPOSE, record.cross_border))
    ids: list[str] = []
    for purpose, granted in answers:
        row_id = str(uuid.uuid4())
        session.add(
            EdgeConsentRecord(
                id=row_id,
                dealer_id=dealer_id,
                vin=vin,
                subject_sha256=str(ctx["subject_sha256"]),
                purpose=purpose,
                decision="granted" if granted else "denied",
                mechanism=str(ctx["mechanism"]),
                notice_id=str(ctx["notice_id"]),
                notice_version=record.notice_version,
                region=str(ctx["region"]),
                method=str(ctx["method"]),
                operator_id=operator_id,
                supersedes_id=None,
                recorded_at=now,
            )
        )
        ids.append(row_id)
    enqueue(
        session,
        CONSENT_RECORDED,
        {
            "vin": vin,
            "dealer_id": dealer_id,
            "notice_id": ctx["notice_id"],
            "notice_version": record.notice_version,
            "region": ctx["region"],
            "subject_sha256": ctx["subject_sha256"],
            "answers": {p: g for p, g in answers},
            "record_ids": ids,
            "records": [
                {"record_id": i, "category": p, "granted": g}
                for i, (p, g) in zip(ids, answers, strict=True)
            ],
            "mechanism": ctx["mechanism"],
            "method": ctx["method"],
            "captured_at": record.captured_at.isoformat(),
        },
        now=now,
        subject=vin,
    )
    return ids
