"""The carmaker's cloud of a local deployment: OEM PKI, role keys, a seeded registry, packages.

Built from the deterministic demo world (:func:`forecourt.demo.data.generate_world`) into
``<data_dir>/cloud`` on first use and reused afterwards: the PKI (``OemPki.create``), the
director and image role keys (``init_signing_keys``), the central ledger's checkpoint key, the
SQLite registry (dealers, catalog, profiles, vehicles, entitlements) and the package blobs.
Each start issues a fresh server certificate for the listener and records the dealer's edge
certificate in the registry, as ``forecourt cloud serve`` and ``forecourt cloud dealer-cert`` do.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from forecourt.blobs import BlobStore
from forecourt.cloud.app import build_context, create_app
from forecourt.cloud.catalog.service import grant, put_feature, put_package
from forecourt.cloud.compliance.service import publish_profile
from forecourt.cloud.config import CloudConfig, SigningKeys
from forecourt.cloud.context import CloudContext
from forecourt.cloud.db import Database
from forecourt.cloud.keys import init_signing_keys
from forecourt.cloud.registry.dealers import record_certificate, upsert_dealer
from forecourt.cloud.registry.vehicles import insert_vehicle
from forecourt.cloud.server import TlsFiles
from forecourt.demo.data import DemoWorld, package_content
from forecourt.demo.servers import cloud_server
from forecourt.demo.state import DeploymentSecrets, note_signer
from forecourt.http.serving import BackgroundServer
from forecourt.ledger.checkpoint import NoteVerifier, SoftwareNoteSigner, verifier_for
from forecourt.ledger.errors import ConsistencyError
from forecourt.ledger.log import TransparencyLog
from forecourt.ledger.logoflogs import CloudLogOfLogs
from forecourt.ledger.repository import MerkleLogStore
from forecourt.logging import get_logger
from forecourt.trust._sslib import CryptoSigner
from forecourt.trust.issuer import RepositoryKeys, RoleSigners
from forecourt.trust.keys import load_file_private_key
from forecourt.trust.oem_pki import IssuedCertificate, OemPki

_log = get_logger("demo.cloud")
_ROLES = ("root", "timestamp", "snapshot", "targets", "offline")


def open_pki(directory: Path, secrets: DeploymentSecrets) -> OemPki:
    """The deployment's OEM PKI: created on first use, loaded (issuing side only) afterwards."""
    if (directory / "root.pem").exists():
        return OemPki.load(directory, secrets.ca_password)
    return OemPki.create(directory, secrets.root_password, secrets.ca_password)


def signing_keys(directory: Path, password: bytes, root_expires: datetime) -> SigningKeys:
    """The director and image role keys (encrypted PEM files), generated on first use."""
    if not (directory / "keys.json").exists():
        directory.mkdir(parents=True, exist_ok=True)
        init_signing_keys(directory, password)

    def repo(name: str) -> RepositoryKeys:
        roles = {
            role: RoleSigners(
                [CryptoSigner(load_file_private_key(directory / f"{name}-{role}.pem", password))]
            )
            for role in _ROLES
        }
        return RepositoryKeys(**roles)

    return SigningKeys(repo("director"), repo("image"), root_expires)


def seed_registry(db: Database, world: DemoWorld, now: datetime) -> None:
    """Dealers, catalog, compliance profiles, vehicles and entitlements, in one transaction.

    Also ``forecourt cloud seed-demo``'s loader, so the demo and a CLI deployment hold one world.
    """
    with db.transaction() as session:
        for dealer in world.dealers:
            upsert_dealer(session, dealer)
        for feature in world.catalog.features:
            put_feature(session, feature)
        for package in world.catalog.packages:
            put_package(session, package)
        for profile in world.profiles:
            publish_profile(session, profile, now)
        session.flush()
        for car in world.vehicles:
            insert_vehicle(session, car)
        session.flush()
        for number, entitlement in enumerate(world.entitlements):
            grant(session, entitlement, f"demo-{number}", now)


def upload_packages(blobs: BlobStore, world: DemoWorld) -> int:
    """Every catalog package's bytes into the blob store (content-addressed: re-runs are no-ops)."""
    for package in world.catalog.packages:
        data = package_content(package.name, str(package.version), package.size)
        blobs.put([data], expected_sha256=package.sha256, expected_size=len(data))
    return len(world.catalog.packages)


@dataclass
class LocalCloud:
    """A running cloud: its context (registry, blobs, signer), PKI and listener."""

    pki: OemPki
    config: CloudConfig
    context: CloudContext
    ledger_signer: SoftwareNoteSigner
    server: BackgroundServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None, "the cloud is not serving"
        return self.server.url

    @property
    def ledger_vkey(self) -> str:
        return verifier_for(self.config.ledger_origin, self.ledger_signer).to_vkey()

    def repository_roots(self) -> tuple[bytes, bytes]:
        """The director and image root metadata cars pin at the factory."""
        roots = self.context.signer.root_bytes()
        return roots["director"], roots["image"]

    def serve(self, directory: Path, host: str, port: int) -> str:
        """Listen over mutual TLS with a server certificate issued now for ``host``."""
        names = tuple(dict.fromkeys((host, "localhost", "127.0.0.1")))
        issued = self.pki.issue_cloud(names)
        paths = issued.write_pem_bundle(directory, name="server")
        app = create_app(self.config, self.context)
        self.server = cloud_server(app, TlsFiles(paths.cert, paths.key, paths.ca), host, port)
        self.server.start()
        return self.url

    def enrol_dealer_edge(self, dealer_id: str, edge_id: str) -> IssuedCertificate:
        """Issue the dealer's edge certificate and record it in the registry."""
        issued = self.pki.issue_dealer(dealer_id, edge_id)
        with self.context.db.transaction() as session:
            record_certificate(session, dealer_id, issued.cert)
        return issued

    def register_edge_log(self, verifier: NoteVerifier) -> None:
        """The OEM onboards the edge's log into the log of logs (once; re-runs keep it)."""
        log = TransparencyLog(
            MerkleLogStore(self.context.db.engine), self.config.ledger_origin, self.ledger_signer
        )
        try:
            CloudLogOfLogs(log).register_edge(verifier)
        except ConsistencyError:
            _log.info("edge_log_already_registered", origin=verifier.name)

    def close(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None
        self.context.db.dispose()


def open_cloud(
    directory: Path,
    pki: OemPki,
    world: DemoWorld,
    secrets: DeploymentSecrets,
    *,
    root_expires: datetime,
    now: datetime,
    fresh: bool,
) -> LocalCloud:
    """The cloud's services over ``directory``; seeded and packages uploaded when ``fresh``."""
    directory.mkdir(parents=True, exist_ok=True)
    signer = note_signer(directory / "ledger-signing.key")
    config = CloudConfig(
        database_url=f"sqlite:///{(directory / 'cloud.sqlite3').as_posix()}",
        signing=signing_keys(directory / "keys", secrets.keys_password, root_expires),
        oem_root=pki.root,
        oem_intermediates=(pki.ca,),
        crl=lambda: pki.crl,
        blob_dir=directory / "blobs",
        ledger_signer=signer,
    )
    context = build_context(config)
    if fresh:
        seed_registry(context.db, world, now)
        upload_packages(context.blobs, world)
        (directory / "seeded.json").write_text(json.dumps({"vehicles": len(world.vehicles)}))
    return LocalCloud(pki, config, context, signer)
