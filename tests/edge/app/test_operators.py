"""Operator management in the console: dealer admins only, this dealer only, the enrolment code
shown once, and reviewer-capable roles waiting for a second qualified operator's approval."""

from __future__ import annotations

import re
from typing import Any

import pytest

from forecourt.edge.operators import Role
from tests.edge.app.conftest import Console
from tests.edge.operators.conftest import OTHER_DEALER

pytestmark = pytest.mark.anyio

MANAGER = {"username": "new.manager", "display_name": "Nia Manager", "role": "service_manager"}


async def _add(console: Console, body: dict[str, Any]) -> dict[str, Any]:
    response = await console.post("/api/v1/operators", body)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def test_an_admin_adds_a_technician_and_sees_the_code_once(console: Console) -> None:
    await console.login(console.world.admin)
    created = await _add(
        console, {"username": "tom", "display_name": "Tom Tech", "role": "technician"}
    )
    assert re.fullmatch(r"[A-Z2-7]{5}(-[A-Z2-7]{5}){3}", created["enrolment_code"])
    assert created["awaiting_review"] is False
    assert created["operator"]["state"] == "not_enrolled"
    listed = (await console.get("/api/v1/operators")).text
    assert "tom" in listed and created["enrolment_code"] not in listed


async def test_a_manager_role_awaits_review_and_a_second_qualified_operator_approves(
    console: Console, console2: Console
) -> None:
    world = console.world
    await console.login(world.admin)
    created = await _add(console, MANAGER)
    assert created["awaiting_review"] is True
    row = next(
        o for o in (await console.get("/api/v1/operators")).json() if o["username"] == "new.manager"
    )
    assert row["state"] == "awaiting_review" and row["pending_role"] == "service_manager"
    assert row["active"] is False  # cannot sign in before the review

    own = await console.post(
        f"/api/v1/reviews/{created['review_id']}/approve", {"totp_code": world.admin.code()}
    )
    assert own.status_code == 403 and own.json()["code"] == "self_review_refused"

    await console2.login(world.manager)
    pending = (await console2.get("/api/v1/reviews", state="pending")).json()
    review = next(r for r in pending if r["id"] == created["review_id"])
    assert review["kind"] == "operator_privilege" and review["can_decide"] is True
    assert review["payload"]["username"] == "new.manager"
    world.env.clock.advance(30)
    approved = await console2.post(
        f"/api/v1/reviews/{created['review_id']}/approve", {"totp_code": world.manager.code()}
    )
    assert approved.status_code == 200, approved.text
    after = world.env.operators.get(created["operator"]["id"])
    assert after.role is Role.SERVICE_MANAGER and after.active and not after.awaiting_approval


async def test_the_subject_of_a_promotion_may_not_approve_it(
    console: Console, console2: Console
) -> None:
    world = console.world
    await console.login(world.admin)
    promoted = await console.post(
        f"/api/v1/operators/{world.manager.operator.id}/role", {"role": "dealer_admin"}
    )
    assert promoted.status_code == 200
    assert promoted.json()["pending_role"] == "dealer_admin"
    assert promoted.json()["role"] == "service_manager"  # unchanged until approved
    await console2.login(world.manager)
    review = next(
        r
        for r in (await console2.get("/api/v1/reviews", state="pending")).json()
        if r["kind"] == "operator_privilege"
    )
    assert review["can_decide"] is False and review["about_me"] is True
    world.env.clock.advance(30)
    refused = await console2.post(
        f"/api/v1/reviews/{review['id']}/approve", {"totp_code": world.manager.code()}
    )
    assert refused.status_code == 403 and refused.json()["code"] == "subject_review_refused"
    assert world.env.operators.get(world.manager.operator.id).role is Role.SERVICE_MANAGER


async def test_a_technician_may_not_list_add_or_change_operators(console: Console) -> None:
    world = console.world
    await console.login(world.technician)
    listing = await console.get("/api/v1/operators")
    assert listing.status_code == 403 and listing.json()["code"] == "permission_denied"
    added = await console.post("/api/v1/operators", MANAGER)
    assert added.status_code == 403
    changed = await console.post(f"/api/v1/operators/{world.senior.operator.id}/deactivate", None)
    assert changed.status_code == 403
    assert world.env.operators.get(world.senior.operator.id).active
    page = await console.get("/operators")
    assert page.status_code == 403
    assert 'href="/operators"' not in (await console.get("/dashboard")).text


async def test_an_admin_may_not_touch_another_dealers_operator(console: Console) -> None:
    world = console.world
    foreign = world.other_dealer_tech.operator
    await console.login(world.admin)
    for path, body in (
        (f"/api/v1/operators/{foreign.id}/deactivate", None),
        (f"/api/v1/operators/{foreign.id}/role", {"role": "auditor"}),
    ):
        response = await console.post(path, body)
        assert response.status_code == 403 and response.json()["reason"] == "other_dealer"
    after = world.env.operators.get(foreign.id)
    assert after.active and after.role is Role.TECHNICIAN
    listed = (await console.get("/api/v1/operators")).json()
    assert foreign.id not in {o["id"] for o in listed}


async def test_deactivating_ends_the_operators_sessions(
    console: Console, console2: Console
) -> None:
    world = console.world
    await console2.login(world.technician)
    await console.login(world.admin)
    response = await console.post(
        f"/api/v1/operators/{world.technician.operator.id}/deactivate", None
    )
    assert response.status_code == 200 and response.json()["state"] == "deactivated"
    assert (await console2.get("/api/v1/me")).status_code == 401


async def test_the_operators_page_shows_the_code_once_and_the_pending_role(
    console: Console,
) -> None:
    await console.login(console.world.admin)
    page = await console.http.post("/operators", data={**MANAGER, "csrf_token": console.csrf})
    assert page.status_code == 200
    code = re.search(r'data-role="enrolment-code">([A-Z2-7-]+)<', page.text)
    assert code is not None and "awaiting review" in page.text
    listing = await console.get("/operators")
    assert code.group(1) not in listing.text
    assert "Service manager: awaiting review" in listing.text
    without_csrf = await console.http.post("/operators", data={**MANAGER, "username": "other"})
    assert without_csrf.status_code == 403
    taken = await console.http.post("/operators", data={**MANAGER, "csrf_token": console.csrf})
    assert taken.status_code == 303 and "error=username_taken" in taken.headers["location"]


async def test_another_dealers_admin_cannot_sign_in_to_this_console(console: Console) -> None:
    other_admin = console.world.env.staff.admin(OTHER_DEALER)
    response = await console.login(other_admin)
    assert response.status_code == 401
