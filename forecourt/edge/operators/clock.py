"""The injectable clock: services ask it for "now" so that tests move time instead of sleeping."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], datetime]


def system_clock() -> datetime:
    """Wall-clock time, timezone-aware UTC."""
    return datetime.now(UTC)
