"""The permission matrix as a data table over every role × permission, and dealer scoping."""

from __future__ import annotations

import itertools

import pytest

from forecourt.edge.operators import (
    PERMISSION_MATRIX,
    Operator,
    OperatorService,
    Permission,
    PermissionDenied,
    Role,
    permissions_of,
    require,
)
from tests.edge.operators.conftest import DEALER, OTHER_DEALER, Staff

P = Permission
#: Written out by hand from the product's roles, independently of PERMISSION_MATRIX.
EXPECTED: dict[Role, set[Permission]] = {
    Role.TECHNICIAN: {
        P.VEHICLE_READ,
        P.ACTIVATION_START,
        P.REVIEW_READ,
        P.OFFLINE_USE_REQUEST,
        P.CONSENT_RECORD,
    },
    Role.SENIOR_TECHNICIAN: {
        P.VEHICLE_READ,
        P.ACTIVATION_START,
        P.ACTIVATION_BATCH_REQUEST,
        P.REVIEW_READ,
        P.REVIEW_APPROVE,
        P.OFFLINE_USE_REQUEST,
        P.FEATURE_REVOKE_REQUEST,
        P.CONSENT_RECORD,
    },
    Role.SERVICE_MANAGER: set(Permission) - {P.OPERATOR_MANAGE},
    Role.DEALER_ADMIN: set(Permission),
    Role.AUDITOR: {P.VEHICLE_READ, P.REVIEW_READ, P.AUDIT_READ},
}


def _operator(role: Role, dealer_id: str = DEALER, active: bool = True) -> Operator:
    return Operator(
        id=f"op-{role.value}",
        dealer_id=dealer_id,
        username=role.value,
        display_name=role.value,
        role=role,
        active=active,
        totp_enrolled=True,
    )


@pytest.mark.parametrize(("role", "permission"), list(itertools.product(Role, Permission)))
def test_permission_matrix_grants_exactly_the_expected_table(
    role: Role, permission: Permission
) -> None:
    operator = _operator(role)
    if permission in EXPECTED[role]:
        require(operator, permission, DEALER)
    else:
        with pytest.raises(PermissionDenied) as caught:
            require(operator, permission, DEALER)
        assert (caught.value.operator_id, caught.value.permission, caught.value.reason) == (
            operator.id,
            permission.value,
            "role",
        )


def test_every_permission_is_in_the_matrix_and_the_auditor_only_reads() -> None:
    assert set(PERMISSION_MATRIX) == set(Permission)
    assert all(p.value.endswith(".read") for p in permissions_of(Role.AUDITOR))


@pytest.mark.parametrize("role", list(Role))
def test_no_role_acts_on_another_dealers_resources(role: Role) -> None:
    for permission in Permission:
        with pytest.raises(PermissionDenied) as caught:
            require(_operator(role, DEALER), permission, OTHER_DEALER)
        assert caught.value.reason == "other_dealer"


def test_inactive_operator_holds_no_permission() -> None:
    with pytest.raises(PermissionDenied) as caught:
        require(_operator(Role.DEALER_ADMIN, active=False), Permission.VEHICLE_READ, DEALER)
    assert caught.value.reason == "inactive"


def test_admin_of_one_dealer_cannot_manage_another_dealers_operators(
    operators: OperatorService, staff: Staff
) -> None:
    foreign_tech = staff.hire(Role.TECHNICIAN, OTHER_DEALER)
    admin_a = staff.admin(DEALER).operator
    with pytest.raises(PermissionDenied):
        operators.unlock(admin_a, foreign_tech.operator.id)
    with pytest.raises(PermissionDenied):
        operators.set_role(admin_a, foreign_tech.operator.id, Role.DEALER_ADMIN)
    with pytest.raises(PermissionDenied):
        operators.create_operator(
            admin_a,
            dealer_id=OTHER_DEALER,
            username="intruder",
            display_name="x",
            role=Role.DEALER_ADMIN,
        )
    assert operators.get(foreign_tech.operator.id).role is Role.TECHNICIAN


def test_technician_cannot_create_operators(operators: OperatorService, staff: Staff) -> None:
    tech = staff.hire(Role.TECHNICIAN)
    with pytest.raises(PermissionDenied):
        operators.create_operator(
            tech.operator,
            dealer_id=DEALER,
            username="friend",
            display_name="x",
            role=Role.DEALER_ADMIN,
        )
