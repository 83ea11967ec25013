"""``create_app``: the edge's web app (JSON API, console pages, metrics, health) for one dealer."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.concurrency import run_in_threadpool

from forecourt.edge.app.api import create_api_router
from forecourt.edge.app.consent import ConsentDesk
from forecourt.edge.app.context import ConsoleContext
from forecourt.edge.app.metrics import ConsoleMetrics
from forecourt.edge.app.operators_api import create_operators_api_router
from forecourt.edge.app.pages import create_pages_router
from forecourt.edge.app.problems import HANDLED, ProblemCode, problem_for
from forecourt.edge.app.security import add_security_headers
from forecourt.edge.app.services import ConsoleSettings, EdgeServices
from forecourt.edge.app.transparency_pages import create_transparency_router
from forecourt.http.problems import Problem, install_problem_handlers, problem_response
from forecourt.logging import get_logger

_log = get_logger("edge.app")
_HERE = Path(__file__).parent


def create_app(services: EdgeServices, settings: ConsoleSettings | None = None) -> FastAPI:
    """The console for ``services.dealer_id``. Serve with uvicorn (TLS in production).

    The app subscribes its metrics to the activation service while it runs (lifespan) and owns
    nothing else: shutting the services down is the caller's job.
    """
    settings = settings or ConsoleSettings()
    metrics = ConsoleMetrics()
    context = ConsoleContext(
        services=services,
        settings=settings,
        metrics=metrics,
        consent=ConsentDesk(
            services.sessions, services.profile, services.dealer_id, settings.notice_id
        ),
    )

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        unsubscribe = metrics.watch(services.activations)
        unwatch_anomalies = metrics.watch_anomalies(services.anomalies)
        try:
            yield
        finally:
            unwatch_anomalies()
            unsubscribe()

    app = FastAPI(
        title=settings.title,
        version="1",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url="/api/v1/openapi.json",
    )
    app.state.console = context
    app.state.templates = Jinja2Templates(directory=str(_HERE / "templates"))
    app.middleware("http")(add_security_headers)
    _install_error_handlers(app)
    app.include_router(create_api_router())
    app.include_router(create_operators_api_router())
    app.include_router(create_pages_router())
    app.include_router(create_transparency_router())
    app.mount("/static", StaticFiles(directory=str(_HERE / "static")), name="static")

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok", "dealer_id": services.dealer_id}

    @app.get("/metrics", include_in_schema=False)
    async def metrics_endpoint() -> Response:
        await run_in_threadpool(metrics.refresh_anomalies)
        return Response(metrics.exposition(), media_type=metrics.content_type)

    return app


def _is_api(request: Request) -> bool:
    return request.url.path.startswith("/api/")


def _problem_response(request: Request, problem: Problem[ProblemCode]) -> Response:
    if problem.status >= 500:
        _log.error("request_failed", path=request.url.path, code=problem.code.value)
    else:
        _log.warning(
            "request_refused",
            path=request.url.path,
            method=request.method,
            status=problem.status,
            code=problem.code.value,
        )
    if _is_api(request):
        return problem_response(problem, request.url.path)
    if problem.code in (ProblemCode.SESSION_REQUIRED, ProblemCode.SESSION_INVALID):
        return RedirectResponse("/login", status_code=303)
    templates: Jinja2Templates = request.app.state.templates
    return templates.TemplateResponse(
        request,
        "error.html",
        {"problem": problem, "me": None, "csrf_token": None, "page": "error"},
        status_code=problem.status,
    )


def _install_error_handlers(app: FastAPI) -> None:
    install_problem_handlers(
        app,
        handled=HANDLED,
        to_problem=problem_for,
        respond=_problem_response,
        validation_failed=ProblemCode.VALIDATION_FAILED,
        not_found=ProblemCode.NOT_FOUND,
    )
