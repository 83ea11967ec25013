"""The per-app state every route reads, and the typed FastAPI dependencies that hand it out.

One :class:`ConsoleContext` per ``create_app`` call lives in ``app.state``; nothing is a module
global, so tests and the demo can run several consoles (several dealers) in one process.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from forecourt.edge.app.consent import ConsentDesk
from forecourt.edge.app.metrics import ConsoleMetrics
from forecourt.edge.app.security import current_session
from forecourt.edge.app.services import ConsoleSettings, EdgeServices
from forecourt.edge.operators import AuthenticatedSession


@dataclass(frozen=True)
class ConsoleContext:
    services: EdgeServices
    settings: ConsoleSettings
    metrics: ConsoleMetrics
    consent: ConsentDesk


def get_context(request: Request) -> ConsoleContext:
    ctx = request.app.state.console
    assert isinstance(ctx, ConsoleContext)
    return ctx


Ctx = Annotated[ConsoleContext, Depends(get_context)]


async def get_session(request: Request, ctx: Ctx) -> AuthenticatedSession:
    return await current_session(request, ctx.services)


Auth = Annotated[AuthenticatedSession, Depends(get_session)]
