"""Diagnostic session and its S3 timer, driven by an injectable clock.

ISO 14229-1 §9.2 / ISO 14229-2: a non-default session falls back to the default session when no
request (or TesterPresent) arrives for S3_server (5 s). Falling back also drops security access and
authentication, which is the point: a tester that walks away leaves a locked ECU.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Protocol

S3_SERVER_SECONDS = 5.0
P2_SERVER_MS = 50
P2_STAR_SERVER_MS = 5000


class Clock(Protocol):
    def monotonic(self) -> float: ...


class SystemClock:
    def monotonic(self) -> float:
        return time.monotonic()


class DiagnosticSession(IntEnum):
    DEFAULT = 0x01
    PROGRAMMING = 0x02
    EXTENDED = 0x03


@dataclass
class SessionState:
    """Per-ECU session, security level and authenticated tester; reset on S3 expiry."""

    clock: Clock
    s3_seconds: float = S3_SERVER_SECONDS
    session: DiagnosticSession = DiagnosticSession.DEFAULT
    security_level: int | None = None
    authenticated_role: str | None = None
    _last_activity: float = field(default=0.0)

    def touch(self) -> bool:
        """Record tester activity; return True when the session timed out since the last one."""
        now = self.clock.monotonic()
        expired = (
            self.session is not DiagnosticSession.DEFAULT
            and now - self._last_activity > self.s3_seconds
        )
        if expired:
            self.reset()
        self._last_activity = now
        return expired

    def change(self, session: DiagnosticSession) -> None:
        """A session change always drops security access; authentication survives only in place."""
        if session is not self.session or session is DiagnosticSession.DEFAULT:
            self.security_level = None
        if session is DiagnosticSession.DEFAULT:
            self.authenticated_role = None
        self.session = session

    def reset(self) -> None:
        self.session = DiagnosticSession.DEFAULT
        self.security_level = None
        self.authenticated_role = None

    @property
    def unlocked(self) -> bool:
        return self.security_level is not None or self.authenticated_role is not None
