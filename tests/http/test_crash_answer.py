"""A request that crashes the handler gets a 500 problem and ``Connection: close``, so a
keep-alive client's next request goes on a fresh connection instead of one being closed."""

from __future__ import annotations

from enum import StrEnum

import httpx
import uvicorn
from fastapi import FastAPI

from forecourt.http.problems import Problem, install_problem_handlers, problem_response
from forecourt.http.serving import serve_in_thread


class _Code(StrEnum):
    VALIDATION_FAILED = "validation_failed"
    NOT_FOUND = "not_found"


def _app() -> FastAPI:
    app = FastAPI()
    install_problem_handlers(
        app,
        handled=(Problem,),
        to_problem=lambda exc: exc,  # type: ignore[arg-type,return-value]
        respond=lambda request, problem: problem_response(problem, request.url.path),
        validation_failed=_Code.VALIDATION_FAILED,
        not_found=_Code.NOT_FOUND,
    )

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("database connection lost with secret=hunter2")

    @app.get("/ok")
    def ok() -> dict[str, str]:
        return {"status": "ok"}

    return app


def test_a_crash_answers_a_detail_free_problem_and_the_next_request_succeeds() -> None:
    config = uvicorn.Config(_app(), lifespan="off", log_level="critical", access_log=False)
    with (
        serve_in_thread(config, "127.0.0.1", name="crash-test") as url,
        httpx.Client(base_url=url, timeout=10) as client,
    ):
        for _ in range(30):  # without the header, some of these reuse a closing connection
            crashed = client.get("/boom")
            assert crashed.status_code == 500
            assert crashed.headers["connection"] == "close"
            assert crashed.headers["content-type"] == "application/problem+json"
            body = crashed.json()
            assert body["code"] == "internal_error"
            assert "hunter2" not in crashed.text and "RuntimeError" not in crashed.text
            assert client.get("/ok").json() == {"status": "ok"}
