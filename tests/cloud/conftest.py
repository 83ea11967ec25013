"""Fixtures: a seeded cloud on SQLite and PostgreSQL, served over real mutual TLS."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from forecourt.cloud.server import serve_in_thread
from forecourt.trust.tls import client_ssl_context
from tests.cloud.world import CloudWorld, build_world


@pytest.fixture
def world(db_url: str) -> Iterator[CloudWorld]:
    built = build_world(db_url)
    yield built
    built.context.db.dispose()


@pytest.fixture
def cloud_url(world: CloudWorld, tmp_path: Path) -> Iterator[str]:
    files = world.tls_files(tmp_path / "server")
    with serve_in_thread(world.app(), files, staff_without_certificate=True) as url:
        yield url


class Clients:
    """httpx clients against the served cloud, one per identity."""

    def __init__(self, world: CloudWorld, url: str, directory: Path) -> None:
        self.world, self.url, self.directory = world, url, directory
        self._open: list[httpx.Client] = []

    def context_for(self, dealer_id: str, issued: object | None = None) -> ssl.SSLContext:
        cert = issued or self.world.dealer_certs[dealer_id]
        paths = cert.write_pem_bundle(self.directory / dealer_id, name="edge")  # type: ignore[attr-defined]
        return client_ssl_context(paths.cert, paths.key, paths.ca)

    def dealer(self, dealer_id: str, issued: object | None = None) -> httpx.Client:
        return self._keep(
            httpx.Client(base_url=self.url, verify=self.context_for(dealer_id, issued))
        )

    def staff(self) -> httpx.Client:
        context = ssl.create_default_context(cadata=self._root_pem())
        return self._keep(
            httpx.Client(
                base_url=self.url,
                verify=context,
                headers={"authorization": f"Bearer {self.world.staff_token}"},
            )
        )

    def anonymous(self) -> httpx.Client:
        context = ssl.create_default_context(cadata=self._root_pem())
        return self._keep(httpx.Client(base_url=self.url, verify=context))

    def _root_pem(self) -> str:
        from cryptography.hazmat.primitives.serialization import Encoding

        return self.world.pki.root.public_bytes(Encoding.PEM).decode()

    def _keep(self, client: httpx.Client) -> httpx.Client:
        self._open.append(client)
        return client

    def close(self) -> None:
        for client in self._open:
            client.close()


@pytest.fixture
def clients(world: CloudWorld, cloud_url: str, tmp_path: Path) -> Iterator[Clients]:
    opened = Clients(world, cloud_url, tmp_path / "clients")
    yield opened
    opened.close()
