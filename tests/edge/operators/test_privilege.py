"""Reviewer-capable roles need a second, qualified operator: the ``operator_privilege`` review."""

from __future__ import annotations

import pytest

from forecourt.edge.operators import (
    AuthenticationFailed,
    OperatorService,
    PermissionDenied,
    PrivilegeChangePending,
    ReviewerNotQualified,
    ReviewKind,
    ReviewService,
    ReviewState,
    Role,
    SelfReviewRefused,
    SubjectReviewRefused,
)
from forecourt.edge.operators.errors import OperatorNotFound
from tests.edge.operators.conftest import DEALER, PASSWORD, FakeClock, Person, Staff, enrol


def _hire_admin_candidate(operators: OperatorService, staff: Staff, clock: FakeClock) -> Person:
    created = operators.create_operator(
        staff.admin().operator, dealer_id=DEALER, username="dora", display_name="Dora",
        role=Role.DEALER_ADMIN,
    )  # fmt: skip
    assert created.review_id is not None
    secret = enrol(operators, DEALER, "dora", created.enrolment_code, clock)
    return Person(operators.get(created.operator.id), PASSWORD, secret, clock)


def _review_id(reviews: ReviewService, viewer: Person) -> str:
    [review] = reviews.list_for_dealer(viewer.operator, DEALER, ReviewState.PENDING)
    assert review.kind is ReviewKind.OPERATOR_PRIVILEGE
    return review.id


def test_a_new_reviewer_capable_account_is_unusable_until_a_second_operator_approves(
    operators: OperatorService, reviews: ReviewService, staff: Staff, clock: FakeClock
) -> None:
    manager = staff.hire(Role.SERVICE_MANAGER)
    dora = _hire_admin_candidate(operators, staff, clock)
    assert dora.operator.awaiting_approval and not dora.operator.active
    with pytest.raises(AuthenticationFailed) as refused:
        operators.login(DEALER, "dora", PASSWORD, dora.code())
    assert refused.value.reason == "inactive"
    with pytest.raises(PermissionDenied):
        operators.list_operators(dora.operator, DEALER)

    approved = reviews.approve(manager.operator, _review_id(reviews, manager), manager.code())
    assert approved.state is ReviewState.EXECUTED
    assert (approved.requester_id, approved.reviewer_id) == (
        staff.admin().operator.id,
        manager.operator.id,
    )
    clock.advance(30)
    session = operators.login(DEALER, "dora", PASSWORD, dora.code())
    assert session.operator.role is Role.DEALER_ADMIN and session.operator.active


def test_the_requesting_admin_cannot_approve_the_account_they_created(
    operators: OperatorService, reviews: ReviewService, staff: Staff, clock: FakeClock
) -> None:
    admin = staff.admin()
    _hire_admin_candidate(operators, staff, clock)
    with pytest.raises(SelfReviewRefused):
        reviews.approve(admin.operator, _review_id(reviews, admin), admin.code())


def test_the_subject_cannot_approve_their_own_promotion(
    operators: OperatorService, reviews: ReviewService, staff: Staff, clock: FakeClock
) -> None:
    manager = staff.hire(Role.SERVICE_MANAGER)
    operators.set_role(staff.admin().operator, manager.operator.id, Role.DEALER_ADMIN)
    assert operators.get(manager.operator.id).role is Role.SERVICE_MANAGER  # not yet
    with pytest.raises(SubjectReviewRefused):
        reviews.approve(manager.operator, _review_id(reviews, manager), manager.code())
    assert operators.get(manager.operator.id).pending_role is Role.DEALER_ADMIN


def test_a_senior_technician_cannot_approve_an_operator_privilege(
    operators: OperatorService, reviews: ReviewService, staff: Staff, clock: FakeClock
) -> None:
    senior = staff.hire(Role.SENIOR_TECHNICIAN)
    _hire_admin_candidate(operators, staff, clock)
    with pytest.raises(ReviewerNotQualified):
        reviews.approve(senior.operator, _review_id(reviews, senior), senior.code())


def test_promotion_takes_effect_only_on_approval_and_ends_old_sessions(
    operators: OperatorService, reviews: ReviewService, staff: Staff, clock: FakeClock
) -> None:
    manager = staff.hire(Role.SERVICE_MANAGER)
    tech = staff.hire(Role.TECHNICIAN)
    session = operators.login(DEALER, tech.operator.username, PASSWORD, tech.code())
    operators.set_role(staff.admin().operator, tech.operator.id, Role.SENIOR_TECHNICIAN)
    assert operators.authenticate(session.session_token).operator.role is Role.TECHNICIAN
    reviews.approve(manager.operator, _review_id(reviews, manager), manager.code())
    promoted = operators.get(tech.operator.id)
    assert promoted.role is Role.SENIOR_TECHNICIAN and promoted.pending_role is None


def test_an_awaiting_account_cannot_be_switched_on_around_the_review(
    operators: OperatorService, staff: Staff, clock: FakeClock
) -> None:
    dora = _hire_admin_candidate(operators, staff, clock)
    with pytest.raises(PrivilegeChangePending):
        operators.set_active(staff.admin().operator, dora.operator.id, active=True)
    assert not operators.get(dora.operator.id).active


def test_rejecting_a_new_privileged_account_removes_it(
    operators: OperatorService, reviews: ReviewService, staff: Staff, clock: FakeClock
) -> None:
    manager = staff.hire(Role.SERVICE_MANAGER)
    dora = _hire_admin_candidate(operators, staff, clock)
    reviews.reject(manager.operator, _review_id(reviews, manager), note="nobody asked for this")
    with pytest.raises(OperatorNotFound):
        operators.get(dora.operator.id)


def test_operator_privilege_cannot_be_requested_directly(
    reviews: ReviewService, staff: Staff
) -> None:
    admin = staff.admin()
    with pytest.raises(Exception, match="account changes"):
        reviews.request(
            admin.operator, ReviewKind.OPERATOR_PRIVILEGE, {"subject_id": admin.operator.id},
            dealer_id=DEALER, reason="x",
        )  # fmt: skip
