"""Fixtures: a console world per test and an httpx client over the ASGI app (no sockets)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.edge.app.world import ConsoleWorld, build_world
from tests.edge.operators.conftest import Person


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def world(tmp_path: Path) -> Iterator[ConsoleWorld]:
    yield from build_world(tmp_path)


class Console:
    """A browser-less client: keeps the session cookie and the CSRF token like the pages do."""

    def __init__(self, client: httpx.AsyncClient, world: ConsoleWorld) -> None:
        self.http = client
        self.world = world
        self.csrf: str | None = None

    async def login(self, person: Person) -> httpx.Response:
        self.world.env.clock.advance(30)  # a fresh TOTP step for every login
        response = await self.http.post(
            "/api/v1/session",
            json={
                "username": person.operator.username,
                "password": person.password,
                "totp_code": person.code(),
            },
        )
        if response.status_code == 200:
            self.csrf = response.json()["csrf_token"]
        return response

    async def form_token(self, path: str = "/login") -> str:
        """Open a pre-session page (sign-in, first sign-in) and read its form's CSRF token."""
        page = await self.http.get(path)
        found = re.search(r'name="form_token" value="([^"]+)"', page.text)
        assert found is not None, f"{path} has no form token"
        return found.group(1)

    async def pre_session_post(self, path: str, data: dict[str, str]) -> httpx.Response:
        """Post a pre-session form as a browser does: the token its page set, in the form."""
        page = "/login/enrol" if path.startswith("/login/enrol") else "/login"
        return await self.http.post(path, data={**data, "form_token": await self.form_token(page)})

    def headers(self) -> dict[str, str]:
        return {"x-csrf-token": self.csrf} if self.csrf else {}

    async def post(self, path: str, body: Any = None) -> httpx.Response:
        return await self.http.post(path, json=body, headers=self.headers())

    async def get(self, path: str, **params: Any) -> httpx.Response:
        return await self.http.get(path, params=params)


@pytest.fixture
async def console(world: ConsoleWorld) -> AsyncIterator[Console]:
    transport = httpx.ASGITransport(app=world.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://console.test") as client:
        yield Console(client, world)


@pytest.fixture
async def console2(world: ConsoleWorld) -> AsyncIterator[Console]:
    """A second operator's browser against the same console."""
    transport = httpx.ASGITransport(app=world.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://console.test") as client:
        yield Console(client, world)
