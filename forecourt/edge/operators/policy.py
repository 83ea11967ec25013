"""Tunable security parameters of operator accounts, sessions and reviews, with safe defaults."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta


@dataclass(frozen=True, slots=True)
class OperatorPolicy:
    #: Consecutive failed logins (or step-ups) that lock the account.
    max_failed_attempts: int = 5
    #: How long a locked account refuses every login.
    lockout_period: timedelta = timedelta(minutes=15)
    #: Absolute session lifetime (a shift), whatever the activity.
    session_lifetime: timedelta = timedelta(hours=10)
    #: A session unused for this long is dead.
    session_idle_timeout: timedelta = timedelta(minutes=30)
    #: Issuer shown in authenticator apps.
    totp_issuer: str = "Forecourt"
    #: How long a new operator's one-time enrolment code is accepted.
    enrolment_code_ttl: timedelta = timedelta(hours=24)

    def __post_init__(self) -> None:
        if self.max_failed_attempts < 1:
            raise ValueError("max_failed_attempts must be at least 1")
        if self.lockout_period <= timedelta(0):
            raise ValueError("lockout_period must be positive")
        if self.enrolment_code_ttl <= timedelta(0):
            raise ValueError("enrolment_code_ttl must be positive")
        if not timedelta(0) < self.session_idle_timeout <= self.session_lifetime:
            raise ValueError("need 0 < session_idle_timeout <= session_lifetime")


@dataclass(frozen=True, slots=True)
class ReviewPolicy:
    #: A request nobody decided within this time expires.
    request_ttl: timedelta = timedelta(hours=8)

    def __post_init__(self) -> None:
        if self.request_ttl <= timedelta(0):
            raise ValueError("request_ttl must be positive")
