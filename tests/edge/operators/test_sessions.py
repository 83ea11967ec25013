"""Sessions: stored hashed, bounded by lifetime and idle time, CSRF-bound, ended on logout or
password change."""

from __future__ import annotations

import hashlib

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from forecourt.edge.operators import (
    AuthenticationFailed,
    CsrfMismatch,
    OperatorService,
    PasswordPolicyViolation,
    Role,
    SessionInvalid,
)
from forecourt.store.edge import EdgeSession
from tests.edge.operators.conftest import DEALER, FakeClock, Staff


def test_session_token_is_stored_only_as_its_sha256(
    sessions: sessionmaker[Session], operators: OperatorService, staff: Staff
) -> None:
    tech = staff.hire(Role.TECHNICIAN)
    result = operators.login(DEALER, tech.operator.username, tech.password, tech.code())
    with sessions.begin() as s:
        stored = s.scalars(select(EdgeSession.token_sha256)).all()
    assert stored == [hashlib.sha256(result.session_token.encode()).hexdigest()]
    assert result.session_token not in stored


def test_idle_session_is_refused_and_an_active_one_is_kept_alive(
    operators: OperatorService, staff: Staff, clock: FakeClock
) -> None:
    tech = staff.hire(Role.TECHNICIAN)
    result = operators.login(DEALER, tech.operator.username, tech.password, tech.code())
    idle = operators.policy.session_idle_timeout.total_seconds()
    for _ in range(3):  # used just before each idle deadline: stays alive past 2× the timeout
        clock.advance(idle - 1)
        operators.authenticate(result.session_token)
    clock.advance(idle)
    with pytest.raises(SessionInvalid) as caught:
        operators.authenticate(result.session_token)
    assert caught.value.reason == "idle"


def test_session_ends_at_its_absolute_lifetime_despite_activity(
    operators: OperatorService, staff: Staff, clock: FakeClock
) -> None:
    tech = staff.hire(Role.TECHNICIAN)
    result = operators.login(DEALER, tech.operator.username, tech.password, tech.code())
    step = operators.policy.session_idle_timeout.total_seconds() - 1
    while clock() + operators.policy.session_idle_timeout < result.expires_at:
        clock.advance(step)
        operators.authenticate(result.session_token)
    clock.now = result.expires_at
    with pytest.raises(SessionInvalid) as caught:
        operators.authenticate(result.session_token)
    assert caught.value.reason == "expired"


def test_logout_ends_the_session_and_is_idempotent(
    operators: OperatorService, staff: Staff
) -> None:
    tech = staff.hire(Role.TECHNICIAN)
    result = operators.login(DEALER, tech.operator.username, tech.password, tech.code())
    operators.logout(result.session_token)
    operators.logout(result.session_token)
    with pytest.raises(SessionInvalid):
        operators.authenticate(result.session_token)


def test_unknown_token_is_refused(operators: OperatorService) -> None:
    with pytest.raises(SessionInvalid) as caught:
        operators.authenticate("forged-token")
    assert caught.value.reason == "unknown"


def test_csrf_token_of_the_session_is_required(operators: OperatorService, staff: Staff) -> None:
    tech = staff.hire(Role.TECHNICIAN)
    result = operators.login(DEALER, tech.operator.username, tech.password, tech.code())
    live = operators.authenticate(result.session_token)
    operators.check_csrf(live, result.csrf_token)
    for presented in (None, "", live.csrf_token[:-1] + "x"):
        with pytest.raises(CsrfMismatch):
            operators.check_csrf(live, presented)


def test_password_change_ends_every_session_and_the_new_password_works(
    operators: OperatorService, staff: Staff, clock: FakeClock
) -> None:
    tech = staff.hire(Role.TECHNICIAN)
    name = tech.operator.username
    first = operators.login(DEALER, name, tech.password, tech.code())
    clock.advance(30)
    second = operators.login(DEALER, name, tech.password, tech.code())
    operators.change_password(tech.operator, tech.password, "a brand new passphrase 42")
    for token in (first.session_token, second.session_token):
        with pytest.raises(SessionInvalid):
            operators.authenticate(token)
    clock.advance(30)
    with pytest.raises(AuthenticationFailed):
        operators.login(DEALER, name, tech.password, tech.code())
    clock.advance(30)
    operators.login(DEALER, name, "a brand new passphrase 42", tech.code())


def test_weak_new_password_is_refused_and_the_old_one_still_works(
    operators: OperatorService, staff: Staff
) -> None:
    tech = staff.hire(Role.TECHNICIAN)
    with pytest.raises(PasswordPolicyViolation):
        operators.change_password(tech.operator, tech.password, "short")
    operators.login(DEALER, tech.operator.username, tech.password, tech.code())


def test_deactivated_operator_loses_sessions_and_cannot_log_in(
    operators: OperatorService, staff: Staff, clock: FakeClock
) -> None:
    tech = staff.hire(Role.TECHNICIAN)
    live = operators.login(DEALER, tech.operator.username, tech.password, tech.code())
    operators.set_active(staff.admin().operator, tech.operator.id, active=False)
    with pytest.raises(SessionInvalid):
        operators.authenticate(live.session_token)
    clock.advance(30)
    with pytest.raises(AuthenticationFailed) as caught:
        operators.login(DEALER, tech.operator.username, tech.password, tech.code())
    assert caught.value.reason == "inactive"
