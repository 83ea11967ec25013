"""The auditor's transparency reports in the console: choose a period, read the headline
figures, download the report as HTML, JSON or PDF.

Who may: the holders of ``audit.read`` (auditor, service manager, dealer admin), checked on the
server for the page and for every download alike; anyone else gets 403 ``permission_denied``
(a problem page, or problem+json under ``/api/v1``). The report itself is
:mod:`forecourt.edge.transparency`: aggregates only, small cells suppressed, backed by a ledger
checkpoint that the edge issues if none covers the period's end yet.

The profile version cited is the cloud's number of the profile the console was started with
(``EdgeServices.profile_version``); a console started without it reports "not recorded".
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from forecourt.edge.app.context import Auth, ConsoleContext, Ctx
from forecourt.edge.app.notices import category_texts
from forecourt.edge.app.problems import ConsoleProblem, ProblemCode
from forecourt.edge.app.rendering import render
from forecourt.edge.operators import Operator, Permission, require
from forecourt.edge.transparency import (
    FORMATS,
    MEDIA_TYPES,
    Period,
    PeriodError,
    ProfileInForce,
    TransparencyReport,
    TransparencyReports,
    file_name,
    last_full_quarter,
    to_json,
)
from forecourt.edge.transparency import (
    render as render_report,
)
from forecourt.logging import get_logger

_log = get_logger("edge.app.transparency")

DateParam = Annotated[str | None, Query(alias="from", max_length=10)]
EndParam = Annotated[str | None, Query(alias="to", max_length=10)]


def english_purposes() -> dict[str, str]:
    """Why each data category is processed, as the privacy notice says it in English."""
    texts, _ = category_texts("en")
    return {category.value: text.purpose for category, text in texts.items()}


def _period(start: str | None, end: str | None, today: date) -> Period:
    """The period asked for, or the last full quarter when neither day is given."""
    if not start and not end:
        return last_full_quarter(today)
    try:
        if not start or not end:
            raise PeriodError("give both the first day and the day after the last, or neither")
        return Period.parse(start, end)
    except PeriodError as exc:
        _log.info("transparency_period_refused", reason=str(exc))
        raise ConsoleProblem(
            422, ProblemCode.VALIDATION_FAILED, "Period not valid", str(exc)
        ) from exc


def build_report(
    ctx: ConsoleContext, operator: Operator, start: str | None, end: str | None
) -> TransparencyReport:
    """The report for the period asked for, after the permission check (``audit.read``)."""
    services = ctx.services
    require(operator, Permission.AUDIT_READ, services.dealer_id)
    now = services.clock()
    period = _period(start, end, now.date())
    reports = TransparencyReports(
        services.sessions,
        services.dealer_id,
        ProfileInForce(services.profile, services.profile_version),
        purposes=english_purposes(),
        ledger=services.ledger,
        thresholds=services.anomalies.thresholds,
    )
    return reports.build(period, now)


def _download(report: TransparencyReport, fmt: str) -> Response:
    return Response(
        render_report(report, fmt),
        media_type=MEDIA_TYPES[fmt],
        headers={"content-disposition": f'attachment; filename="{file_name(report, fmt)}"'},
    )


def _check_format(fmt: str) -> None:
    if fmt not in FORMATS:
        raise ConsoleProblem(
            404, ProblemCode.NOT_FOUND, "No such format", f"reports come as {', '.join(FORMATS)}"
        )


def create_transparency_router() -> APIRouter:
    router = APIRouter(include_in_schema=False)

    @router.get("/transparency", response_class=HTMLResponse)
    async def page(
        request: Request, session: Auth, ctx: Ctx, start: DateParam = None, end: EndParam = None
    ) -> HTMLResponse:
        report = await run_in_threadpool(build_report, ctx, session.operator, start, end)
        doc: dict[str, Any] = to_json(report)
        return render(
            request,
            "transparency.html",
            "transparency",
            session,
            report=doc,
            start=report.period.start.isoformat(),
            end=report.period.end.isoformat(),
            label=report.period.label,
            formats=FORMATS,
        )

    @router.get("/transparency/report.{fmt}")
    async def download(
        fmt: str, session: Auth, ctx: Ctx, start: DateParam = None, end: EndParam = None
    ) -> Response:
        _check_format(fmt)
        report = await run_in_threadpool(build_report, ctx, session.operator, start, end)
        return await run_in_threadpool(_download, report, fmt)

    @router.get("/api/v1/transparency/report.{fmt}")
    async def api_download(
        fmt: str, session: Auth, ctx: Ctx, start: DateParam = None, end: EndParam = None
    ) -> Response:
        _check_format(fmt)
        report = await run_in_threadpool(build_report, ctx, session.operator, start, end)
        return await run_in_threadpool(_download, report, fmt)

    return router
