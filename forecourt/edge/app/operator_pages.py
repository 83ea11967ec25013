"""Operators page for dealer admins: the list, add (enrolment code shown once), role, (de)activate.

The enrolment code appears in the answer to the add form only (a 200 page, ``no-store``), never in
a redirect URL, and cannot be shown again: a lost code means deactivating the account and adding
it anew. Every action runs through :mod:`forecourt.edge.app.accounts`, which checks
``operator.manage`` on the server whatever the page offered.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from forecourt.edge.app import accounts
from forecourt.edge.app.accounts import ROLE_LABELS
from forecourt.edge.app.context import Auth, Ctx
from forecourt.edge.app.rendering import attempt, back, render
from forecourt.edge.operators import Operator, Role

PATH = "/operators"


def add_operator_pages(router: APIRouter) -> None:
    @router.get(PATH, response_class=HTMLResponse)
    async def operators(request: Request, session: Auth, ctx: Ctx) -> HTMLResponse:
        rows = await run_in_threadpool(accounts.list_accounts, ctx, session.operator)
        return render(
            request,
            "operators.html",
            "operators",
            session,
            operators=rows,
            roles=[(r.value, ROLE_LABELS[r]) for r in Role],
            created=None,
        )

    @router.post(PATH, response_class=HTMLResponse)
    async def add(
        *,
        request: Request,
        session: Auth,
        ctx: Ctx,
        username: Annotated[str, Form(min_length=1, max_length=64, pattern=r"^[a-z0-9._-]+$")],
        display_name: Annotated[str, Form(min_length=1, max_length=120)],
        role: Annotated[str, Form(max_length=32)],
        reason: Annotated[str, Form(max_length=500)] = "new operator",
    ) -> Response:
        def run() -> object:
            return accounts.add_account(
                ctx,
                session.operator,
                username=username.strip(),
                display_name=display_name.strip(),
                role=accounts.parse_role(role),
                reason=reason.strip() or "new operator",
            )

        created, failed = await attempt(PATH, run)
        if failed is not None:
            return failed
        rows = await run_in_threadpool(accounts.list_accounts, ctx, session.operator)
        return render(
            request,
            "operators.html",
            "operators",
            session,
            operators=rows,
            roles=[(r.value, ROLE_LABELS[r]) for r in Role],
            created=accounts.new_operator_json(created, ctx.services.clock()),
        )

    @router.post(PATH + "/{operator_id}/role")
    async def role(
        operator_id: str,
        session: Auth,
        ctx: Ctx,
        role: Annotated[str, Form(max_length=32)],
        reason: Annotated[str, Form(max_length=500)] = "role change",
    ) -> Response:
        def run() -> Operator:
            return accounts.change_role(
                ctx,
                session.operator,
                operator_id,
                accounts.parse_role(role),
                reason.strip() or "role change",
            )

        changed, failed = await attempt(PATH, run)
        if failed is not None:
            return failed
        pending = changed.pending_role is not None
        return back(PATH, notice="role_awaiting_review" if pending else "role_changed")

    @router.post(PATH + "/{operator_id}/deactivate")
    async def deactivate(operator_id: str, session: Auth, ctx: Ctx) -> Response:
        _, failed = await attempt(
            PATH, accounts.set_active, ctx, session.operator, operator_id, False
        )
        return failed or back(PATH, notice="deactivated")

    @router.post(PATH + "/{operator_id}/activate")
    async def activate(operator_id: str, session: Auth, ctx: Ctx) -> Response:
        _, failed = await attempt(
            PATH, accounts.set_active, ctx, session.operator, operator_id, True
        )
        return failed or back(PATH, notice="activated")
