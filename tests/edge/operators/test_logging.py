"""Failures, lock-outs and reviews are logged; passwords, TOTP secrets, codes and tokens are not."""

from __future__ import annotations

import json

import pytest
import structlog
from structlog.testing import capture_logs

from forecourt.edge.operators import (
    AuthenticationFailed,
    OperatorService,
    ReviewKind,
    ReviewService,
    Role,
)
from forecourt.edge.operators.totp import code_at
from forecourt.logging import configure_logging
from tests.edge.operators.conftest import DEALER, FakeClock, Staff


def _exercise(
    operators: OperatorService, reviews: ReviewService, staff: Staff, clock: FakeClock
) -> list[str]:
    """Successes, every kind of failure and a lock-out; returns the secrets that were used."""
    tech = staff.hire(Role.TECHNICIAN)
    senior = staff.hire(Role.SENIOR_TECHNICIAN)
    name = tech.operator.username
    used: list[str] = [tech.password, tech.totp_secret, senior.totp_secret, "wrong-password-xyz"]
    ok = operators.login(DEALER, name, tech.password, used_code := tech.code())
    used += [ok.session_token, ok.csrf_token, used_code]
    req = reviews.request(tech.operator, ReviewKind.OFFLINE_USE, {}, dealer_id=DEALER, reason="x")
    reviews.approve(senior.operator, req.id, step_up := senior.code())
    used.append(step_up)
    clock.advance(30)
    for _ in range(operators.policy.max_failed_attempts):
        with pytest.raises(AuthenticationFailed):
            operators.login(DEALER, name, "wrong-password-xyz", tech.code())
    used.append(code_at(tech.totp_secret, clock()))
    return used


def test_log_events_never_contain_secrets(
    operators: OperatorService, reviews: ReviewService, staff: Staff, clock: FakeClock
) -> None:
    with capture_logs() as events:  # raw events, before any redaction: nothing to redact
        used = _exercise(operators, reviews, staff, clock)
    names = [e["event"] for e in events]
    assert {"login_failed", "operator_locked", "review_approved", "login_succeeded"} <= set(names)
    text = repr(events)
    for secret in used:
        assert secret not in text


def test_rendered_json_log_output_never_contains_secrets(
    operators: OperatorService,
    reviews: ReviewService,
    staff: Staff,
    clock: FakeClock,
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging("INFO", json=True)
    try:
        used = _exercise(operators, reviews, staff, clock)
        err = capsys.readouterr().err
    finally:
        structlog.reset_defaults()
    lines = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    assert any(line["event"] == "operator_locked" for line in lines)
    for secret in used:
        assert secret not in err
