"""Package bytes (the blob router, resumable with Range) and package versions in the catalog.

Bytes are uploaded first (``PUT /v1/packages/{sha256}``, OEM staff), then the version is
published (``PUT /v1/catalog/packages``), which refuses a version whose blob is not stored with
the declared digest and size: the catalog never names bytes the cloud cannot serve.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from forecourt.blobs import BlobNotFound, blob_router
from forecourt.cloud.auth import (
    Scope,
    authenticate_staff,
    require_dealer_or_staff,
    require_scope,
)
from forecourt.cloud.catalog.service import put_package
from forecourt.cloud.context import CloudContext, get_context
from forecourt.cloud.problems import CloudProblem, ProblemCode
from forecourt.core import CoreError, SoftwarePackage, from_dict, to_json


def _authorize_blob(request: Request) -> object:
    """Reads: dealer certificate or staff ``read``; writes: staff ``packages:write``."""
    if request.method in ("GET", "HEAD"):
        return require_dealer_or_staff(request)
    context = get_context(request)
    with context.db.sessions() as session:
        staff = authenticate_staff(session, request.headers.get("authorization"))
    if Scope.PACKAGES_WRITE.value not in staff.scopes:
        raise CloudProblem(
            403, ProblemCode.SCOPE_MISSING, "Scope missing", f"{staff.subject} lacks packages:write"
        )
    return staff


def package_routers(context: CloudContext) -> list[APIRouter]:
    router = APIRouter(prefix="/v1", tags=["packages"])

    @router.put("/catalog/packages", dependencies=[require_scope(Scope.PACKAGES_WRITE)])
    def publish(body: dict[str, Any], request: Request) -> Any:
        try:
            package = from_dict(SoftwarePackage, body)
        except (CoreError, TypeError, ValueError) as exc:
            raise CloudProblem(
                422, ProblemCode.VALIDATION_FAILED, "Package invalid", str(exc)
            ) from exc
        ctx = get_context(request)
        try:
            ref = ctx.blobs.stat(package.sha256)
        except BlobNotFound as exc:
            raise CloudProblem(
                409,
                ProblemCode.PACKAGE_BLOB_MISSING,
                "Package bytes missing",
                f"upload {package.sha256} before publishing {package.name} {package.version}",
            ) from exc
        if ref.size != package.size:
            raise CloudProblem(
                409,
                ProblemCode.PACKAGE_BLOB_MISSING,
                "Package size differs",
                f"stored blob is {ref.size} bytes, the package says {package.size}",
            )
        with ctx.db.transaction() as session:
            put_package(session, package)
        ctx.catalog.invalidate()
        return to_json(package)

    @router.get("/images/targets")
    def image_targets(request: Request) -> Any:
        """The image repository's signed metadata (what exists; the director picks per car)."""
        ctx = get_context(request)
        require_dealer_or_staff(request)
        md = ctx.signer.image_metadata(ctx.config.clock())
        return md.to_dict()

    return [router, blob_router(context.blobs, _authorize_blob)]
