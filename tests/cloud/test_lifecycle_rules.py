"""The lifecycle rules after the dealer, without a database: which edges name, keep or change
the owner, which rights end with an owner, and what is refused (and why, by a stable kind)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from forecourt.cloud.lifecycle.rules import (
    OWNER_CHANGED,
    VEHICLE_SCRAPPED,
    LifecycleRefused,
    RefusalKind,
    check_service_visit,
    plan_owner,
    plan_transition,
    rights_that_end,
)
from forecourt.core import Entitlement, EntitlementSource, EntitlementState, LifecycleState, Vin
from forecourt.ledger.entry import EventKind
from tests.cloud.world import NOW

S = LifecycleState
VIN = Vin.parse("WFKTW3S88RM000001", verify_check_digit=False)


@pytest.mark.parametrize(
    ("state", "owner", "to", "new_owner", "expected_owner", "kind", "ends"),
    [
        (S.ACTIVATED, None, S.DELIVERED, "crm-1", "crm-1", EventKind.OWNERSHIP_CHANGE, None),
        (S.ACTIVATED, "crm-1", S.DELIVERED, None, "crm-1", EventKind.OWNERSHIP_CHANGE, None),
        (S.DELIVERED, "crm-1", S.IN_SERVICE, None, "crm-1", EventKind.LIFECYCLE_CHANGE, None),
        (S.IN_SERVICE, "crm-1", S.TRANSFERRED, "crm-2", "crm-2", EventKind.OWNERSHIP_CHANGE,
         OWNER_CHANGED),
        (S.DELIVERED, "crm-1", S.TRANSFERRED, None, None, EventKind.OWNERSHIP_CHANGE,
         OWNER_CHANGED),
        (S.TRANSFERRED, None, S.IN_SERVICE, "crm-2", "crm-2", EventKind.OWNERSHIP_CHANGE, None),
        (S.TRANSFERRED, "crm-2", S.IN_SERVICE, None, "crm-2", EventKind.LIFECYCLE_CHANGE, None),
        (S.IN_SERVICE, "crm-1", S.SCRAPPED, None, "crm-1", EventKind.LIFECYCLE_CHANGE,
         VEHICLE_SCRAPPED),
        (S.BUILT, None, S.SHIPPED, None, None, EventKind.LIFECYCLE_CHANGE, None),
    ],
)  # fmt: skip
def test_allowed_changes_name_keep_or_change_the_owner(  # noqa: PLR0917 - one per table column
    state: LifecycleState,
    owner: str | None,
    to: LifecycleState,
    new_owner: str | None,
    expected_owner: str | None,
    kind: EventKind,
    ends: str | None,
) -> None:
    outcome = plan_transition(state, owner, to, new_owner)
    assert (outcome.state, outcome.owner_ref, outcome.kind, outcome.ends_rights) == (
        to,
        expected_owner,
        kind,
        ends,
    )


@pytest.mark.parametrize(
    ("state", "owner", "to", "new_owner", "why"),
    [
        (S.AT_DEALER, None, S.DELIVERED, "crm-1", RefusalKind.TRANSITION),
        (S.IN_SERVICE, "crm-1", S.DELIVERED, None, RefusalKind.TRANSITION),
        (S.SCRAPPED, "crm-1", S.IN_SERVICE, None, RefusalKind.TRANSITION),
        (S.ACTIVATED, None, S.DELIVERED, None, RefusalKind.OWNER),
        (S.IN_SERVICE, "crm-1", S.TRANSFERRED, "crm-1", RefusalKind.OWNER),
        (S.TRANSFERRED, None, S.IN_SERVICE, None, RefusalKind.OWNER),
        (S.DELIVERED, "crm-1", S.IN_SERVICE, "crm-2", RefusalKind.OWNER),
    ],
)
def test_refused_changes_say_which_rule(
    state: LifecycleState,
    owner: str | None,
    to: LifecycleState,
    new_owner: str | None,
    why: RefusalKind,
) -> None:
    with pytest.raises(LifecycleRefused) as refused:
        plan_transition(state, owner, to, new_owner)
    assert refused.value.kind is why
    assert "crm-" not in refused.value.detail  # refusals are logged: no owner in them


def test_the_owner_is_set_alone_only_before_delivery_or_while_transferred() -> None:
    assert plan_owner(S.SHIPPED, None, "crm-1").owner_ref == "crm-1"
    assert plan_owner(S.TRANSFERRED, None, "crm-2").kind is EventKind.OWNERSHIP_CHANGE
    for state in (S.DELIVERED, S.IN_SERVICE, S.SCRAPPED):
        with pytest.raises(LifecycleRefused):
            plan_owner(state, "crm-1", "crm-2")
    with pytest.raises(LifecycleRefused):
        plan_owner(S.SHIPPED, "crm-1", "crm-1")
    check_service_visit(S.IN_SERVICE)
    with pytest.raises(LifecycleRefused):
        check_service_visit(S.AT_DEALER)


def _right(
    source: EntitlementSource, days: int | None, state: EntitlementState = EntitlementState.ACTIVE
) -> Entitlement:
    start = NOW - timedelta(days=10)
    until = None if days is None else start + timedelta(days=days)
    return Entitlement(VIN, "nav", source, start, until, state)


def test_a_change_of_owner_ends_personal_rights_in_effect_and_scrapping_ends_all() -> None:
    rights = list(
        enumerate(
            [
                _right(EntitlementSource.PURCHASE, 365),  # subscription
                _right(EntitlementSource.TRIAL, 30),
                _right(EntitlementSource.FLEET, None),
                _right(EntitlementSource.PURCHASE, None),  # perpetual: the car's
                _right(EntitlementSource.STANDARD, None),
                _right(EntitlementSource.PURCHASE, 5),  # already over
                _right(EntitlementSource.TRIAL, 30, EntitlementState.REVOKED),
                _right(EntitlementSource.PURCHASE, 365, EntitlementState.SUSPENDED),
            ]
        )
    )
    assert [i for i, _ in rights_that_end(rights, OWNER_CHANGED, NOW)] == [0, 1, 2, 7]
    assert [i for i, _ in rights_that_end(rights, VEHICLE_SCRAPPED, NOW)] == [0, 1, 2, 3, 4, 7]
