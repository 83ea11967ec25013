"""A new operator's first sign-in: a one-time code from the creator, own password, own TOTP."""

from __future__ import annotations

import dataclasses

import pytest

from forecourt.edge.operators import (
    AccountLocked,
    AuthenticationFailed,
    EnrolmentRefused,
    OperatorService,
    Role,
)
from forecourt.edge.operators.totp import code_at
from tests.edge.operators.conftest import DEALER, PASSWORD, FakeClock, Staff

NEW_PASSWORD = "my own secret phrase 42"


def _create(operators: OperatorService, staff: Staff, username: str = "nina") -> str:
    created = operators.create_operator(
        staff.admin().operator,
        dealer_id=DEALER,
        username=username,
        display_name="Nina",
        role=Role.TECHNICIAN,
    )
    return created.enrolment_code


def test_the_creator_receives_neither_a_password_nor_a_totp_secret(
    operators: OperatorService, staff: Staff
) -> None:
    created = operators.create_operator(
        staff.admin().operator, dealer_id=DEALER, username="nina", display_name="N",
        role=Role.TECHNICIAN,
    )  # fmt: skip
    handed_over = {f.name for f in dataclasses.fields(created)}
    assert handed_over == {"operator", "enrolment_code", "enrolment_expires_at", "review_id"}
    assert created.enrolment_code not in repr(created)
    assert not created.operator.totp_enrolled


def test_the_new_operator_sets_their_own_password_and_totp_and_then_signs_in(
    operators: OperatorService, staff: Staff, clock: FakeClock
) -> None:
    code = _create(operators, staff)
    enrolment = operators.begin_enrolment(DEALER, "nina", code)
    operator = operators.complete_enrolment(
        DEALER, "nina", code, NEW_PASSWORD, code_at(enrolment.secret, clock())
    )
    assert operator.totp_enrolled
    clock.advance(30)
    session = operators.login(DEALER, "nina", NEW_PASSWORD, code_at(enrolment.secret, clock()))
    assert session.operator.id == operator.id


def test_an_enrolment_code_works_once(
    operators: OperatorService, staff: Staff, clock: FakeClock
) -> None:
    code = _create(operators, staff)
    enrolment = operators.begin_enrolment(DEALER, "nina", code)
    operators.complete_enrolment(
        DEALER, "nina", code, NEW_PASSWORD, code_at(enrolment.secret, clock())
    )
    with pytest.raises(EnrolmentRefused) as refused:
        operators.begin_enrolment(DEALER, "nina", code)
    assert refused.value.reason == "used"


def test_an_expired_enrolment_code_is_refused(
    operators: OperatorService, staff: Staff, clock: FakeClock
) -> None:
    code = _create(operators, staff)
    clock.advance(operators.policy.enrolment_code_ttl.total_seconds())
    with pytest.raises(EnrolmentRefused) as refused:
        operators.begin_enrolment(DEALER, "nina", code)
    assert refused.value.reason == "expired"


def test_wrong_enrolment_codes_lock_the_account(operators: OperatorService, staff: Staff) -> None:
    code = _create(operators, staff)
    for _ in range(operators.policy.max_failed_attempts - 1):
        with pytest.raises(EnrolmentRefused) as refused:
            operators.begin_enrolment(DEALER, "nina", "AAAAA-AAAAA-AAAAA-AAAAA")
        assert refused.value.reason == "wrong_code"
    with pytest.raises(EnrolmentRefused) as refused:
        operators.begin_enrolment(DEALER, "nina", "AAAAA-AAAAA-AAAAA-AAAAA")
    assert refused.value.reason == "locked"
    with pytest.raises(EnrolmentRefused):
        operators.begin_enrolment(DEALER, "nina", code)  # even the right code, while locked


def test_a_not_yet_enrolled_account_cannot_sign_in_with_any_password(
    operators: OperatorService, staff: Staff, clock: FakeClock
) -> None:
    _create(operators, staff)
    with pytest.raises(AuthenticationFailed) as refused:
        operators.login(DEALER, "nina", PASSWORD, "000000")
    assert refused.value.reason == "password"
    assert not isinstance(refused.value, AccountLocked)


def test_completing_needs_a_code_of_the_secret_just_shown(
    operators: OperatorService, staff: Staff, clock: FakeClock
) -> None:
    code = _create(operators, staff)
    operators.begin_enrolment(DEALER, "nina", code)
    with pytest.raises(EnrolmentRefused) as refused:
        operators.complete_enrolment(DEALER, "nina", code, NEW_PASSWORD, "123456")
    assert refused.value.reason == "wrong_totp"
    enrolment = operators.begin_enrolment(DEALER, "nina", code)  # the code is still unspent
    operators.complete_enrolment(
        DEALER, "nina", code, NEW_PASSWORD, code_at(enrolment.secret, clock())
    )
