"""Login with password + TOTP, replay refusal, clock drift, lock-out and its end, rehash."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy.orm import Session, sessionmaker

from forecourt.edge.operators import (
    AccountLocked,
    AlreadyBootstrapped,
    AuthenticationFailed,
    OperatorService,
    PasswordHashing,
    Role,
    SessionInvalid,
    bootstrap_first_admin,
)
from forecourt.edge.operators.totp import code_at
from forecourt.store.edge import EdgeOperator
from tests.edge.operators.conftest import DEALER, OTHER_DEALER, FakeClock, Staff


def test_login_with_password_and_fresh_code_opens_a_session(
    operators: OperatorService, staff: Staff
) -> None:
    tech = staff.hire(Role.TECHNICIAN)
    result = operators.login(DEALER, tech.operator.username, tech.password, tech.code())
    assert result.operator.id == tech.operator.id
    assert operators.authenticate(result.session_token).operator.id == tech.operator.id


def test_wrong_password_is_refused_without_opening_a_session(
    operators: OperatorService, staff: Staff
) -> None:
    tech = staff.hire(Role.TECHNICIAN)
    with pytest.raises(AuthenticationFailed) as caught:
        operators.login(DEALER, tech.operator.username, "not the password at all", tech.code())
    assert caught.value.reason == "password"


def test_wrong_totp_code_is_refused(operators: OperatorService, staff: Staff) -> None:
    tech = staff.hire(Role.TECHNICIAN)
    wrong = f"{(int(tech.code()) + 1) % 1_000_000:06d}"
    with pytest.raises(AuthenticationFailed) as caught:
        operators.login(DEALER, tech.operator.username, tech.password, wrong)
    assert caught.value.reason == "totp"


def test_replayed_totp_code_is_refused_within_its_window(
    operators: OperatorService, staff: Staff, clock: FakeClock
) -> None:
    tech = staff.hire(Role.TECHNICIAN)
    code = tech.code()
    operators.login(DEALER, tech.operator.username, tech.password, code)
    clock.advance(5)  # same 30 s step: the code is still "valid" on the phone
    with pytest.raises(AuthenticationFailed) as caught:
        operators.login(DEALER, tech.operator.username, tech.password, code)
    assert caught.value.reason == "totp_replayed"


@pytest.mark.parametrize(("offset_steps", "accepted"), [(-1, True), (1, True), (-2, False)])
def test_clock_drift_of_one_step_is_tolerated_and_two_are_not(
    operators: OperatorService, staff: Staff, clock: FakeClock, offset_steps: int, accepted: bool
) -> None:
    tech = staff.hire(Role.TECHNICIAN)
    clock.advance(120)  # well past the enrolment code's step
    phone_code = code_at(tech.totp_secret, clock() + timedelta(seconds=30 * offset_steps))
    if accepted:
        operators.login(DEALER, tech.operator.username, tech.password, phone_code)
    else:
        with pytest.raises(AuthenticationFailed):
            operators.login(DEALER, tech.operator.username, tech.password, phone_code)


def test_unknown_username_is_refused(operators: OperatorService, staff: Staff) -> None:
    staff.admin()
    with pytest.raises(AuthenticationFailed) as caught:
        operators.login(DEALER, "nobody", "whatever-password", "123456")
    assert caught.value.reason == "unknown_user"


def test_operator_of_one_dealer_cannot_log_in_at_another(
    operators: OperatorService, staff: Staff
) -> None:
    tech = staff.hire(Role.TECHNICIAN, DEALER, username="sam")
    staff.admin(OTHER_DEALER)
    with pytest.raises(AuthenticationFailed):
        operators.login(OTHER_DEALER, "sam", tech.password, tech.code())


def test_lockout_after_n_failures_refuses_even_correct_credentials(
    operators: OperatorService, staff: Staff, clock: FakeClock
) -> None:
    tech = staff.hire(Role.TECHNICIAN)  # the fixture policy locks after 3
    name = tech.operator.username
    for _ in range(2):
        with pytest.raises(AuthenticationFailed):
            operators.login(DEALER, name, "wrong password 123", tech.code())
    with pytest.raises(AccountLocked) as caught:
        operators.login(DEALER, name, "wrong password 123", tech.code())
    assert caught.value.locked_until == clock() + operators.policy.lockout_period
    clock.advance(60)
    with pytest.raises(AccountLocked):
        operators.login(DEALER, name, tech.password, tech.code())


def test_lock_lifts_after_the_cooling_off_period(
    operators: OperatorService, staff: Staff, clock: FakeClock
) -> None:
    tech = staff.hire(Role.TECHNICIAN)
    name = tech.operator.username
    for _ in range(3):
        with pytest.raises(AuthenticationFailed):
            operators.login(DEALER, name, "wrong password 123", tech.code())
    clock.advance(operators.policy.lockout_period.total_seconds())
    result = operators.login(DEALER, name, tech.password, tech.code())
    assert result.operator.locked_until is None


def test_a_success_resets_the_consecutive_failure_count(
    operators: OperatorService, staff: Staff, clock: FakeClock
) -> None:
    tech = staff.hire(Role.TECHNICIAN)
    name = tech.operator.username
    for _ in range(2):
        with pytest.raises(AuthenticationFailed):
            operators.login(DEALER, name, "wrong password 123", tech.code())
    operators.login(DEALER, name, tech.password, tech.code())
    clock.advance(30)
    for _ in range(2):  # two more failures: 2 < 3, not locked, because the count restarted
        with pytest.raises(AuthenticationFailed) as caught:
            operators.login(DEALER, name, "wrong password 123", tech.code())
        assert not isinstance(caught.value, AccountLocked)


def test_lockout_ends_the_operators_live_sessions(
    operators: OperatorService, staff: Staff, clock: FakeClock
) -> None:
    tech = staff.hire(Role.TECHNICIAN)
    live = operators.login(DEALER, tech.operator.username, tech.password, tech.code())
    for _ in range(3):
        with pytest.raises(AuthenticationFailed):
            operators.login(DEALER, tech.operator.username, "wrong password 123", "000000")
    with pytest.raises(SessionInvalid) as caught:
        operators.authenticate(live.session_token)
    assert caught.value.reason == "revoked"


def test_password_hash_is_upgraded_when_the_argon2_parameters_change(
    sessions: sessionmaker[Session], operators: OperatorService, staff: Staff, clock: FakeClock
) -> None:
    tech = staff.hire(Role.TECHNICIAN)
    stronger = OperatorService(
        sessions, clock=clock, passwords=PasswordHashing.with_cost(time_cost=2, memory_kib=16)
    )
    stronger.login(DEALER, tech.operator.username, tech.password, tech.code())
    with sessions.begin() as s:
        stored = s.get_one(EdgeOperator, tech.operator.id).password_hash
    assert stored.startswith("$argon2id$") and "m=16,t=2" in stored
    clock.advance(30)
    stronger.login(DEALER, tech.operator.username, tech.password, tech.code())


def test_first_login_of_a_bootstrapped_admin_confirms_the_totp_enrolment(
    operators: OperatorService, clock: FakeClock
) -> None:
    creds = bootstrap_first_admin(operators, DEALER)
    assert not operators.get(creds.operator_id).totp_enrolled
    result = operators.login(
        DEALER, creds.username, creds.password, code_at(creds.totp_secret, clock())
    )
    assert result.operator.role is Role.DEALER_ADMIN
    assert operators.get(creds.operator_id).totp_enrolled
    with pytest.raises(AlreadyBootstrapped):
        bootstrap_first_admin(operators, DEALER)
