"""The customer's consent on the tablet: what the page shows, what an answer may be, the rows.

Rules of the market profile, enforced here before anything is stored (bad input changes nothing):

* only the current notice version may be answered (a stale tablet page is refused);
* a ``forbidden`` category cannot be granted; a ``notice_only`` category has no choice to make;
* GPC (``Sec-GPC: 1`` or the page's "do not sell or share" switch, CCPA/CPRA): every ``opt_out``
  category is recorded as denied, whatever the form said;
* a withdrawal is a new row (append-only, as Fides does) made by the same one-click form as a grant.

The customer reference typed in is never stored: rows, the outbox message and the ledger carry
its pseudonym under the edge's :class:`~forecourt.edge.workflow.consent.SubjectKey` (bound to the
session factory by the edge's wiring; without it nothing is recorded).

Rows are written by :func:`forecourt.edge.workflow.consent.record_consent_in` — one call per
mechanism, so each row names the mechanism it was given under — which also queues the
``consent.recorded`` outbox message for the cloud.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from forecourt.core import (
    CategoryRule,
    ComplianceProfile,
    ConsentChoice,
    ConsentMode,
    ConsentRecord,
    DataCategory,
)
from forecourt.edge.app.problems import ConsoleProblem, ProblemCode
from forecourt.edge.audit import EdgeAudit
from forecourt.edge.workflow import ConsentCapture
from forecourt.edge.workflow.consent import (
    CROSS_BORDER_PURPOSE,
    PSEUDONYM_PREFIX,
    SubjectKey,
    record_consent_in,
)
from forecourt.store.edge import EdgeConsentRecord

ANSWERABLE = frozenset({ConsentMode.OPT_IN, ConsentMode.OPT_OUT})


class ConsentNotConfigured(RuntimeError):
    """The edge was assembled without the subject key: consent cannot be pseudonymised."""


@dataclass(frozen=True, slots=True)
class ConsentAnswers:
    """What the tablet submitted, before the profile's rules are applied."""

    vin: str
    subject_ref: str
    notice_version: str
    language: str
    answers: Mapping[DataCategory, bool]
    cross_border: bool | None = None
    gpc: bool = False


@dataclass(frozen=True, slots=True)
class StoredDecision:
    purpose: str
    decision: str
    mechanism: str
    notice_version: str
    recorded_at: datetime


def _refuse(detail: str, **extra: object) -> ConsoleProblem:
    return ConsoleProblem(422, ProblemCode.CONSENT_INVALID, "Consent not valid", detail, **extra)


def effective_answers(
    profile: ComplianceProfile, answers: ConsentAnswers
) -> dict[ConsentMode, list[tuple[str, bool]]]:
    """The answers to record, grouped by mechanism; raises ``consent_invalid`` on a broken rule."""
    if answers.notice_version != profile.notice_version:
        raise _refuse(
            f"notice {answers.notice_version!r} is not the current {profile.notice_version!r}",
            current_notice_version=profile.notice_version,
        )
    groups: dict[ConsentMode, list[tuple[str, bool]]] = defaultdict(list)
    for category, granted in answers.answers.items():
        rule = profile.rule(category)
        if rule.mode is ConsentMode.FORBIDDEN and granted:
            raise _refuse(f"{category.value} is forbidden in this market", category=category.value)
        if rule.mode is ConsentMode.NOTICE_ONLY:
            raise _refuse(f"{category.value} is notice-only: there is no choice to record")
        # GPC is an opt-out of sale/sharing: it wins over a grant of an opt-out category.
        effective = granted and not (rule.mode is ConsentMode.OPT_OUT and answers.gpc)
        groups[rule.mode].append((category.value, effective))
    if answers.gpc:
        answered = set(answers.answers)
        for rule in profile.rules:
            if rule.mode is ConsentMode.OPT_OUT and rule.category not in answered:
                groups[ConsentMode.OPT_OUT].append((rule.category.value, False))
    if answers.cross_border is not None:
        mode = profile.cross_border_mode
        if mode is ConsentMode.FORBIDDEN and answers.cross_border:
            raise _refuse("cross-border transfer is forbidden in this market")
        if mode in ANSWERABLE:
            groups[mode].append((CROSS_BORDER_PURPOSE, answers.cross_border))
    if not groups:
        raise _refuse("nothing to record: no category was answered")
    return dict(groups)


