"""``GET /v1/vehicles/{vin}/dossier``: OEM staff (``read`` scope) read one car's whole file."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from forecourt.cloud.auth import Scope, require_scope
from forecourt.cloud.context import get_context
from forecourt.cloud.dossier.document import build_dossier
from forecourt.cloud.dossier.queries import parse_vin, read_facts
from forecourt.logging import get_logger

_log = get_logger("cloud.dossier")


def dossier_router() -> APIRouter:
    router = APIRouter(prefix="/v1", tags=["dossier"])

    @router.get("/vehicles/{vin}/dossier", dependencies=[require_scope(Scope.READ)])
    def dossier(vin: str, request: Request) -> dict[str, Any]:
        """The car's dossier (``dossier_version`` 1): factory record, ECUs (key fingerprints
        only), lifecycle, entitlements, activations and offline packages (bundle SHA-256 only),
        R156 software history, consent records, workflow steps, a merged timeline and the
        ledger references a third party verifies. A malformed VIN is 422 ``validation_failed``
        naming the position; a VIN the registry does not hold is 404 ``vehicle_unknown``."""
        context = get_context(request)
        parsed = parse_vin(vin)
        document = build_dossier(read_facts(context.db, parsed), context.config.clock())
        _log.info("dossier_read", vin=parsed.value, events=len(document["timeline"]))
        return document

    return router
