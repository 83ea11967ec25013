"""Console sign-in with TOTP secrets sealed at rest: works end to end; unreadable is a 401."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import update

from forecourt.edge.operators.sealing import SEALED_PREFIX
from forecourt.store.edge import EdgeOperator
from tests.edge.app.conftest import Console
from tests.edge.operators.conftest import Person

pytestmark = pytest.mark.anyio


def _raw_secret(database: Path, operator_id: str) -> str:
    with sqlite3.connect(database) as conn:
        row = conn.execute(
            "SELECT totp_secret FROM edge_operators WHERE id = ?", (operator_id,)
        ).fetchone()
    assert row is not None and isinstance(row[0], str)
    return row[0]


async def _form_login(console: Console, person: Person) -> tuple[int, str, str | None]:
    console.world.env.clock.advance(30)  # a fresh TOTP step
    response = await console.pre_session_post(
        "/login",
        {
            "username": person.operator.username,
            "password": person.password,
            "totp_code": person.code(),
        },
    )
    return response.status_code, response.text, response.headers.get("set-cookie")


async def test_the_sign_in_form_works_while_the_row_holds_only_the_sealed_secret(
    console: Console, tmp_path: Path
) -> None:
    tech = console.world.technician
    stored = _raw_secret(tmp_path / "edge.sqlite3", tech.operator.id)
    assert stored.startswith(SEALED_PREFIX) and tech.totp_secret not in stored

    status, _, cookie = await _form_login(console, tech)

    assert status == 303
    assert cookie is not None and cookie.startswith("fc_session=")
    me = (await console.get("/api/v1/me")).json()
    assert me["operator"]["id"] == tech.operator.id


async def test_a_secret_swapped_from_another_row_is_a_refused_sign_in_never_a_500(
    console: Console, tmp_path: Path
) -> None:
    world = console.world
    tech, senior = world.technician, world.senior
    database = tmp_path / "edge.sqlite3"
    with world.env.sessions.begin() as s:
        s.execute(
            update(EdgeOperator)
            .where(EdgeOperator.id == tech.operator.id)
            .values(totp_secret=_raw_secret(database, senior.operator.id))
        )

    status, page, cookie = await _form_login(console, tech)
    assert status == 401
    assert "fc_session=" not in (cookie or "")
    assert "Sign-in failed. Check your username, password and the current code." in page

    world.env.clock.advance(30)
    response = await console.http.post(
        "/api/v1/session",
        json={
            "username": tech.operator.username,
            "password": tech.password,
            "totp_code": senior.code(),  # the code the moved secret would give: still refused
        },
    )
    assert response.status_code == 401
    assert response.json()["code"] == "login_failed"
    for secret in (tech.totp_secret, senior.totp_secret):
        assert secret not in response.text and secret not in page
