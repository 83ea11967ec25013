"""``create_app(config)``: the cloud's FastAPI application, built without import-time state."""

from __future__ import annotations

import asyncio
import threading
import warnings
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI
from fastapi.openapi.utils import get_openapi

from forecourt.blobs import BlobStore, FileBlobStore, MemoryBlobStore
from forecourt.cloud.activations.ledger import ActivationLedgerFollower, follow_forever
from forecourt.cloud.activations.routes import activation_router
from forecourt.cloud.auth import require_dealer_or_staff
from forecourt.cloud.catalog.routes import catalog_router
from forecourt.cloud.compliance.routes import compliance_router
from forecourt.cloud.config import CloudConfig
from forecourt.cloud.context import CloudContext
from forecourt.cloud.db import Database
from forecourt.cloud.dossier.routes import dossier_router
from forecourt.cloud.integrations.delivery import WebhookDispatcher, deliver_forever
from forecourt.cloud.integrations.routes import Integrations, integrations_router
from forecourt.cloud.integrations.sealing import SecretSealer, default_key_path
from forecourt.cloud.lifecycle.routes import lifecycle_router, lifecycle_service
from forecourt.cloud.limits import RequestGuard, classify_routes
from forecourt.cloud.offline.routes import offline_router
from forecourt.cloud.packages.routes import package_routers
from forecourt.cloud.problems import install_problem_handlers
from forecourt.cloud.registry.routes import registry_router
from forecourt.cloud.signing import BundleSigner
from forecourt.cloud.sync.routes import sync_router
from forecourt.cloud.trust_routes import trust_router
from forecourt.ledger.api import create_ledger_router
from forecourt.ledger.checkpoint import SoftwareNoteSigner
from forecourt.ledger.log import TransparencyLog
from forecourt.ledger.logoflogs import CloudLogOfLogs
from forecourt.ledger.repository import MerkleLogStore


def build_context(config: CloudConfig) -> CloudContext:
    db = Database(config.database_url, run_migrations=config.migrate)
    blobs: BlobStore = FileBlobStore(config.blob_dir) if config.blob_dir else MemoryBlobStore()
    return CloudContext(config, db, blobs, BundleSigner(config.signing, db))


def create_app(
    config: CloudConfig,
    context: CloudContext | None = None,
    *,
    webhook_sealer: SecretSealer | None = None,
) -> FastAPI:
    """The application over ``config`` (or an already built ``context``, which tests reuse).

    ``webhook_sealer`` seals webhook secrets; by default its key is the file
    :func:`~forecourt.cloud.integrations.sealing.default_key_path` names, read on first use.
    The lifespan runs the webhook delivery loop and the activation ledger follower (applied
    activations into the cloud's log, :mod:`forecourt.cloud.activations.ledger`) beside the
    requests, one of each per worker process."""
    ctx = context or build_context(config)
    sealer = webhook_sealer or SecretSealer.from_file(default_key_path)
    integrations = Integrations(sealer, WebhookDispatcher(ctx.db, sealer, clock=config.clock))
    log = TransparencyLog(
        MerkleLogStore(ctx.db.engine),
        config.ledger_origin,
        config.ledger_signer or SoftwareNoteSigner.generate(),
        clock=config.clock,
    )
    follower = ActivationLedgerFollower(ctx.db, log.store)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        stop = threading.Event()
        delivery = asyncio.create_task(deliver_forever(integrations.dispatcher, stop))
        following = asyncio.create_task(follow_forever(follower, stop))
        yield
        stop.set()
        delivery.cancel()
        following.cancel()
        await asyncio.gather(delivery, following, return_exceptions=True)
        integrations.dispatcher.close()
        ctx.db.dispose()

    app = FastAPI(
        title="Forecourt cloud",
        version="1",
        description="The carmaker's platform: registry, catalog, entitlements, packages, "
        "compliance profiles and activation authorisation.",
        lifespan=lifespan,
        openapi_url="/v1/openapi.json",
        docs_url="/v1/docs",
        redoc_url=None,
    )
    app.state.context = ctx
    app.state.integrations = integrations
    install_problem_handlers(app)
    # FastAPI matches routes in inclusion order: the edges' hot path first saves each of its
    # requests a scan of every other route (measured: about 3 % of an authorisation's CPU).
    app.include_router(activation_router())
    app.include_router(registry_router(lifecycle_service(log)))
    app.include_router(lifecycle_router(log))
    app.include_router(catalog_router())
    app.include_router(compliance_router())
    for router in package_routers(ctx):
        app.include_router(router)
    app.include_router(offline_router())
    app.include_router(sync_router())
    app.include_router(trust_router())
    app.include_router(dossier_router())
    app.include_router(integrations_router())
    app.include_router(
        create_ledger_router(log, CloudLogOfLogs(log)),
        prefix="/v1/ledger",
        dependencies=[Depends(require_dealer_or_staff)],
    )

    @app.get("/v1/trust/roots", tags=["trust"])
    def roots() -> dict[str, object]:
        """The director and image root metadata a factory pins in each car."""
        return {name: md.to_dict() for name, md in ctx.signer.roots().items()}

    def openapi() -> dict[str, Any]:
        # The package route answers GET and HEAD from one function; FastAPI gives both one
        # operation id and warns. Give HEAD its own id so the document stays valid.
        if app.openapi_schema is None:
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message="Duplicate Operation ID")
                schema = get_openapi(
                    title=app.title,
                    version=app.version,
                    description=app.description,
                    routes=app.routes,
                )
            for path in schema.get("paths", {}).values():
                head = path.get("head")
                if head is not None and "operationId" in head:
                    head["operationId"] += "_head"
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]

    @app.get("/v1/health", tags=["health"])
    def health() -> dict[str, str]:
        return {"status": "ok"}

    # Last, so the classifier sees every route; outermost but for Starlette's error handler.
    app.add_middleware(
        RequestGuard, classify=classify_routes(app.routes), limits=config.body_limits
    )
    return app
