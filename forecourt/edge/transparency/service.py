"""Makes a report: reads the period, backs it by a checkpoint, builds, renders. Used by the
``forecourt edge transparency-report`` command and the console's /transparency page alike.

When no signed checkpoint was issued since the period ended but the period is over, one is
issued now (the edge's checkpoint key, as its own schedule does), so the published figures
always name a tree that holds every entry of the period. A period that has not ended yet is
reported against the newest checkpoint and says so.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from sqlalchemy.orm import Session, sessionmaker

from forecourt.edge.anomaly import Thresholds
from forecourt.edge.transparency.model import (
    Period,
    ProfileInForce,
    TransparencyReport,
    build_report,
)
from forecourt.edge.transparency.repository import TransparencyRepository
from forecourt.ledger.log import TransparencyLog
from forecourt.logging import get_logger

_log = get_logger("edge.transparency")


class TransparencyReports:
    """One dealer's reports over the edge database (and its ledger, to back them)."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        dealer_id: str,
        profile: ProfileInForce,
        *,
        purposes: Mapping[str, str],
        ledger: TransparencyLog | None = None,
        thresholds: Thresholds | None = None,
    ) -> None:
        self._repository = TransparencyRepository(sessions, dealer_id)
        self._dealer_id = dealer_id
        self._profile = profile
        self._purposes = dict(purposes)
        self._ledger = ledger
        self._thresholds = thresholds

    def build(self, period: Period, now: datetime) -> TransparencyReport:
        facts = self._repository.facts(period)
        covered = facts.checkpoint is not None and facts.checkpoint.covers_period_end
        if not covered and self._ledger is not None and period.end_at <= now:
            self._ledger.issue_checkpoint()
            facts = self._repository.facts(period)
        report = build_report(
            facts,
            self._profile,
            generated_at=now,
            purposes=self._purposes,
            thresholds=self._thresholds,
        )
        _log.info(
            "transparency_report_built",
            dealer_id=self._dealer_id,
            start=period.start.isoformat(),
            end=period.end.isoformat(),
            checkpoint_size=None if report.ledger is None else report.ledger.tree_size,
        )
        return report
