"""The console in real Chromium: sign-in with TOTP, live progress, dual review, consent, audit."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect
from sqlalchemy import update

from forecourt.store.ledger import LedgerEntry
from tests.browser.conftest import Site, code
from tests.edge.app.world import FOREIGN_VIN
from tests.edge.workflow.fakes import VIN

pytestmark = pytest.mark.browser


def test_technician_signs_in_with_totp_and_sees_the_activation_reach_done(site: Site) -> None:
    page = site.page()
    page.goto("/login")
    site.shot(page, "login")
    site.sign_in(page, site.world.technician)
    expect(page).to_have_url(re.compile(r"/dashboard$"))
    expect(page.get_by_role("table", name="Cars on the network")).to_contain_text(VIN)

    page.get_by_role("link", name="Select").first.click()
    page.locator("select[name=vin]").select_option(VIN)
    page.locator("label.feature", has_text="Connected services").locator("input").check()
    expect(page.locator("label.feature", has_text="Connected services")).to_contain_text(
        "Unavailable meanwhile"
    )
    page.get_by_role("button", name="Start activation").click()

    card = page.locator("article.wf").first
    expect(card.locator('[data-role="state"]')).to_have_text("done")
    expect(card.locator('[data-role="bar"]')).to_have_attribute("value", "100")
    expect(card.locator(".step-done")).to_have_count(8)
    site.shot(page, "dashboard")


def test_a_refused_activation_shows_its_reason(site: Site) -> None:
    world = site.world
    world.env.connector.cars["127.0.0.10"].apply_nrc = 0x72
    page = site.page()
    site.sign_in(page, world.technician)
    page.locator("select[name=vin]").select_option(VIN)
    page.locator("label.feature", has_text="Connected services").locator("input").check()
    page.get_by_role("button", name="Start activation").click()
    card = page.locator("article.wf").first
    expect(card.locator('[data-role="state"]')).to_have_text(re.compile("failed|refused"))
    expect(card.locator('[data-role="reason"]')).to_be_visible()


def test_a_manager_approves_a_foreign_car_with_a_fresh_code(site: Site) -> None:
    world = site.world
    workflow_id = world.activation.start(
        world.technician.operator, features=["CONNECT"], vin=FOREIGN_VIN, address="127.0.0.12"
    )
    world.activation.wait(workflow_id)

    requester = site.page()
    site.sign_in(requester, world.technician)
    requester.goto("/reviews")
    expect(requester.locator("li.review")).to_contain_text("You requested this")
    expect(requester.get_by_role("button", name="Approve")).to_have_count(0)

    page = site.page()
    site.sign_in(page, world.manager)
    page.goto("/reviews")
    review = page.locator("li.review").first
    expect(review).to_contain_text("foreign vehicle")
    expect(review).to_contain_text(FOREIGN_VIN)
    expect(review).to_contain_text(world.technician.operator.username)
    site.shot(page, "reviews")
    review.get_by_label("Your authenticator code").fill(code(world.manager, 0))
    review.get_by_label("Note").fill("transfer agreed with dealer-b")
    review.get_by_role("button", name="Approve").click()
    expect(page.get_by_role("status")).to_contain_text("Approved")
    expect(page.locator("table")).to_contain_text(re.compile("approved|executed"))
    assert world.activation.wait(workflow_id).state.value == "done"


def test_a_customer_grants_then_withdraws_consent_on_the_tablet(site: Site) -> None:
    page = site.page(viewport=(1024, 1366))
    site.sign_in(page, site.world.technician)
    page.goto(f"/consent?vin={VIN}")
    page.get_by_role("link", name="de").click()
    expect(page.locator('[data-category="location"] legend')).to_have_text("Standort")
    page.get_by_label("Customer reference").fill("contract-4711")
    location = page.locator('fieldset[data-category="location"]')
    location.get_by_label("Allow", exact=True).check()
    site.shot(page, "consent")
    page.get_by_role("button", name="Save my choices").click()
    expect(page.get_by_role("status")).to_contain_text("recorded")
    granted = page.locator('ul.granted li[data-category="location"]')
    expect(granted).to_be_visible()
    granted.get_by_role("button", name="Withdraw").click()
    expect(page.locator('[data-role="nothing-granted"]')).to_be_visible()
    expect(location.get_by_label("Don't allow")).to_be_checked()


def test_an_auditor_sees_entries_verified_and_an_altered_one_flagged(site: Site) -> None:
    world = site.world
    workflow_id = world.activation.start(
        world.technician.operator, features=["CONNECT"], vin=VIN, address="127.0.0.10"
    )
    world.activation.wait(workflow_id)
    page = site.page()
    site.sign_in(page, world.auditor)
    expect(page).to_have_url(re.compile(r"/audit$"))
    verdicts = page.locator('[data-role="verdict"]')
    expect(verdicts.first).to_have_text("verified")
    expect(page.locator('[data-role="verdict"]', has_text="verified")).to_have_count(
        verdicts.count()
    )
    site.shot(page, "audit")

    with world.env.sessions.begin() as s:
        s.execute(
            update(LedgerEntry)
            .where(LedgerEntry.idx == 1)
            .values(payload=LedgerEntry.payload + b" ")
        )
    page.reload()
    expect(page.locator('tr.entry[data-index="1"] [data-role="verdict"]')).to_have_text("altered")
    expect(page.locator('tr.entry[data-index="0"] [data-role="verdict"]')).to_have_text("verified")


def test_the_status_page_shows_the_self_check(site: Site) -> None:
    page = site.page()
    site.sign_in(page, site.world.technician)
    page.goto("/status")
    expect(page.locator('[data-check="database"]')).to_contain_text("ok")
    expect(page.locator('[data-check="offline_stock"]')).to_contain_text("warn")
    site.shot(page, "status")
