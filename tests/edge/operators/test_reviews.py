"""Dual review: four-eyes always, qualified reviewer of the same dealer, step-up, expiry, execute
once."""

from __future__ import annotations

import pytest
from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from forecourt.edge.operators import (
    APPROVER_ROLES,
    PermissionDenied,
    ReviewerNotQualified,
    ReviewExpired,
    ReviewKind,
    ReviewService,
    ReviewState,
    ReviewStateConflict,
    Role,
    SelfReviewRefused,
    StepUpFailed,
)
from forecourt.edge.operators.reviews import payload_digest
from forecourt.store.edge import EdgeReviewRequest
from tests.edge.operators.conftest import DEALER, OTHER_DEALER, FakeClock, Staff

BATCH = {"vins": ["WVWZZZ1JZXW000001", "WVWZZZ1JZXW000002"], "features": ["adas.l2plus"]}


def test_qualified_second_operator_approves_and_both_are_recorded(
    reviews: ReviewService, staff: Staff
) -> None:
    senior = staff.hire(Role.SENIOR_TECHNICIAN)
    manager = staff.hire(Role.SERVICE_MANAGER)
    req = reviews.request(
        senior.operator, ReviewKind.BATCH_ACTIVATION, BATCH, dealer_id=DEALER, reason="fleet"
    )
    approved = reviews.approve(manager.operator, req.id, manager.code(), note="checked")
    assert approved.state is ReviewState.APPROVED
    assert (approved.requester_id, approved.reviewer_id) == (
        senior.operator.id,
        manager.operator.id,
    )
    assert approved.payload == BATCH and approved.payload_sha256 == payload_digest(BATCH)


def test_requester_cannot_approve_own_request_even_as_dealer_admin(
    reviews: ReviewService, staff: Staff
) -> None:
    admin = staff.admin()
    req = reviews.request(
        admin.operator, ReviewKind.OVERRIDE, {"check": "assignment"}, dealer_id=DEALER, reason="x"
    )
    with pytest.raises(SelfReviewRefused):
        reviews.approve(admin.operator, req.id, admin.code())
    assert reviews.get(admin.operator, req.id).state is ReviewState.PENDING


@pytest.mark.parametrize(
    "kind", [k for k in ReviewKind if k is not ReviewKind.OPERATOR_PRIVILEGE]
)  # operator_privilege requests come from account changes: test_privilege.py
def test_reviewer_with_an_unqualified_role_is_refused(
    reviews: ReviewService, staff: Staff, kind: ReviewKind
) -> None:
    requester = staff.admin()
    for role in set(Role) - APPROVER_ROLES[kind]:
        reviewer = staff.hire(role)
        req = reviews.request(requester.operator, kind, {"n": 1}, dealer_id=DEALER, reason="x")
        with pytest.raises((ReviewerNotQualified, PermissionDenied)):
            reviews.approve(reviewer.operator, req.id, reviewer.code())
        assert reviews.get(requester.operator, req.id).state is ReviewState.PENDING


def test_senior_technician_may_approve_routine_kinds_but_not_batch(
    reviews: ReviewService, staff: Staff
) -> None:
    tech = staff.hire(Role.TECHNICIAN)
    senior = staff.hire(Role.SENIOR_TECHNICIAN)
    offline = reviews.request(
        tech.operator, ReviewKind.OFFLINE_USE, {"vin": "X"}, dealer_id=DEALER, reason="link down"
    )
    assert reviews.approve(senior.operator, offline.id, senior.code()).reviewer_id == (
        senior.operator.id
    )
    batch = reviews.request(
        staff.hire(Role.SERVICE_MANAGER).operator,
        ReviewKind.BATCH_ACTIVATION,
        BATCH,
        dealer_id=DEALER,
        reason="fleet",
    )
    with pytest.raises(ReviewerNotQualified):
        reviews.approve(senior.operator, batch.id, senior.code())


def test_reviewer_from_another_dealer_is_refused(reviews: ReviewService, staff: Staff) -> None:
    tech = staff.hire(Role.TECHNICIAN)
    foreign_admin = staff.admin(OTHER_DEALER)
    req = reviews.request(
        tech.operator, ReviewKind.REACTIVATION, {"vin": "X"}, dealer_id=DEALER, reason="x"
    )
    with pytest.raises(PermissionDenied) as caught:
        reviews.approve(foreign_admin.operator, req.id, foreign_admin.code())
    assert caught.value.reason == "other_dealer"


def test_requester_needs_the_kinds_request_permission(reviews: ReviewService, staff: Staff) -> None:
    tech = staff.hire(Role.TECHNICIAN)
    with pytest.raises(PermissionDenied):
        reviews.request(tech.operator, ReviewKind.OVERRIDE, {}, dealer_id=DEALER, reason="x")
    with pytest.raises(PermissionDenied):
        reviews.request(
            tech.operator, ReviewKind.OFFLINE_USE, {}, dealer_id=OTHER_DEALER, reason="x"
        )