class ConsentDesk:
    """Records answers and reads the current decisions of a car at this dealer."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        profile: ComplianceProfile,
        dealer_id: str,
        notice_id: str,
    ) -> None:
        self._sessions = sessions
        self.profile = profile
        self._dealer_id = dealer_id
        self._notice_id = notice_id

    def record(self, answers: ConsentAnswers, operator_id: str, now: datetime) -> list[str]:
        """Store the answers (one transaction); returns the new row ids."""
        groups = effective_answers(self.profile, answers)
        region = self.profile.residency.value
        method = "console+gpc" if answers.gpc else "console"
        ids: list[str] = []
        with self._sessions.begin() as session:
            audit = EdgeAudit.of(session)
            if audit is None:
                raise ConsentNotConfigured("no ledger is bound to the edge's sessions")
            now = self._after_latest(session, answers.vin, now)
            subject = self._subject(session, answers)
            for mode, items in sorted(groups.items()):
                cross = next((g for p, g in items if p == CROSS_BORDER_PURPOSE), None)
                choices = tuple(
                    ConsentChoice(DataCategory(p), g) for p, g in items if p != CROSS_BORDER_PURPOSE
                )
                capture = ConsentCapture(
                    record=ConsentRecord(answers.notice_version, now, choices, cross),
                    notice_id=self._notice_id,
                    region=region,
                    subject_ref=PSEUDONYM_PREFIX + subject,
                    method=f"{method}:{answers.language}",
                    mechanism=mode.value,
                )
                context = capture.to_context()
                ids += record_consent_in(
                    session,
                    context,
                    vin=answers.vin,
                    dealer_id=self._dealer_id,
                    operator_id=operator_id,
                    now=now,
                    audit=audit,
                )
        return ids

    def _subject(self, session: Session, answers: ConsentAnswers) -> str:
        """The subject's digest: of the reference typed in, or the car's last one (a withdrawal
        needs no typing: it must be as easy as the grant was)."""
        if answers.subject_ref.strip():
            key = SubjectKey.of(session)
            if key is None:
                raise ConsentNotConfigured("no subject key is bound to the edge's sessions")
            return key.pseudonym(answers.subject_ref.strip())
        stored = self._latest_subject(session, answers.vin)
        if stored is None:
            raise _refuse("the customer reference is missing")
        return stored

    def _latest_subject(self, session: Session, vin: str) -> str | None:
        return session.execute(
            select(EdgeConsentRecord.subject_sha256)
            .where(EdgeConsentRecord.dealer_id == self._dealer_id, EdgeConsentRecord.vin == vin)
            .order_by(EdgeConsentRecord.recorded_at.desc())
            .limit(1)
        ).scalar_one_or_none()

    def _after_latest(self, session: Session, vin: str, now: datetime) -> datetime:
        """``now``, moved just past the car's latest row so a later answer always sorts last."""
        latest = session.execute(
            select(func.max(EdgeConsentRecord.recorded_at)).where(
                EdgeConsentRecord.dealer_id == self._dealer_id, EdgeConsentRecord.vin == vin
            )
        ).scalar_one_or_none()
        if latest is not None and now <= latest:
            return latest + timedelta(microseconds=1)
        return now

    def current(self, vin: str) -> dict[str, StoredDecision]:
        """The latest decision per purpose for ``vin`` at this dealer (rows are append-only)."""
        with self._sessions() as s:
            rows = s.execute(
                select(EdgeConsentRecord)
                .where(EdgeConsentRecord.dealer_id == self._dealer_id, EdgeConsentRecord.vin == vin)
                .order_by(EdgeConsentRecord.recorded_at, EdgeConsentRecord.id)
            ).scalars()
            latest: dict[str, StoredDecision] = {}
            for r in rows:
                latest[r.purpose] = StoredDecision(
                    r.purpose, r.decision, r.mechanism, r.notice_version, r.recorded_at
                )
        return latest

    def history(self, vin: str) -> Sequence[StoredDecision]:
        with self._sessions() as s:
            rows = s.execute(
                select(EdgeConsentRecord)
                .where(EdgeConsentRecord.dealer_id == self._dealer_id, EdgeConsentRecord.vin == vin)
                .order_by(EdgeConsentRecord.recorded_at.desc(), EdgeConsentRecord.id)
            ).scalars()
            return [
                StoredDecision(r.purpose, r.decision, r.mechanism, r.notice_version, r.recorded_at)
                for r in rows
            ]

    def capture_for_activation(self, vin: str, now: datetime) -> ConsentCapture | None:
        """The car's current answers on the current notice, for the cloud's authorisation.

        The subject is referred to by the digest already stored (the identity never returns to
        the edge); ``None`` when nothing was answered on the current notice.
        """
        with self._sessions() as s:
            subject = self._latest_subject(s, vin)
        current = {
            p: d
            for p, d in self.current(vin).items()
            if d.notice_version == self.profile.notice_version
        }
        if subject is None or not current:
            return None
        choices = tuple(
            ConsentChoice(DataCategory(p), d.decision == "granted")
            for p, d in sorted(current.items())
            if p != CROSS_BORDER_PURPOSE
        )
        cross = current.get(CROSS_BORDER_PURPOSE)
        return ConsentCapture(
            record=ConsentRecord(
                self.profile.notice_version,
                now,
                choices,
                None if cross is None else cross.decision == "granted",
            ),
            notice_id=self._notice_id,
            region=self.profile.residency.value,
            subject_ref=PSEUDONYM_PREFIX + subject,
            method="console:activation",
        )


def rule_rows(profile: ComplianceProfile) -> list[CategoryRule]:
    """Every category's rule in display order (separate-consent categories last, on their own)."""
    rules = [profile.rule(c) for c in DataCategory]
    return sorted(rules, key=lambda r: (r.separate_consent, list(DataCategory).index(r.category)))
