"""RFC 9457 problem details for the blob endpoints.

``code`` is a stable extension member clients branch on; ``title`` and ``detail`` are for people.
"""

from __future__ import annotations

from typing import Any

from fastapi.responses import JSONResponse

PROBLEM_JSON = "application/problem+json"


def problem(
    status: int,
    code: str,
    title: str,
    detail: str,
    *,
    headers: dict[str, str] | None = None,
    **extensions: Any,
) -> JSONResponse:
    """A ``application/problem+json`` response whose ``type`` is derived from ``code``."""
    body: dict[str, Any] = {
        "type": f"urn:forecourt:problem:{code}",
        "title": title,
        "status": status,
        "detail": detail,
        "code": code,
        **extensions,
    }
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_JSON)
