"""The edge box's self-check as the status page and ``/api/v1/status`` show it.

Each check answers "can this store activate a car right now, and if not, why": the database
answers, the ledger has a recent signed checkpoint, the outbox is draining (no dead messages),
offline packages are in stock for when the backbone fails, the package cache has what cars need.
After them, one ``anomaly_<code>`` check per active anomaly (activation bursts, refusals in a row,
off-hours work, failed sign-ins, offline packages used fast; see :mod:`forecourt.edge.anomaly`),
its summary saying what was seen and what to do; or one ``anomalies`` check ``ok`` when none is.
A check that cannot run reports ``error`` with its reason; it never hides behind ``ok``.
"""

from __future__ import annotations

from collections import Counter

from sqlalchemy import text

from forecourt.edge.anomaly import Anomaly, Severity
from forecourt.edge.app.checks import Check
from forecourt.edge.app.services import EdgeServices
from forecourt.logging import get_logger

_log = get_logger("edge.app.status")
__all__ = ["Check", "anomaly_checks", "overall", "self_check"]


def self_check(services: EdgeServices) -> list[Check]:
    checks = []
    for name, probe in (
        ("database", _database),
        ("ledger", _ledger),
        ("outbox", _outbox),
        ("offline_stock", _offline),
        ("package_cache", _cache),
    ):
        try:
            checks.append(probe(services))
        except Exception as exc:  # a broken probe is reported, not raised
            _log.exception("self_check_failed", check=name)
            checks.append(Check(name, "error", f"{type(exc).__name__}: {exc}"))
    try:
        checks.extend(anomaly_checks(services.anomalies.evaluate()))
    except Exception as exc:  # an anomaly scan that cannot run is an error row, not a crash
        _log.exception("self_check_failed", check="anomalies")
        checks.append(Check("anomalies", "error", f"{type(exc).__name__}: {exc}"))
    for extra in services.host_checks:
        try:
            checks.append(extra())
        except Exception as exc:  # the same rule for the box's own probes
            _log.exception("self_check_failed", check=getattr(extra, "__name__", "host"))
            checks.append(Check(getattr(extra, "__name__", "host"), "error", str(exc)))
    return checks


def overall(checks: list[Check]) -> str:
    states = {c.status for c in checks}
    return "error" if "error" in states else "warn" if "warn" in states else "ok"


def _database(services: EdgeServices) -> Check:
    with services.sessions() as s:
        s.execute(text("SELECT 1"))
    return Check("database", "ok", "answers")


def _ledger(services: EdgeServices) -> Check:
    size = services.ledger.store.size()
    note = services.ledger.store.latest_checkpoint_note()
    signed = 0 if note is None else int(note.split("\n")[1])
    behind = size - signed
    status = "ok" if behind == 0 else "warn"
    return Check(
        "ledger",
        status,
        f"{size} entries, latest checkpoint covers {signed}",
        {"size": size, "checkpoint_size": signed},
    )


def _outbox(services: EdgeServices) -> Check:
    if services.outbox is None:
        return Check("outbox", "warn", "no dispatcher configured")
    pending = services.outbox.pending_count()
    dead = len(services.outbox.dead())
    status = "error" if dead else "ok"
    return Check(
        "outbox",
        status,
        f"{pending} pending, {dead} dead",
        {"pending": pending, "dead": dead},
    )


def _offline(services: EdgeServices) -> Check:
    counts = Counter(p.state.value for p in services.offline.stock())
    available = counts.get("available", 0)
    double = counts.get("double_used", 0)
    status = "error" if double else "ok" if available else "warn"
    return Check(
        "offline_stock",
        status,
        f"{available} available, {double} used twice",
        {"by_state": dict(counts)},
    )


def _cache(services: EdgeServices) -> Check:
    if services.cache_freshness is None:
        return Check("package_cache", "warn", "no package cache configured")
    f = services.cache_freshness()
    status = "error" if f.corruptions_detected else "warn" if f.missing else "ok"
    return Check(
        "package_cache",
        status,
        f"{f.packages} packages, {f.bytes_used}/{f.budget_bytes} bytes, {len(f.missing)} missing",
        {
            "packages": f.packages,
            "bytes_used": f.bytes_used,
            "budget_bytes": f.budget_bytes,
            "missing": list(f.missing),
            "hits": f.hits,
            "misses": f.misses,
            "corruptions_detected": f.corruptions_detected,
        },
    )


def anomaly_checks(anomalies: list[Anomaly]) -> list[Check]:
    """A check per anomaly (critical: ``error``, warning: ``warn``), or one ``ok`` row for none.

    The summary carries the recommendation too: ``forecourt edge status`` prints only summaries.
    """
    if not anomalies:
        return [Check("anomalies", "ok", "no anomalous activity seen")]
    return [
        Check(
            f"anomaly_{a.code.value}",
            "error" if a.severity is Severity.CRITICAL else "warn",
            f"{a.message} Recommended: {a.recommendation}",
            a.to_json(),
        )
        for a in anomalies
    ]
