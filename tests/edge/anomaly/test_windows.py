"""Properties of the window logic, against a brute-force reading of the documented semantics.

A window of length W ending at t holds events with t - W < at <= t; only events in
(now - lookback, now] are ever counted.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from forecourt.edge.anomaly import ActivationEvent, OfflineUse, Thresholds
from forecourt.edge.anomaly.rules import (
    activation_burst,
    busiest_window,
    offline_use_spike,
    repeated_refusals,
)

NOW = datetime(2025, 3, 3, 12, 0, tzinfo=UTC)
T = Thresholds(burst_max_cars=3, offline_max_uses=2, refusal_run=2)

#: Offsets before now, in seconds, on a coarse grid so equal times and exact edges occur often.
offsets = st.integers(min_value=0, max_value=3 * 3600).map(lambda s: s - s % 60)
windows = st.integers(min_value=1, max_value=120).map(lambda m: timedelta(minutes=m))
keyed = st.lists(st.tuples(offsets, st.integers(0, 6)), max_size=30)


def brute_force(events: list[tuple[datetime, int]], window: timedelta) -> int:
    return max((len({k for at, k in events if t - window < at <= t}) for t, _ in events), default=0)


@settings(max_examples=300, deadline=None)
@given(keyed, windows)
def test_busiest_window_is_the_brute_force_maximum(
    raw: list[tuple[int, int]], w: timedelta
) -> None:
    events = [(NOW - timedelta(seconds=s), k) for s, k in raw]
    found = busiest_window(events, w)
    assert (found.count if found else 0) == brute_force(events, w)
    if found is not None:
        inside = {k for at, k in events if found.last - w < at <= found.last}
        assert len(inside) == found.count
        assert found.last - w < found.first <= found.last


def _activation(at: datetime, car: int, operator: str = "alice") -> ActivationEvent:
    return ActivationEvent(
        workflow_id=f"wf-{operator}-{car}-{at.isoformat()}",
        operator_id=f"id-{operator}",
        operator=operator,
        vin=f"VIN{car:014d}",
        started_at=at,
        state="refused",
        ended_at=at,
        code="cloud_refused",
    )


outside = st.one_of(
    # at or before the look-back's open end, or after now
    st.integers(0, 3600).map(lambda s: NOW - T.lookback - timedelta(seconds=s)),
    st.integers(1, 3600).map(lambda s: NOW + timedelta(seconds=s)),
)


@settings(max_examples=200, deadline=None)
@given(keyed, st.lists(st.tuples(outside, st.integers(0, 20)), max_size=30))
def test_events_outside_the_lookback_never_count(
    raw: list[tuple[int, int]], noise: list[tuple[datetime, int]]
) -> None:
    inside = [_activation(NOW - timedelta(seconds=s), k) for s, k in raw]
    extra = [_activation(at, 100 + k) for at, k in noise]
    assert activation_burst(inside + extra, T, NOW) == activation_burst(inside, T, NOW)
    assert repeated_refusals(inside + extra, T, NOW) == repeated_refusals(inside, T, NOW)
    uses = [
        OfflineUse(f"p{i}", f"V{i}", NOW - timedelta(seconds=s)) for i, (s, _) in enumerate(raw)
    ]
    more = [OfflineUse(f"q{i}", f"W{i}", at) for i, (at, _) in enumerate(noise)]
    assert offline_use_spike(uses + more, T, NOW) == offline_use_spike(uses, T, NOW)


@settings(max_examples=300, deadline=None)
@given(keyed)
def test_burst_fires_exactly_when_some_window_holds_too_many_cars(
    raw: list[tuple[int, int]],
) -> None:
    events = [(NOW - timedelta(seconds=s), k) for s, k in raw if s < T.lookback.total_seconds()]
    fired = activation_burst([_activation(at, k) for at, k in events], T, NOW)
    assert bool(fired) is (brute_force(events, T.burst_window) > T.burst_max_cars)


@settings(max_examples=300, deadline=None)
@given(st.lists(offsets, max_size=12))
def test_refusals_fire_exactly_when_a_run_fits_the_window(raw: list[int]) -> None:
    # every event a refusal, no success: the row is all of them, by end time
    ends = sorted(NOW - timedelta(seconds=s) for s in raw)
    events = [_activation(at, i) for i, at in enumerate(ends)]
    n = T.refusal_run
    expected = any(ends[i + n - 1] - ends[i] < T.refusal_window for i in range(len(ends) - n + 1))
    found = [a for a in repeated_refusals(events, T, NOW) if a.subject.startswith("operator:")]
    assert bool(found) is expected
