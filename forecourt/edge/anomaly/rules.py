"""The anomaly rules: pure functions of recent events, the thresholds and the instant ``now``.

No I/O and no clock of their own, so every boundary is a unit test. Each rule returns the
anomalies it sees now (empty when all is well); :func:`evaluate` runs them all. Window semantics
(left-open, right-closed) are described in :mod:`forecourt.edge.anomaly.model`.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Final

from forecourt.edge.anomaly.model import (
    ActivationEvent,
    Anomaly,
    AnomalyCode,
    OfflineUse,
    RecentEvents,
    Severity,
    SigninState,
    Thresholds,
)

#: The workflow state that ends a row of refusals.
_SUCCESS: Final = "done"


@dataclass(frozen=True, slots=True)
class Window:
    """The busiest window found: how many distinct keys, and the first and last event in it."""

    count: int
    first: datetime
    last: datetime


def in_lookback(at: datetime, now: datetime, lookback: timedelta) -> bool:
    """True for ``now - lookback < at <= now``: the only events any rule counts."""
    return now - lookback < at <= now


def busiest_window(events: Iterable[tuple[datetime, Hashable]], window: timedelta) -> Window | None:
    """The window ``(t - window, t]`` (``t`` an event's time) holding the most distinct keys.

    Ties go to the earliest window. None for no events. Linear after sorting: a two-pointer sweep
    with a multiset of the keys inside the window.
    """
    ordered = sorted(events, key=lambda e: e[0])
    best: Window | None = None
    inside: Counter[Hashable] = Counter()
    left = 0
    for right, (at, key) in enumerate(ordered):
        inside[key] += 1
        if right + 1 < len(ordered) and ordered[right + 1][0] == at:
            continue  # the window ending at ``at`` also holds the later events stamped ``at``
        while ordered[left][0] <= at - window:
            old = ordered[left][1]
            inside[old] -= 1
            if not inside[old]:
                del inside[old]
            left += 1
        if best is None or len(inside) > best.count:
            best = Window(len(inside), ordered[left][0], at)
    return best


def activation_burst(
    activations: Sequence[ActivationEvent], thresholds: Thresholds, now: datetime
) -> list[Anomaly]:
    """One operator started activations of more than ``burst_max_cars`` cars in one window."""
    t = thresholds
    by_operator = _by_operator(a for a in activations if in_lookback(a.started_at, now, t.lookback))
    found = []
    for (_, name), mine in by_operator.items():
        w = busiest_window(((a.started_at, a.vin) for a in mine), t.burst_window)
        if w is None or w.count <= t.burst_max_cars:
            continue
        found.append(
            Anomaly(
                code=AnomalyCode.ACTIVATION_BURST,
                severity=Severity.CRITICAL,
                subject=f"operator:{name}",
                message=(
                    f"{name} started activations of {w.count} cars between "
                    f"{_at(w.first, t)} and {_at(w.last, t)} "
                    f"(limit {t.burst_max_cars} in {_span(t.burst_window)})."
                ),
                recommendation=(
                    f"Confirm with {name} that these cars were meant to be activated; if not, "
                    "deactivate the account, cancel running activations and review the ledger. "
                    "Planned fleet work belongs in a reviewed batch."
                ),
                count=w.count,
                first_seen=w.first,
                last_seen=w.last,
            )
        )
    return found


def repeated_refusals(
    activations: Sequence[ActivationEvent], thresholds: Thresholds, now: datetime
) -> list[Anomaly]:
    """``refusal_run`` refusals in a row for one operator or one VIN, within ``refusal_window``."""
    t = thresholds
    ended = sorted(
        (
            a
            for a in activations
            if a.ended_at is not None and in_lookback(a.ended_at, now, t.lookback)
        ),
        key=lambda a: (a.ended_at, a.started_at, a.workflow_id),
    )
    found = []
    groups: list[tuple[str, str, Callable[[ActivationEvent], str]]] = [
        ("operator", "operator", lambda a: a.operator_id),
        ("vin", "car", lambda a: a.vin),
    ]
    for kind, noun, key_of in groups:
        rows: dict[str, list[ActivationEvent]] = defaultdict(list)
        for a in ended:
            rows[key_of(a)].append(a)
        for mine in rows.values():
            run = _longest_refusal_run(mine, t)
            if not run:
                continue
            label = mine[0].operator if kind == "operator" else mine[0].vin
            codes = ", ".join(sorted({a.code or "" for a in run}))
            count = len(run)
            found.append(
                Anomaly(
                    code=AnomalyCode.REPEATED_REFUSALS,
                    severity=Severity.CRITICAL if count >= 2 * t.refusal_run else Severity.WARNING,
                    subject=f"{kind}:{label}",
                    message=(
                        f"{count} activations in a row refused for {noun} {label} ({codes}) "
                        f"between {_at(_ended(run[0]), t)} and {_at(_ended(run[-1]), t)}."
                    ),
                    recommendation=(
                        "Check that the right car is connected and assigned to this dealer and "
                        "that the operator holds the needed role; repeated refusals without a "
                        "reason look like probing or tampering: inspect the car and the ledger."
                    ),
                    count=count,
                    first_seen=_ended(run[0]),
                    last_seen=_ended(run[-1]),
                )
            )
    return found


def off_hours(
    activations: Sequence[ActivationEvent], thresholds: Thresholds, now: datetime
) -> list[Anomaly]:
    """Activations started outside the store's opening hours, one anomaly per operator."""
    t = thresholds
    zone = t.zone
    outside = [
        a
        for a in activations
        if in_lookback(a.started_at, now, t.lookback)
        and not is_open(a.started_at.astimezone(zone).time(), t.opening, t.closing)
    ]
    found = []
    for (_, name), mine in _by_operator(outside).items():
        first = min(a.started_at for a in mine)
        last = max(a.started_at for a in mine)
        found.append(
            Anomaly(
                code=AnomalyCode.OFF_HOURS,
                severity=Severity.WARNING,
                subject=f"operator:{name}",
                message=(
                    f"{name} started {len(mine)} activation(s) outside opening hours "
                    f"{t.opening:%H:%M}–{t.closing:%H:%M} ({_zone_note(t)}), "
                    f"first {_at(first, t)}, last {_at(last, t)}."
                ),
                recommendation=(
                    f"Ask {name} why the work was done after hours; if nobody should have been "
                    "at the box, deactivate the account and check the ledger for those cars. "
                    "If the store's hours differ, set them (see docs/operations.md)."
                ),
                count=len(mine),
                first_seen=first,
                last_seen=last,
            )
        )
    return found


def signin_failures(
    signins: Sequence[SigninState], thresholds: Thresholds, now: datetime
) -> list[Anomaly]:
    """Accounts locked out (critical) or with ``signin_failures`` failures in a row (warning)."""
    found = []
    for s in signins:
        locked = s.locked_until is not None and s.locked_until > now
        if not locked and s.consecutive_failures < thresholds.signin_failures:
            continue
        state = f"locked until {_at(s.locked_until, thresholds)}" if locked else "not locked yet"
        found.append(
            Anomaly(
                code=AnomalyCode.SIGNIN_FAILURES,
                severity=Severity.CRITICAL if locked else Severity.WARNING,
                subject=f"operator:{s.operator}",
                message=(
                    f"{s.consecutive_failures} failed sign-ins or TOTP codes in a row for "
                    f"{s.operator} ({state})."
                ),
                recommendation=(
                    f"Ask {s.operator} whether they mistyped; if not, someone is guessing: "
                    "deactivate the account, reset its password and TOTP, check who had access "
                    "to the console."
                ),
                count=s.consecutive_failures,
            )
        )
    return found


def offline_use_spike(
    uses: Sequence[OfflineUse], thresholds: Thresholds, now: datetime
) -> list[Anomaly]:
    """More than ``offline_max_uses`` offline packages used in the store within one window."""
    t = thresholds
    recent = [u for u in uses if in_lookback(u.used_at, now, t.lookback)]
    w = busiest_window(((u.used_at, u.package_id) for u in recent), t.offline_window)
    if w is None or w.count <= t.offline_max_uses:
        return []
    return [
        Anomaly(
            code=AnomalyCode.OFFLINE_USE_SPIKE,
            severity=Severity.WARNING,
            subject="store",
            message=(
                f"{w.count} offline activation packages used between {_at(w.first, t)} and "
                f"{_at(w.last, t)} (limit {t.offline_max_uses} in {_span(t.offline_window)})."
            ),
            recommendation=(
                "Check whether the cloud link was really down (status: cloud, outbox); offline "
                "packages are for outages only. Reconcile the used packages with the cars worked "
                "on and reorder stock."
            ),
            count=w.count,
            first_seen=w.first,
            last_seen=w.last,
        )
    ]


def evaluate(events: RecentEvents, thresholds: Thresholds, now: datetime) -> list[Anomaly]:
    """Every rule over ``events``; critical first, then by code and subject (stable order)."""
    found = [
        *activation_burst(events.activations, thresholds, now),
        *repeated_refusals(events.activations, thresholds, now),
        *off_hours(events.activations, thresholds, now),
        *signin_failures(events.signins, thresholds, now),
        *offline_use_spike(events.offline_uses, thresholds, now),
    ]
    return sorted(found, key=lambda a: (a.severity != Severity.CRITICAL, a.code, a.subject))


def is_open(local: time, opening: time, closing: time) -> bool:
    """Inside ``[opening, closing)``; across midnight when ``opening > closing``; equal: always."""
    if opening == closing:
        return True
    if opening < closing:
        return opening <= local < closing
    return local >= opening or local < closing


# -- helpers -------------------------------------------------------------------------------------


def _longest_refusal_run(
    ended: Sequence[ActivationEvent], t: Thresholds
) -> list[ActivationEvent] | None:
    """The longest row of refusals that has ``refusal_run`` of them within ``refusal_window``."""
    best: list[ActivationEvent] | None = None
    run: list[ActivationEvent] = []
    qualifies = False
    for a in [*ended, None]:
        if a is not None and a.code in t.refusal_codes and a.state != _SUCCESS:
            run.append(a)
            n = t.refusal_run
            if len(run) >= n and _ended(run[-1]) - _ended(run[-n]) < t.refusal_window:
                qualifies = True
            continue
        if a is not None and a.state != _SUCCESS:
            continue  # neither a refusal nor a success: does not break the row
        if qualifies and (best is None or len(run) > len(best)):
            best = run
        run, qualifies = [], False
    return best


def _ended(a: ActivationEvent) -> datetime:
    assert a.ended_at is not None  # only ended activations reach the refusal rule
    return a.ended_at


def _by_operator(
    activations: Iterable[ActivationEvent],
) -> dict[tuple[str, str], list[ActivationEvent]]:
    groups: dict[tuple[str, str], list[ActivationEvent]] = defaultdict(list)
    for a in activations:
        groups[(a.operator_id, a.operator)].append(a)
    return groups


def _at(at: datetime | None, t: Thresholds) -> str:
    if at is None:
        return "?"
    return at.astimezone(t.zone).strftime("%Y-%m-%d %H:%M")


def _zone_note(t: Thresholds) -> str:
    if t.timezone == "UTC":
        return "UTC: no store time zone configured"
    return t.timezone


def _span(d: timedelta) -> str:
    minutes = int(d.total_seconds() // 60)
    if minutes and minutes % 60 == 0:
        return f"{minutes // 60} h"
    return f"{minutes} min" if minutes else f"{d.total_seconds():g} s"
