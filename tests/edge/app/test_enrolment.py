"""First sign-in with a one-time enrolment code: each refusal says why, changes nothing it should
not, counts towards the lock-out where the service says so, and no secret reaches a URL or a log."""

from __future__ import annotations

import re
from datetime import timedelta

import httpx
import pytest
from structlog.testing import capture_logs

from forecourt.edge.operators import NewOperator, Role
from forecourt.edge.operators.totp import code_at
from tests.edge.app.conftest import Console
from tests.edge.operators.conftest import PASSWORD

pytestmark = pytest.mark.anyio


def _add(console: Console, username: str = "newcomer") -> NewOperator:
    world = console.world
    return world.env.operators.create_operator(
        world.admin.operator,
        dealer_id=world.services.dealer_id,
        username=username,
        display_name="New Technician",
        role=Role.TECHNICIAN,
    )


async def _begin(console: Console, username: str, code: str) -> httpx.Response:
    return await console.pre_session_post(
        "/login/enrol", {"username": username, "enrolment_code": code}
    )


def _secret(page: httpx.Response) -> str:
    found = re.search(r'<code class="secret">([A-Z2-7]+)</code>', page.text)
    assert found is not None
    return found.group(1)


async def _complete(
    console: Console, created: NewOperator, totp_code: str, password_again: str = PASSWORD
) -> httpx.Response:
    return await console.pre_session_post(
        "/login/enrol/complete",
        {
            "username": created.operator.username,
            "enrolment_code": created.enrolment_code,
            "password": PASSWORD,
            "password_again": password_again,
            "totp_code": totp_code,
        },
    )


async def test_a_wrong_code_is_refused_and_repeated_wrong_codes_lock_the_account(
    console: Console,
) -> None:
    created = _add(console)
    for _ in range(2):  # the console world locks after 3 consecutive failures
        wrong = await _begin(console, "newcomer", "AAAAA-BBBBB-CCCCC-DDDDD")
        assert wrong.status_code == 401
        assert "Username or enrolment code not accepted" in wrong.text
    locked = await _begin(console, "newcomer", "AAAAA-BBBBB-CCCCC-DDDDD")
    assert "locked" in locked.text
    right_but_locked = await _begin(console, "newcomer", created.enrolment_code)
    assert right_but_locked.status_code == 401 and "locked" in right_but_locked.text
    assert "data:image" not in right_but_locked.text
    metrics = (await console.get("/metrics")).text
    assert 'forecourt_edge_login_failures_total{kind="enrolment"} 4.0' in metrics


async def test_an_unknown_username_reads_exactly_like_a_wrong_code(console: Console) -> None:
    _add(console)
    unknown = await _begin(console, "nobody", "AAAAA-BBBBB-CCCCC-DDDDD")
    wrong = await _begin(console, "newcomer", "AAAAA-BBBBB-CCCCC-DDDDD")
    assert unknown.status_code == wrong.status_code == 401
    message = re.compile(r'role="alert">([^<]+)<')
    assert message.search(unknown.text).group(1) == message.search(wrong.text).group(1)  # type: ignore[union-attr]


async def test_an_expired_code_is_refused_with_its_reason(console: Console) -> None:
    created = _add(console)
    console.world.env.clock.advance(timedelta(hours=24, seconds=1).total_seconds())
    page = await _begin(console, "newcomer", created.enrolment_code)
    assert page.status_code == 401
    assert "expired" in page.text and "data:image" not in page.text


async def test_a_used_code_is_refused_and_the_account_signs_in_normally(console: Console) -> None:
    created = _add(console)
    secret = _secret(await _begin(console, "newcomer", created.enrolment_code))
    clock = console.world.env.clock
    assert (await _complete(console, created, code_at(secret, clock()))).status_code == 200
    again = await _begin(console, "newcomer", created.enrolment_code)
    assert again.status_code == 401 and "already been used" in again.text
    clock.advance(30)
    login = await console.pre_session_post(
        "/login",
        {"username": "newcomer", "password": PASSWORD, "totp_code": code_at(secret, clock())},
    )
    assert login.status_code == 303


async def test_a_wrong_authenticator_code_keeps_the_enrolment_code_and_asks_again(
    console: Console,
) -> None:
    created = _add(console)
    secret = _secret(await _begin(console, "newcomer", created.enrolment_code))
    wrong = await _complete(console, created, "000000")
    assert wrong.status_code == 401 and "authenticator code was not accepted" in wrong.text
    assert 'action="/login/enrol/complete"' in wrong.text
    assert not console.world.env.operators.get(created.operator.id).totp_enrolled
    right = await _complete(console, created, code_at(secret, console.world.env.clock()))
    assert right.status_code == 200
    assert console.world.env.operators.get(created.operator.id).totp_enrolled


async def test_differing_passwords_change_nothing(console: Console) -> None:
    created = _add(console)
    secret = _secret(await _begin(console, "newcomer", created.enrolment_code))
    code = code_at(secret, console.world.env.clock())
    refused = await _complete(console, created, code, password_again=PASSWORD + "!")
    assert refused.status_code == 422 and "two passwords differ" in refused.text
    assert not console.world.env.operators.get(created.operator.id).totp_enrolled
    assert (await _complete(console, created, code)).status_code == 200  # code still unspent


async def test_a_weak_password_is_refused_with_the_rule_it_breaks(console: Console) -> None:
    created = _add(console)
    secret = _secret(await _begin(console, "newcomer", created.enrolment_code))
    weak = await console.pre_session_post(
        "/login/enrol/complete",
        {
            "username": "newcomer",
            "enrolment_code": created.enrolment_code,
            "password": "short",
            "password_again": "short",
            "totp_code": code_at(secret, console.world.env.clock()),
        },
    )
    assert weak.status_code == 422 and "shorter than 12 characters" in weak.text
    assert not console.world.env.operators.get(created.operator.id).totp_enrolled


async def test_enrolment_forms_without_their_form_token_are_refused_and_spend_nothing(
    console: Console,
) -> None:
    created = _add(console)
    refused = await console.http.post(
        "/login/enrol", data={"username": "newcomer", "enrolment_code": created.enrolment_code}
    )
    assert refused.status_code == 403 and "data:image" not in refused.text
    page = await _begin(console, "newcomer", created.enrolment_code)
    assert page.status_code == 200


async def test_no_code_password_or_secret_reaches_a_url_or_a_log(console: Console) -> None:
    created = _add(console)
    with capture_logs() as events:
        page = await _begin(console, "newcomer", created.enrolment_code)
        secret = _secret(page)
        done = await _complete(console, created, code_at(secret, console.world.env.clock()))
    assert done.status_code == 200
    for response in (page, done):
        assert "location" not in response.headers
    logged = repr(events)
    for value in (created.enrolment_code, secret, PASSWORD):
        assert value not in logged
    assert any(e["event"] == "console_enrolment_completed" for e in events)
