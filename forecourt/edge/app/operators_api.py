"""``/api/v1/operators``: operator management for dealer admins, as JSON.

The same checks as the Operators page (:mod:`forecourt.edge.app.accounts`). ``POST`` answers the
enrolment code once; no other route ever returns it.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from forecourt.edge.app import accounts
from forecourt.edge.app.context import Auth, Ctx
from forecourt.edge.operators import Role

USERNAME_PATTERN = r"^[a-z0-9._-]+$"


class OperatorIn(BaseModel):
    username: str = Field(min_length=1, max_length=64, pattern=USERNAME_PATTERN)
    display_name: str = Field(min_length=1, max_length=120)
    role: Role
    reason: str = Field(default="new operator", min_length=1, max_length=500)


class RoleIn(BaseModel):
    role: Role
    reason: str = Field(default="role change", min_length=1, max_length=500)


def create_operators_api_router() -> APIRouter:
    router = APIRouter(prefix="/api/v1/operators", tags=["operators"])

    @router.get("")
    async def list_operators(session: Auth, ctx: Ctx) -> list[dict[str, Any]]:
        return await run_in_threadpool(accounts.list_accounts, ctx, session.operator)

    @router.post("", status_code=201)
    async def add(body: OperatorIn, session: Auth, ctx: Ctx) -> dict[str, Any]:
        created = await run_in_threadpool(
            lambda: accounts.add_account(
                ctx,
                session.operator,
                username=body.username,
                display_name=body.display_name,
                role=body.role,
                reason=body.reason,
            )
        )
        return accounts.new_operator_json(created, ctx.services.clock())

    @router.post("/{operator_id}/role")
    async def role(operator_id: str, body: RoleIn, session: Auth, ctx: Ctx) -> dict[str, Any]:
        changed = await run_in_threadpool(
            accounts.change_role, ctx, session.operator, operator_id, body.role, body.reason
        )
        return accounts.account_json(changed, ctx.services.clock())

    @router.post("/{operator_id}/deactivate")
    async def deactivate(operator_id: str, session: Auth, ctx: Ctx) -> dict[str, Any]:
        changed = await run_in_threadpool(
            accounts.set_active, ctx, session.operator, operator_id, False
        )
        return accounts.account_json(changed, ctx.services.clock())

    @router.post("/{operator_id}/activate")
    async def activate(operator_id: str, session: Auth, ctx: Ctx) -> dict[str, Any]:
        changed = await run_in_threadpool(
            accounts.set_active, ctx, session.operator, operator_id, True
        )
        return accounts.account_json(changed, ctx.services.clock())

    return router
