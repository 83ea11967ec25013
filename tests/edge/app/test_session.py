"""Login, session cookie, CSRF, security headers, first-login enrolment."""

from __future__ import annotations

import re

import pytest

from forecourt.edge.operators import Role
from forecourt.edge.operators.totp import code_at
from tests.edge.app.conftest import Console
from tests.edge.app.world import ConsoleWorld
from tests.edge.operators.conftest import PASSWORD
from tests.edge.workflow.fakes import VIN

pytestmark = pytest.mark.anyio


async def test_login_sets_an_httponly_samesite_strict_cookie_and_returns_the_csrf_token(
    console: Console,
) -> None:
    response = await console.login(console.world.technician)
    assert response.status_code == 200
    cookie = response.headers["set-cookie"]
    assert cookie.startswith("fc_session=")
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie
    assert "Secure" not in cookie  # plain http in this test; TLS makes it Secure
    me = (await console.get("/api/v1/me")).json()
    assert me["operator"]["role"] == "technician"
    assert me["csrf_token"] == console.csrf
    assert "activation.start" in me["operator"]["permissions"]


async def test_cookie_is_secure_when_served_over_tls(world: ConsoleWorld) -> None:
    import httpx

    transport = httpx.ASGITransport(app=world.app)
    async with httpx.AsyncClient(transport=transport, base_url="https://console.test") as client:
        world.env.clock.advance(30)
        response = await client.post(
            "/api/v1/session",
            json={
                "username": world.technician.operator.username,
                "password": world.technician.password,
                "totp_code": world.technician.code(),
            },
        )
    assert "Secure" in response.headers["set-cookie"]
    assert response.headers["strict-transport-security"].startswith("max-age=")


async def test_wrong_code_is_refused_without_saying_which_factor_and_is_counted(
    console: Console,
) -> None:
    person = console.world.technician
    response = await console.http.post(
        "/api/v1/session",
        json={
            "username": person.operator.username,
            "password": person.password,
            "totp_code": "000000",
        },
    )
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["code"] == "login_failed"
    assert "set-cookie" not in response.headers
    metrics = (await console.get("/metrics")).text
    assert 'forecourt_edge_login_failures_total{kind="login"} 1.0' in metrics


