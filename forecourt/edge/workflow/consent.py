"""The customer's privacy choices as captured on the console, and their append-only rows.

Each answered category becomes one ``edge_consent_records`` row pointing to the exact notice
version shown (as Fides does), written in the transaction of the workflow step that identified
the car, with a ``consent.recorded`` outbox message so the cloud (and from there CRM and the car's
dossier) learns it. A grant or withdrawal on the consent desk also gets one ``consent-change``
entry in the edge ledger (same transaction): notice version and the categories answered in the
leaf, the operator and the customer only as salted commitments, the rows' ids and answers in the
evidence document whose hash the leaf carries. Consent captured with an activation is covered by
the identification step's entry, whose evidence names the rows.

The data subject's identity is kept only as a pseudonym: HMAC-SHA256 of the customer reference
under this edge's subject key (:class:`SubjectKey`, a secret file in the edge's data directory).
A plain SHA-256 of a contract number or a name is reversed by trying candidates; the keyed digest
is not, for anyone without the key (the cloud included). The column keeps its historical name
``subject_sha256``.
"""

from __future__ import annotations

import hashlib
import hmac
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from forecourt.core import ConsentRecord, from_dict, to_dict
from forecourt.edge.audit import AuditFacts, EdgeAudit, evidence_digest
from forecourt.edge.keyfiles import KeyFileError, create_key_file, read_key_file
from forecourt.edge.outbox import CONSENT_RECORDED, enqueue
from forecourt.ledger.entry import EventKind
from forecourt.logging import get_logger
from forecourt.store.edge import EdgeConsentRecord

CROSS_BORDER_PURPOSE = "cross_border"
#: A ``subject_ref`` that is already this edge's pseudonym of the subject (not to be hashed again).
PSEUDONYM_PREFIX = "pseudonym:"
SUBJECT_KEY_FILE = "consent-subject.key"
_SUBJECT_KEY_INFO = "forecourt.edge.subject_key"
_KEY_BYTES = 32

_log = get_logger("edge.consent")


class SubjectKeyError(KeyFileError):
    """The subject key file exists but is not a key this edge wrote."""


@dataclass(frozen=True, slots=True)
class SubjectKey:
    """This edge's secret for pseudonymising data subjects (HMAC-SHA256, 256-bit key)."""

    secret: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if len(self.secret) != _KEY_BYTES:
            raise ValueError(f"a subject key is {_KEY_BYTES} bytes, not {len(self.secret)}")

    def pseudonym(self, subject_ref: str) -> str:
        """Hex HMAC-SHA256 of the reference: stable at this edge, unguessable without the key."""
        return hmac.new(self.secret, subject_ref.encode("utf-8"), hashlib.sha256).hexdigest()

    @classmethod
    def load_or_create(cls, data_dir: Path) -> SubjectKey:
        """The key in ``data_dir``, created on first start (mode 0600, never rewritten)."""
        path = data_dir / SUBJECT_KEY_FILE
        created = create_key_file(path, _KEY_BYTES, "subject_key_created")
        return cls(created if created is not None else cls._load(path).secret)

    @classmethod
    def _load(cls, path: Path) -> SubjectKey:
        return cls(read_key_file(path, _KEY_BYTES, SubjectKeyError))

    def bind(self, sessions: sessionmaker[Session]) -> None:
        """Make the key reachable from every session of ``sessions`` (:meth:`of`)."""
        sessions.configure(info={**sessions.kw.get("info", {}), _SUBJECT_KEY_INFO: self})

    @staticmethod
    def of(session: Session) -> SubjectKey | None:
        key = session.info.get(_SUBJECT_KEY_INFO)
        return key if isinstance(key, SubjectKey) else None


@dataclass(frozen=True, slots=True)
class ConsentCapture:
    """What the console captured: the choices (core value), which notice, where, how, whom."""

    record: ConsentRecord
    notice_id: str
    region: str
    subject_ref: str
    method: str = "console"
    mechanism: str = "opt_in"
    subject_key: SubjectKey | None = field(default=None, repr=False, compare=False)

    def subject_pseudonym(self) -> str:
        """The subject as stored and sent: the pseudonym given, or the keyed digest of the ref.

        Without a key (a capture built outside the edge's wiring) the digest falls back to plain
        SHA-256 and says so in the log: such a digest is reversible by dictionary.
        """
        if self.subject_ref.startswith(PSEUDONYM_PREFIX):
            return self.subject_ref.removeprefix(PSEUDONYM_PREFIX)
        if self.subject_key is not None:
            return self.subject_key.pseudonym(self.subject_ref)
        _log.warning("consent_subject_unkeyed", notice_id=self.notice_id)
        return hashlib.sha256(self.subject_ref.encode()).hexdigest()

    def to_context(self) -> dict[str, Any]:
        return {
            "record": to_dict(self.record),
            "notice_id": self.notice_id,
            "region": self.region,
            "subject_sha256": self.subject_pseudonym(),
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
    audit: EdgeAudit | None = None,
    online: bool = True,
) -> list[str]:
    """Write one row per answered category (and the cross-border answer); returns their ids.

    In the same transaction: the ``consent.recorded`` outbox message and, when ``audit`` is given
    (the consent desk: a grant or a withdrawal on its own), one ``consent-change`` ledger entry.
    Consent captured with an activation is written inside the identification step, whose own
    ledger entry carries the new rows' ids in its evidence, so it is not entered twice.
    """
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
    if audit is None:
        return ids
    evidence = {
        "type": "consent-change",
        "notice_id": ctx["notice_id"],
        "notice_version": record.notice_version,
        "region": ctx["region"],
        "mechanism": ctx["mechanism"],
        "method": ctx["method"],
        "records": [
            {"record_id": i, "category": p, "decision": "granted" if g else "denied"}
            for i, (p, g) in zip(ids, answers, strict=True)
        ],
    }
    audit.record_in(
        session,
        AuditFacts(
            timestamp=now,
            kind=EventKind.CONSENT_CHANGE,
            vin=vin,
            dealer_id=dealer_id,
            online=online,
            status="recorded",
            evidence_hashes=(evidence_digest(evidence),),
            operator_id=operator_id,
            customer_id=str(ctx["subject_sha256"]),
            features=tuple(f"{p}={'granted' if g else 'denied'}" for p, g in answers),
            package_versions={f"notice:{ctx['notice_id']}": record.notice_version},
        ),
    )
    return ids
