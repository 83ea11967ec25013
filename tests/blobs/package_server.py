"""A package server over real HTTP: a FastAPI app with the blob router, behind a recording Tap.

The helpers live here; ``package_server`` is re-exported as a fixture by the ``conftest`` of each
test package that needs it (``tests/blobs``, ``tests/edge/test_cache.py``)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from fastapi import FastAPI, HTTPException, Request

from forecourt.blobs import FileBlobStore, blob_router
from tests.blobs._server import Tap, serve

ADMIN_TOKEN = "admin-credential-for-tests"


def allow_known_dealers(request: Request) -> None:
    """Stands in for the cloud's mTLS dealer check: a header names the dealer."""
    if request.headers.get("x-dealer") != "dealer-42":
        raise HTTPException(status_code=403, detail="unknown dealer")


def allow_admin(request: Request) -> None:
    if request.headers.get("x-admin") != ADMIN_TOKEN:
        raise HTTPException(status_code=403, detail="administrators only")


@dataclass
class PackageServer:
    url: str
    store: FileBlobStore
    tap: Tap

    def package_url(self, sha256: str) -> str:
        return f"{self.url}/v1/packages/{sha256}"


def build_app(store: FileBlobStore, *, with_delete: bool = True) -> FastAPI:
    app = FastAPI()
    app.include_router(
        blob_router(
            store,
            allow_known_dealers,
            authorize_delete=allow_admin if with_delete else None,
            chunk_size=16 * 1024,
        )
    )
    return app


@contextmanager
def running_package_server(root: Path) -> Iterator[PackageServer]:
    store = FileBlobStore(root, max_blob_size=4 * 1024 * 1024)
    tap = Tap(build_app(store))
    with serve(tap) as url:
        yield PackageServer(url, store, tap)