async def test_every_response_carries_the_security_headers(console: Console) -> None:
    for path in ("/login", "/api/v1/me", "/healthz", "/static/console.css"):
        headers = (await console.get(path)).headers
        csp = headers["content-security-policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp
        assert "frame-ancestors 'none'" in csp
        assert headers["x-frame-options"] == "DENY"
        assert headers["referrer-policy"] == "no-referrer"
        assert headers["x-content-type-options"] == "nosniff"


async def test_without_a_session_the_api_answers_problem_json_and_pages_go_to_login(
    console: Console,
) -> None:
    api = await console.get("/api/v1/vehicles")
    assert api.status_code == 401
    assert api.json()["code"] == "session_required"
    page = await console.get("/dashboard")
    assert page.status_code == 303
    assert page.headers["location"] == "/login"


async def test_a_state_change_without_the_csrf_token_is_refused_and_starts_nothing(
    console: Console,
) -> None:
    await console.login(console.world.technician)
    response = await console.http.post(
        "/api/v1/activations", json={"vin": VIN, "features": ["CONNECT"]}
    )
    assert response.status_code == 403
    assert response.json()["code"] == "csrf_mismatch"
    wrong = await console.http.post(
        "/api/v1/activations",
        json={"vin": VIN, "features": ["CONNECT"]},
        headers={"x-csrf-token": "not-the-token"},
    )
    assert wrong.json()["code"] == "csrf_mismatch"
    assert (await console.get("/api/v1/activations")).json() == []


async def test_a_form_is_accepted_with_the_csrf_token_as_a_form_field(console: Console) -> None:
    await console.login(console.world.technician)
    response = await console.http.post(
        "/consent",
        data={
            "csrf_token": console.csrf,
            "vin": VIN,
            "notice_version": "eu-2025.1",
            "language": "en",
            "subject_ref": "contract-1",
            "c_location": "grant",
        },
    )
    assert response.status_code == 303
    assert "notice=consent_saved" in response.headers["location"]
    refused = await console.http.post(
        "/consent", data={"vin": VIN, "notice_version": "eu-2025.1", "c_location": "deny"}
    )
    assert refused.status_code == 403  # no token in the form: an HTML refusal page
    view = (await console.get(f"/api/v1/consent/{VIN}")).json()
    assert next(c for c in view["categories"] if c["category"] == "location")["decision"] == (
        "granted"
    )


async def test_logout_ends_the_session(console: Console) -> None:
    await console.login(console.world.technician)
    assert (
        await console.http.delete("/api/v1/session", headers=console.headers())
    ).status_code == 204
    assert (await console.get("/api/v1/me")).status_code == 401


async def test_first_login_shows_the_totp_qr_and_the_first_code_signs_in(
    console: Console,
) -> None:
    world = console.world
    created = world.env.operators.create_operator(
        world.admin.operator,
        dealer_id=world.services.dealer_id,
        username="newcomer",
        display_name="New Technician",
        role=Role.TECHNICIAN,
    )
    wrong = await console.pre_session_post(
        "/login/enrol", {"username": "newcomer", "enrolment_code": "AAAAA-BBBBB-CCCCC-DDDDD"}
    )
    assert wrong.status_code == 401 and "data:image/svg+xml" not in wrong.text
    assert "enrolment code not accepted" in wrong.text
    page = await console.pre_session_post(
        "/login/enrol", {"username": "newcomer", "enrolment_code": created.enrolment_code}
    )
    assert page.status_code == 200
    assert 'src="data:image/svg+xml' in page.text
    secret = re.search(r'<code class="secret">([A-Z2-7]+)</code>', page.text)
    assert secret is not None
    world.env.clock.advance(30)
    enrolled = await console.pre_session_post(
        "/login/enrol/complete",
        {
            "username": "newcomer",
            "enrolment_code": created.enrolment_code,
            "password": PASSWORD,
            "password_again": PASSWORD,
            "totp_code": code_at(secret.group(1), world.env.clock()),
        },
    )
    assert enrolled.status_code == 200 and "Sign in with the next code" in enrolled.text
    assert world.env.operators.get(created.operator.id).totp_enrolled
    world.env.clock.advance(30)
    signed_in = await console.pre_session_post(
        "/login",
        {
            "username": "newcomer",
            "password": PASSWORD,
            "totp_code": code_at(secret.group(1), world.env.clock()),
        },
    )
    assert signed_in.status_code == 303 and signed_in.headers["location"] == "/dashboard"
    assert "fc_session=" in signed_in.headers["set-cookie"]


async def test_an_enrolled_account_never_gets_a_new_authenticator_from_a_code(
    console: Console,
) -> None:
    person = console.world.technician
    page = await console.pre_session_post(
        "/login/enrol", {"username": person.operator.username, "enrolment_code": "ANY-CODE-AT-ALL"}
    )
    assert page.status_code == 401
    assert "data:image" not in page.text
    assert "already been used" in page.text


async def test_the_sign_in_form_without_its_form_token_is_refused(console: Console) -> None:
    person = console.world.technician
    console.world.env.clock.advance(30)
    form = {
        "username": person.operator.username,
        "password": person.password,
        "totp_code": person.code(),
    }
    refused = await console.http.post("/login", data=form)
    assert refused.status_code == 403
    assert "set-cookie" not in refused.headers or "fc_session=" not in refused.headers["set-cookie"]
    await console.form_token("/login")  # the browser now holds a token cookie
    forged = await console.http.post("/login", data={**form, "form_token": "x" * 43})
    assert forged.status_code == 403
    accepted = await console.pre_session_post("/login", form)
    assert accepted.status_code == 303
