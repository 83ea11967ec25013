"""RFC 9457 problem details, shared by every service that answers HTTP.

A service keeps its own stable code enum and its own subclass of :class:`Problem`; this module
owns the document's shape (``type`` = ``urn:forecourt:problem:<code>``, ``title``, ``status``,
``detail``, ``code``, then any extension members), the ``application/problem+json`` response,
and the mapping of FastAPI's own refusals (request validation, unknown route) onto problems, so
the wire format is written once and every service answers alike. Clients key on ``code``,
never on text.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Generic, TypeVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

PROBLEM_JSON = "application/problem+json"

CodeT = TypeVar("CodeT", bound=str)


def problem_document(
    status: int,
    code: str,
    title: str,
    detail: str,
    *,
    instance: str | None = None,
    extensions: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The RFC 9457 body; member order is stable so bodies compare byte for byte."""
    body: dict[str, Any] = {
        "type": f"urn:forecourt:problem:{code}",
        "title": title,
        "status": status,
        "detail": detail,
        "code": str(code),
    }
    if instance is not None:
        body["instance"] = instance
    if extensions:
        body.update(extensions)
    return body


class Problem(Exception, Generic[CodeT]):
    """A refusal answered with a problem document (never a stack trace).

    ``code`` is the service's stable code (a member of its ``StrEnum``, or a plain string);
    ``extensions`` become extra members of the document.
    """

    def __init__(
        self, status: int, code: CodeT, title: str, detail: str, **extensions: Any
    ) -> None:
        super().__init__(f"{code}: {detail}")
        self.status = status
        self.code = code
        self.title = title
        self.detail = detail
        self.extensions = extensions

    def document(self, instance: str | None = None) -> dict[str, Any]:
        """The RFC 9457 body, with ``instance`` (the request path) when given."""
        return problem_document(
            self.status,
            self.code,
            self.title,
            self.detail,
            instance=instance,
            extensions=self.extensions,
        )


def problem_response(
    problem: Problem[Any],
    instance: str | None = None,
    *,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    """A ``JSONResponse`` with the problem media type and the problem's status."""
    return JSONResponse(
        problem.document(instance),
        status_code=problem.status,
        media_type=PROBLEM_JSON,
        headers=headers,
    )


def problem_json(
    status: int,
    code: str,
    title: str,
    detail: str,
    *,
    headers: Mapping[str, str] | None = None,
    **extensions: Any,
) -> JSONResponse:
    """A problem response built in place, for routes that return rather than raise."""
    return problem_response(Problem(status, code, title, detail, **extensions), headers=headers)


def install_problem_handlers(
    app: FastAPI,
    *,
    handled: tuple[type[Exception], ...],
    to_problem: Callable[[Exception], Problem[CodeT]],
    respond: Callable[[Request, Problem[CodeT]], Response],
    validation_failed: CodeT,
    not_found: CodeT,
    internal_error: str = "internal_error",
) -> None:
    """Route the service's errors and FastAPI's own refusals through ``respond``.

    ``handled`` are the exception roots the service raises and ``to_problem`` maps each onto
    its problem; a request FastAPI cannot validate becomes 422 ``validation_failed`` with the
    ``errors`` member (location and message only, never the input), an unknown route 404
    ``not_found`` and any other framework refusal its status with ``validation_failed``.

    Anything else (a bug, a lost database) is 500 ``internal_error`` without details, sent with
    ``Connection: close``: Starlette re-raises the exception after this answer so the server logs
    it, and uvicorn then closes the connection. A keep-alive client that was not told would send
    its next request into that closing socket and see a spurious transport failure.
    """

    async def on_handled(request: Request, exc: Exception) -> Response:
        return respond(request, to_problem(exc))

    async def on_validation(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        errors: list[dict[str, Any]] = [
            {"loc": [str(p) for p in e.get("loc", ())], "msg": str(e.get("msg", ""))}
            for e in exc.errors()
        ]
        detail = "; ".join(f"{'.'.join(e['loc'])}: {e['msg']}" for e in errors)
        problem = Problem(422, validation_failed, "Request is not valid", detail, errors=errors)
        return respond(request, problem)

    async def on_http(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        missing = exc.status_code == 404
        problem = Problem(
            exc.status_code,
            not_found if missing else validation_failed,
            "Not found" if missing else "Request refused",
            str(exc.detail),
        )
        return respond(request, problem)

    async def on_crash(request: Request, _exc: Exception) -> Response:
        problem: Problem[str] = Problem(
            500,
            internal_error,
            "Internal error",
            "the server could not complete the request",
        )
        response = respond(request, problem)  # type: ignore[arg-type]
        response.headers["connection"] = "close"
        return response

    for kind in handled:
        app.add_exception_handler(kind, on_handled)
    app.add_exception_handler(Exception, on_crash)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
