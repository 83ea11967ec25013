"""The report's figures over a seeded edge database, and the publishing rules (k-anonymity)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from forecourt.edge.transparency import (
    K_ANONYMITY,
    Cell,
    Period,
    PeriodError,
    TransparencyReport,
    TransparencyRepository,
    last_full_quarter,
    suppress,
)
from tests.edge.operators.conftest import DEALER
from tests.edge.transparency.conftest import Q1_2025, Seeded

AFTER_Q1 = datetime(2025, 4, 2, 8, 0, tzinfo=UTC)


def q1_report(seeded: Seeded) -> TransparencyReport:
    seeded.env.clock.now = AFTER_Q1  # the report is made after the quarter ended
    return seeded.reports.build(Q1_2025, AFTER_Q1)


def values(table_column: dict[str, Cell]) -> dict[str, int | None]:
    return {label: cell.value for label, cell in table_column.items()}


def test_activations_are_counted_by_outcome_with_refusals_by_reason_and_features(
    seeded: Seeded,
) -> None:
    report = q1_report(seeded)
    assert report.activation_totals == {"done": 6, "refused": 2, "failed": 1, "cancelled": 0}
    # two refusals, one reason: below k, so suppressed (the total above stays exact)
    assert values(report.refusals.column(0)) == {"cloud_refused": None}
    # nav on six cars is published, voice on one is "< 5"; no total of features is published
    # (an activation enables several), so nothing reveals voice and nav stays shown
    assert values(report.features.column(0)) == {"nav": 6, "voice": None}


def test_consent_grants_withdrawals_and_their_propagation_are_counted_per_category(
    seeded: Seeded,
) -> None:
    report = q1_report(seeded)
    by_category = {r.label: [c.value for c in r.cells] for r in report.consent.rows}
    assert by_category["location"] == [6, 5, 0]
    assert by_category["audio_voice"] == [0, 0, None]  # one first refusal: "< 5"
    propagation = values(report.withdrawal_propagation.column(0))
    # three withdrawals were pushed to the cloud before the dispatcher stopped, two wait:
    # both below k, and the total (5 withdrawals) is published, so both stay hidden
    assert propagation == {"propagated": None, "pending": None, "failed": 0}
    assert values(report.cross_border.column(0)) == {"granted": 0, "denied": 6}


def test_profile_names_market_version_and_why_each_category_is_processed(seeded: Seeded) -> None:
    profile = q1_report(seeded).profile
    assert (profile.market, profile.residency, profile.version) == ("EU", "eu", 7)
    assert profile.notice_versions_answered == ("eu-2025.1",)
    location = next(c for c in profile.categories if c.category == "location")
    assert location.mode == "opt_in" and location.processed
    assert "Find the car" in location.purpose


def test_operator_activity_is_by_role_and_reviews_by_kind_and_decision(seeded: Seeded) -> None:
    facts = TransparencyRepository(seeded.env.sessions, DEALER).facts(Q1_2025)
    assert facts.activity_by_role["technician"].activations_started == 7
    assert facts.activity_by_role["senior_technician"].activations_started == 2
    assert facts.activity_by_role["auditor"].sign_ins == 1
    report = q1_report(seeded)
    started = values(report.operators.column(1))
    # the senior's 2 is "< 5"; the technician's 7 is hidden with it (the column total of
    # activations started is known from the outcomes), every other role started none
    assert started == {
        "auditor": 0, "dealer admin": 0, "senior technician": None,
        "service manager": 0, "technician": None,
    }  # fmt: skip
    consent_answers = values(report.operators.column(2))
    assert consent_answers["technician"] == 13 and consent_answers["service manager"] == 5
    requested = values(report.reviews_requested.column(0))
    assert requested["batch_activation"] is None  # one request: "< 5"
    assert report.reviews_decided["rejected"] == 1


def test_the_checkpoint_backs_the_period_and_is_issued_when_none_covers_its_end(
    seeded: Seeded,
) -> None:
    before = seeded.env.log.store.checkpoint_notes()
    report = q1_report(seeded)
    assert report.ledger is not None and report.ledger.covers_period_end
    assert len(seeded.env.log.store.checkpoint_notes()) == len(before) + 1
    size, _root = seeded.env.log.store.root()
    assert report.ledger.tree_size == size
    assert report.ledger.signed_note.startswith(seeded.env.log.origin)
    # a second report of the same period reuses that checkpoint
    again = seeded.reports.build(Q1_2025, AFTER_Q1)
    assert again.ledger == report.ledger
    assert len(seeded.env.log.store.checkpoint_notes()) == len(before) + 1


def test_a_period_without_events_has_zeros_and_nothing_suppressed(seeded: Seeded) -> None:
    seeded.env.clock.now = AFTER_Q1
    report = seeded.reports.build(Period(date(2024, 10, 1), date(2025, 1, 1)), AFTER_Q1)
    assert set(report.activation_totals.values()) == {0}
    assert report.consent.rows == () and report.features.rows == ()


@pytest.mark.parametrize(
    ("counts", "published", "expected"),
    [
        ((0, 5, 12), True, (0, 5, 12)),
        ((1, 4, 9), True, (None, None, 9)),
        ((3, 9, 7), True, (None, 9, None)),  # complementary: 7 is the smallest other
        ((3, 9, 7), False, (None, 9, 7)),
        ((K_ANONYMITY - 1,), True, (None,)),
    ],
)
def test_k_anonymity_hides_small_cells_and_the_one_that_would_reveal_them(
    counts: tuple[int, ...], published: bool, expected: tuple[int | None, ...]
) -> None:
    cells = suppress(counts, total_published=published)
    assert tuple(c.value for c in cells) == expected
    assert all(c.display == "< 5" for c in cells if c.suppressed)


def test_the_default_period_is_the_last_full_calendar_quarter() -> None:
    assert last_full_quarter(date(2025, 5, 14)) == Q1_2025
    assert last_full_quarter(date(2025, 1, 1)) == Period(date(2024, 10, 1), date(2025, 1, 1))


@pytest.mark.parametrize(
    ("start", "end", "message"),
    [
        ("2025-04-01", "2025-01-01", "on or before it starts"),
        ("2025-01-01", "2025-01-01", "on or before it starts"),
        ("2025-13-01", "2025-04-01", "not a date"),
        ("2023-01-01", "2025-01-01", "at most 366 days"),
    ],
)
def test_a_bad_period_is_refused_saying_why(start: str, end: str, message: str) -> None:
    with pytest.raises(PeriodError, match=message):
        Period.parse(start, end)