def test_wrong_or_replayed_step_up_code_refuses_approval(
    reviews: ReviewService, staff: Staff, clock: FakeClock
) -> None:
    tech = staff.hire(Role.TECHNICIAN)
    senior = staff.hire(Role.SENIOR_TECHNICIAN)
    first = reviews.request(
        tech.operator, ReviewKind.REACTIVATION, {"vin": "A"}, dealer_id=DEALER, reason="x"
    )
    second = reviews.request(
        tech.operator, ReviewKind.REACTIVATION, {"vin": "B"}, dealer_id=DEALER, reason="x"
    )
    with pytest.raises(StepUpFailed) as caught:
        wrong = f"{(int(senior.code()) + 1) % 1_000_000:06d}"
        reviews.approve(senior.operator, first.id, wrong)
    assert caught.value.reason == "totp"
    code = senior.code()
    reviews.approve(senior.operator, first.id, code)
    clock.advance(5)
    with pytest.raises(StepUpFailed) as caught:
        reviews.approve(senior.operator, second.id, code)
    assert caught.value.reason == "totp_replayed"
    assert reviews.get(tech.operator, second.id).state is ReviewState.PENDING


def test_expired_request_cannot_be_approved(
    reviews: ReviewService, staff: Staff, clock: FakeClock
) -> None:
    tech = staff.hire(Role.TECHNICIAN)
    senior = staff.hire(Role.SENIOR_TECHNICIAN)
    req = reviews.request(
        senior.operator, ReviewKind.FEATURE_REVOCATION, {"f": "nav"}, dealer_id=DEALER, reason="x"
    )
    clock.now = req.expires_at
    manager = staff.hire(Role.SERVICE_MANAGER)
    with pytest.raises(ReviewExpired):
        reviews.approve(manager.operator, req.id, manager.code())
    assert reviews.get(tech.operator, req.id).state is ReviewState.EXPIRED


def test_pending_requests_past_their_deadline_are_swept_to_expired(
    reviews: ReviewService, staff: Staff, clock: FakeClock
) -> None:
    tech = staff.hire(Role.TECHNICIAN)
    req = reviews.request(tech.operator, ReviewKind.OFFLINE_USE, {}, dealer_id=DEALER, reason="x")
    clock.now = req.expires_at
    assert [r.state for r in reviews.list_for_dealer(tech.operator, DEALER)] == [
        ReviewState.EXPIRED
    ]


def test_approved_request_executes_exactly_once(reviews: ReviewService, staff: Staff) -> None:
    tech = staff.hire(Role.TECHNICIAN)
    senior = staff.hire(Role.SENIOR_TECHNICIAN)
    req = reviews.request(tech.operator, ReviewKind.OFFLINE_USE, {}, dealer_id=DEALER, reason="x")
    with pytest.raises(ReviewStateConflict):
        reviews.mark_executed(tech.operator, req.id)  # not approved yet
    reviews.approve(senior.operator, req.id, senior.code())
    assert reviews.mark_executed(tech.operator, req.id) is True
    assert reviews.mark_executed(tech.operator, req.id) is False
    done = reviews.get(tech.operator, req.id)
    assert (done.state, done.executor_id) == (ReviewState.EXECUTED, tech.operator.id)


def test_rejected_request_can_neither_be_approved_nor_executed(
    reviews: ReviewService, staff: Staff
) -> None:
    tech = staff.hire(Role.TECHNICIAN)
    senior = staff.hire(Role.SENIOR_TECHNICIAN)
    req = reviews.request(tech.operator, ReviewKind.OFFLINE_USE, {}, dealer_id=DEALER, reason="x")
    rejected = reviews.reject(senior.operator, req.id, note="wrong car")
    assert (rejected.state, rejected.reviewer_id) == (ReviewState.REJECTED, senior.operator.id)
    with pytest.raises(ReviewStateConflict):
        reviews.approve(senior.operator, req.id, senior.code())
    with pytest.raises(ReviewStateConflict):
        reviews.mark_executed(tech.operator, req.id)


def test_database_refuses_a_row_whose_reviewer_is_its_requester(
    sessions: sessionmaker[Session], reviews: ReviewService, staff: Staff
) -> None:
    tech = staff.hire(Role.TECHNICIAN)
    req = reviews.request(tech.operator, ReviewKind.OFFLINE_USE, {}, dealer_id=DEALER, reason="x")
    with pytest.raises(IntegrityError), sessions.begin() as s:
        s.execute(
            update(EdgeReviewRequest)
            .where(EdgeReviewRequest.id == req.id)
            .values(reviewer_id=tech.operator.id, state="approved")
        )
