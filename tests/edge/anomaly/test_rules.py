"""Each rule at its boundary: one event short of firing does not fire, the next one does."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pytest

from forecourt.edge.anomaly import (
    ActivationEvent,
    AnomalyCode,
    OfflineUse,
    RecentEvents,
    Severity,
    SigninState,
    Thresholds,
    evaluate,
)
from forecourt.edge.anomaly.rules import (
    activation_burst,
    is_open,
    off_hours,
    offline_use_spike,
    repeated_refusals,
    signin_failures,
)

NOW = datetime(2025, 3, 3, 12, 0, tzinfo=UTC)
T = Thresholds()


def vin(n: int) -> str:
    return f"WVWZZZ1JZXW{n:06d}"


def started(
    at: datetime, n: int = 0, *, operator: str = "alice", state: str = "done"
) -> ActivationEvent:
    return ActivationEvent(
        workflow_id=f"wf-{operator}-{n}-{at.isoformat()}",
        operator_id=f"id-{operator}",
        operator=operator,
        vin=vin(n),
        started_at=at,
        state=state,
    )


def ended(
    at: datetime, code: str | None, n: int = 0, *, operator: str = "alice"
) -> ActivationEvent:
    state = "done" if code is None else "refused"
    return ActivationEvent(
        workflow_id=f"wf-{operator}-{n}-{at.isoformat()}",
        operator_id=f"id-{operator}",
        operator=operator,
        vin=vin(n),
        started_at=at - timedelta(seconds=30),
        state=state,
        ended_at=at,
        code=code,
    )


# -- activation_burst ----------------------------------------------------------------------------


def test_ten_cars_in_ten_minutes_is_allowed_eleven_is_a_burst() -> None:
    ten = [started(NOW - timedelta(seconds=50 * i), i) for i in range(10)]
    assert activation_burst(ten, T, NOW) == []
    eleven = [*ten, started(NOW - timedelta(seconds=500), 10)]
    (burst,) = activation_burst(eleven, T, NOW)
    assert burst.code is AnomalyCode.ACTIVATION_BURST and burst.severity is Severity.CRITICAL
    assert burst.subject == "operator:alice" and burst.count == 11
    assert "11 cars" in burst.message and "limit 10 in 10 min" in burst.message
    assert "deactivate the account" in burst.recommendation


def test_an_event_exactly_one_window_before_the_last_is_outside_it() -> None:
    last = NOW - timedelta(minutes=1)
    inside = [started(last - timedelta(seconds=59 * i), i) for i in range(10)]
    on_edge = started(last - T.burst_window, 10)  # (t - W, t]: t - W itself is outside
    assert activation_burst([*inside, on_edge], T, NOW) == []
    just_inside = started(last - T.burst_window + timedelta(microseconds=1), 10)
    assert len(activation_burst([*inside, just_inside], T, NOW)) == 1


def test_the_same_car_again_is_not_another_car() -> None:
    retries = [started(NOW - timedelta(seconds=10 * i), 0) for i in range(30)]
    assert activation_burst(retries, T, NOW) == []


def test_two_operators_each_under_the_limit_raise_nothing() -> None:
    events = [started(NOW - timedelta(seconds=20 * i), i, operator="alice") for i in range(8)]
    events += [started(NOW - timedelta(seconds=20 * i), 50 + i, operator="bob") for i in range(8)]
    assert activation_burst(events, T, NOW) == []


def test_a_burst_older_than_the_lookback_is_no_longer_shown() -> None:
    old = NOW - T.lookback
    burst = [started(old + timedelta(seconds=i + 1), i) for i in range(11)]
    assert len(activation_burst(burst, T, NOW)) == 1  # (now - lookback, now]: still inside
    moved = [started(old - timedelta(seconds=1) + timedelta(microseconds=i), i) for i in range(11)]
    assert activation_burst(moved, T, NOW) == []


# -- repeated_refusals ---------------------------------------------------------------------------


def test_three_refusals_in_a_row_for_one_operator_within_fifteen_minutes() -> None:
    two = [ended(NOW - timedelta(minutes=m), "cloud_refused", m) for m in (1, 5)]
    assert repeated_refusals(two, T, NOW) == []
    three = [*two, ended(NOW - timedelta(minutes=9), "vin_mismatch", 9)]
    (found,) = repeated_refusals(three, T, NOW)
    assert found.subject == "operator:alice" and found.count == 3
    assert found.severity is Severity.WARNING
    assert "cloud_refused, vin_mismatch" in found.message


def test_three_refusals_spread_over_exactly_the_window_do_not_fire() -> None:
    spread = [
        ended(NOW - T.refusal_window, "cloud_refused", 1),
        ended(NOW - timedelta(minutes=7), "cloud_refused", 2),
        ended(NOW, "cloud_refused", 3),
    ]
    assert repeated_refusals(spread, T, NOW) == []
    tighter = [
        ended(NOW - T.refusal_window + timedelta(microseconds=1), "cloud_refused", 1),
        *spread[1:],
    ]
    assert len(repeated_refusals(tighter, T, NOW)) == 1


def test_a_success_breaks_the_row_other_failures_do_not() -> None:
    at = [NOW - timedelta(minutes=m) for m in (10, 8, 6, 4)]
    broken = [
        ended(at[0], "cloud_refused", 1),
        ended(at[1], "cloud_refused", 2),
        ended(at[2], None, 3),  # done
        ended(at[3], "cloud_refused", 4),
    ]
    assert repeated_refusals(broken, T, NOW) == []
    link_lost = ActivationEvent(
        "wf-x", "id-alice", "alice", vin(3), at[2], "failed", ended_at=at[2], code="link_error"
    )
    neutral = [*broken[:2], link_lost, broken[3]]
    (found,) = repeated_refusals(neutral, T, NOW)
    assert found.count == 3


def test_a_rejected_review_is_not_a_refusal_that_counts() -> None:
    rejected = [ended(NOW - timedelta(minutes=m), "review_rejected", m) for m in (1, 2, 3, 4)]
    assert repeated_refusals(rejected, T, NOW) == []


def test_refusals_for_one_car_by_different_operators_are_seen_on_the_car() -> None:
    events = [
        ended(NOW - timedelta(minutes=m), "vin_mismatch", 7, operator=op)
        for m, op in ((1, "alice"), (2, "bob"), (3, "carol"))
    ]
    (found,) = repeated_refusals(events, T, NOW)
    assert found.subject == f"vin:{vin(7)}" and "car " + vin(7) in found.message


def test_six_refusals_in_a_row_are_critical() -> None:
    events = [ended(NOW - timedelta(minutes=m), "cloud_refused", m) for m in range(1, 7)]
    by_subject = {a.subject: a for a in repeated_refusals(events, T, NOW)}
    assert by_subject["operator:alice"].severity is Severity.CRITICAL
    assert by_subject["operator:alice"].count == 6


# -- off_hours -----------------------------------------------------------------------------------


def test_opening_time_is_inside_closing_time_is_outside() -> None:
    day = NOW.replace(hour=0, minute=0)
    at_open = started(day.replace(hour=7), 1)
    before_close = started(day.replace(hour=19, minute=59, second=59), 2)
    assert off_hours([at_open, before_close], T, NOW.replace(hour=23)) == []
    at_close = started(day.replace(hour=20), 3)
    before_open = started(day.replace(hour=6, minute=59, second=59), 4)
    (found,) = off_hours([at_open, at_close, before_open], T, NOW.replace(hour=23))
    assert found.count == 2 and found.severity is Severity.WARNING
    assert "UTC: no store time zone configured" in found.message


def test_opening_hours_are_store_local_time() -> None:
    berlin = Thresholds(timezone="Europe/Berlin")
    # 06:30 UTC in March is 07:30 in Berlin (CET, UTC+1): open there, closed in UTC
    morning = started(NOW.replace(hour=6, minute=30), 1)
    assert off_hours([morning], berlin, NOW) == []
    assert len(off_hours([morning], T, NOW)) == 1
    # 19:30 UTC is 20:30 in Berlin: closed there
    (late,) = off_hours(
        [started(NOW.replace(hour=19, minute=30) - timedelta(days=1), 2)], berlin, NOW
    )
    assert "Europe/Berlin" in late.message and "20:30" in late.message


@pytest.mark.parametrize(
    ("opening", "closing", "local", "open_"),
    [
        (time(22), time(6), time(23), True),
        (time(22), time(6), time(5, 59), True),
        (time(22), time(6), time(6), False),
        (time(22), time(6), time(12), False),
        (time(0), time(0), time(3), True),
    ],
)
def test_opening_hours_across_midnight_and_around_the_clock(
    opening: time, closing: time, local: time, open_: bool
) -> None:
    assert is_open(local, opening, closing) is open_


# -- signin_failures -----------------------------------------------------------------------------


def test_two_failures_are_a_typo_three_a_warning_a_lock_critical() -> None:
    assert signin_failures([SigninState("id-a", "alice", 2)], T, NOW) == []
    (warn,) = signin_failures([SigninState("id-a", "alice", 3)], T, NOW)
    assert warn.severity is Severity.WARNING and "3 failed" in warn.message
    locked = SigninState("id-a", "alice", 5, NOW + timedelta(minutes=10))
    (crit,) = signin_failures([locked], T, NOW)
    assert crit.severity is Severity.CRITICAL and "locked until" in crit.message
    assert "reset its password" in crit.recommendation


def test_a_lock_that_ran_out_is_no_longer_critical() -> None:
    expired = SigninState("id-a", "alice", 1, NOW)  # locked_until == now: no longer locked
    assert signin_failures([expired], T, NOW) == []


# -- offline_use_spike ---------------------------------------------------------------------------


def test_three_offline_packages_an_hour_are_fine_four_are_a_spike() -> None:
    uses = [OfflineUse(f"p{i}", vin(i), NOW - timedelta(minutes=15 * i)) for i in range(3)]
    assert offline_use_spike(uses, T, NOW) == []
    fourth = OfflineUse("p3", vin(3), NOW - timedelta(minutes=59))
    (spike,) = offline_use_spike([*uses, fourth], T, NOW)
    assert spike.subject == "store" and spike.count == 4
    hour_ago = OfflineUse("p3", vin(3), NOW - timedelta(hours=1))  # exactly W back: outside
    assert offline_use_spike([*uses, hour_ago], T, NOW) == []


# -- all together --------------------------------------------------------------------------------


def test_evaluate_lists_critical_first_and_nothing_when_all_is_quiet() -> None:
    assert evaluate(RecentEvents(), T, NOW) == []
    events = RecentEvents(
        activations=(started(NOW.replace(hour=3), 1),),
        signins=(SigninState("id-b", "bob", 5, NOW + timedelta(minutes=1)),),
    )
    found = evaluate(events, T, NOW)
    assert [a.code for a in found] == [AnomalyCode.SIGNIN_FAILURES, AnomalyCode.OFF_HOURS]


@pytest.mark.parametrize(
    ("bad", "says"),
    [
        ({"burst_window": timedelta(0)}, "burst_window must be positive"),
        ({"refusal_run": 0}, "refusal_run must be at least 1"),
        ({"signin_failures": 0}, "signin_failures must be at least 1"),
        ({"burst_max_cars": -1}, "burst_max_cars must not be negative"),
        ({"timezone": "Mars/Olympus_Mons"}, "unknown time zone"),
    ],
)
def test_nonsense_thresholds_are_refused(bad: dict[str, object], says: str) -> None:
    with pytest.raises(ValueError, match=says):
        Thresholds(**bad)  # type: ignore[arg-type]
