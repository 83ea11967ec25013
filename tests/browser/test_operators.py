"""Operator accounts in real Chromium: an admin adds a service manager, a second admin approves
the privilege review with a fresh code, and the new manager's first sign-in (enrolment code →
QR → own password and first code) ends in a session."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from playwright.sync_api import expect

from forecourt.edge.operators import Role
from forecourt.edge.operators.totp import code_at
from tests.browser.conftest import Site, code
from tests.edge.operators.conftest import PASSWORD

pytestmark = pytest.mark.browser


def test_an_added_manager_is_approved_by_a_second_admin_then_enrols_and_signs_in(
    site: Site,
) -> None:
    world = site.world
    admin = site.page()
    site.sign_in(admin, world.admin)
    admin.get_by_role("link", name="Operators").click()
    form = admin.locator("form.add-operator")
    form.get_by_label("Username").fill("nia.manager")
    form.get_by_label("Full name").fill("Nia Manager")
    form.get_by_label("Role").select_option("service_manager")
    form.get_by_label("Reason").fill("new service manager for the workshop")
    form.get_by_role("button", name="Add operator").click()
    enrolment_code = admin.locator('[data-role="enrolment-code"]').inner_text()
    assert re.fullmatch(r"[A-Z2-7]{5}(-[A-Z2-7]{5}){3}", enrolment_code)
    expect(admin.locator("section.enrolment-code")).to_contain_text("awaiting review")
    row = admin.locator('tr[data-operator="nia.manager"]')
    expect(row).to_contain_text("Service manager: awaiting review")
    site.shot(admin, "operators")
    admin.goto("/reviews")
    expect(admin.locator("li.review")).to_contain_text("You requested this")

    reviewer = site.page()
    site.sign_in(reviewer, world.second_admin)
    reviewer.goto("/reviews")
    review = reviewer.locator("li.review", has_text="nia.manager")
    expect(review).to_contain_text("operator privilege")
    expect(review).to_contain_text("service_manager")
    review.get_by_label("Your authenticator code").fill(code(world.second_admin, 0))
    review.get_by_role("button", name="Approve").click()
    expect(reviewer.get_by_role("status")).to_contain_text("Approved")

    newcomer = site.page()
    newcomer.goto("/login")
    newcomer.get_by_role("link", name="Sign in with your enrolment code").click()
    newcomer.get_by_label("Username").fill("nia.manager")
    newcomer.get_by_label("Enrolment code").fill(enrolment_code)
    newcomer.get_by_role("button", name="Continue").click()
    expect(newcomer.get_by_role("img", name=re.compile("QR code"))).to_be_visible()
    secret = newcomer.locator("code.secret").inner_text()
    site.shot(newcomer, "enrolment")
    newcomer.get_by_label("New password", exact=True).fill(PASSWORD)
    newcomer.get_by_label("New password again").fill(PASSWORD)
    now = world.env.clock()
    newcomer.get_by_label("Authenticator code").fill(code_at(secret, now))
    newcomer.get_by_role("button", name="Set up my account").click()
    expect(newcomer.get_by_role("status")).to_contain_text("Sign in with the next code")
    newcomer.get_by_label("Password").fill(PASSWORD)
    newcomer.get_by_label("Authenticator code").fill(code_at(secret, now + timedelta(seconds=30)))
    newcomer.get_by_role("button", name="Sign in").click()
    expect(newcomer).to_have_url(re.compile(r"/dashboard$"))
    expect(newcomer.locator(".who")).to_contain_text("service manager")
    manager = next(
        o
        for o in world.env.operators.list_operators(
            world.admin.operator, world.admin.operator.dealer_id
        )
        if o.username == "nia.manager"
    )
    assert manager.role is Role.SERVICE_MANAGER and manager.totp_enrolled and manager.active
