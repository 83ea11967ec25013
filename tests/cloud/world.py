"""A seeded cloud for tests: OEM PKI, demo catalog, dealers with certificates, cars, tokens.

Everything is built from the deterministic demo world at a fixed instant ``NOW`` (the wall clock
when the test run started, so real TLS handshakes accept the certificates too).
"""

from __future__ import annotations

import atexit
import contextlib
import copy
import shutil
import tempfile
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from cryptography.hazmat.primitives.serialization import Encoding

from forecourt.cloud.app import build_context, create_app
from forecourt.cloud.auth import Scope, issue_token
from forecourt.cloud.catalog.service import grant, put_feature, put_package
from forecourt.cloud.compliance.service import publish_profile
from forecourt.cloud.config import CloudConfig, SigningKeys
from forecourt.cloud.context import CloudContext
from forecourt.cloud.db import Database
from forecourt.cloud.registry.dealers import (
    OperatorClaim,
    RegistryLedger,
    confirm_role,
    merge_edge_operators,
    record_certificate,
    upsert_dealer,
)
from forecourt.cloud.registry.vehicles import insert_vehicle
from forecourt.cloud.server import TlsFiles
from forecourt.core import (
    ActivationPlan,
    ConsentChoice,
    ConsentRecord,
    DataCategory,
    LifecycleState,
    Vehicle,
    plan_activation,
    to_json,
)
from forecourt.demo.data import DemoWorld, generate_world
from forecourt.ledger.repository import MerkleLogStore
from forecourt.trust._sslib import CryptoSigner
from forecourt.trust.issuer import RepositoryKeys, RoleSigners
from forecourt.trust.oem_pki import IssuedCertificate, OemPki
from tests.dbs import PG_ADMIN_DB, PG_HOST, PG_PORT, PG_USER

NOW = datetime.now(UTC).replace(microsecond=0)
OPERATOR = "op-anna"
AUDITOR = "op-otto"
MANAGER = "op-mia"
"""A service manager whose role OEM staff confirmed (may record purchases)."""


def edge_name(dealer_id: str) -> str:
    """The edge name (certificate CN) of ``dealer_id``'s edge in the test world."""
    return f"edge-{dealer_id.lower()}"


def _ed() -> CryptoSigner:
    return CryptoSigner.generate_ed25519()


def repository_keys() -> RepositoryKeys:
    return RepositoryKeys(
        root=RoleSigners([_ed()]),
        timestamp=RoleSigners([_ed()]),
        snapshot=RoleSigners([_ed()]),
        targets=RoleSigners([_ed()]),
        offline=RoleSigners([_ed()]),
    )


def full_consent(notice: str) -> ConsentRecord:
    return ConsentRecord(
        notice,
        NOW - timedelta(minutes=1),
        tuple(ConsentChoice(c, True) for c in DataCategory),
        cross_border=True,
    )


@dataclass
class CloudWorld:
    demo: DemoWorld
    pki: OemPki
    config: CloudConfig
    context: CloudContext
    staff_token: str
    dealer_certs: dict[str, IssuedCertificate] = field(default_factory=dict)

    def app(self) -> Any:
        return create_app(self.config, self.context)

    def vehicle(self, vin: str) -> Vehicle:
        return next(v for v in self.demo.vehicles if str(v.vin) == vin)

    def activatable(self) -> tuple[Vehicle, tuple[str, ...]]:
        """A car at its dealer with at least one bought feature that plans without refusal."""
        for car in self.demo.vehicles:
            if car.state is not LifecycleState.AT_DEALER:
                continue
            profile = self.demo.profile(car.market)
            bought = tuple(
                sorted(
                    e.feature_code
                    for e in self.demo.entitlements
                    if e.vin == car.vin and e.is_active_at(NOW) and e.source.value != "standard"
                )
            )
            result = plan_activation(
                car,
                catalog=self.demo.catalog,
                entitlements=self.demo.entitlements,
                profile=profile,
                requested=bought,
                consent=full_consent(profile.notice_version),
                now=NOW,
            )
            if bought and isinstance(result, ActivationPlan):
                return car, bought
        raise AssertionError("the demo world has no activatable car")

    def request(self, car: Vehicle, features: tuple[str, ...], **changes: Any) -> dict[str, Any]:
        body: dict[str, Any] = {
            "request_id": uuid.uuid4().hex,
            "vin": str(car.vin),
            "operator": {"operator_id": OPERATOR, "role": "technician"},
            "features": list(features),
            "inventory": [
                {
                    "role": e.role.value,
                    "serial": e.serial,
                    "hardware_number": e.hardware_number,
                    "software_version": e.software_version,
                }
                for e in car.ecus
            ],
            "nonce": uuid.uuid4().hex,
            "consent": to_json(full_consent(self.demo.profile(car.market).notice_version)),
        }
        body.update(changes)
        return body

    def tls_files(self, directory: Path) -> TlsFiles:
        server = self.pki.issue_cloud(("localhost", "127.0.0.1"), now=NOW)
        paths = server.write_pem_bundle(directory, name="server")
        return TlsFiles(paths.cert, paths.key, paths.ca)

    def dealer_pem(self, dealer_id: str) -> str:
        return self.dealer_certs[dealer_id].cert.public_bytes(Encoding.PEM).decode()


@dataclass(frozen=True)
class _Seed:
    """What every world of one size shares: keys, PKI, the demo world and its certificates.

    Seeding the registry (migrations, dealers, catalog, cars, entitlements, a token) is the same
    work for every test, so it is done once per backend into a template (a SQLite file, a
    PostgreSQL template database) that each world copies. The PKI is shared so the recorded
    certificates match; each world gets its own copy of its mutable state (revocations, CRL).
    """

    demo: DemoWorld
    pki: OemPki
    signing: SigningKeys
    certs: dict[str, IssuedCertificate]
    templates: dict[str, tuple[str, str]]
    """Per backend: the template's URL and the staff token stored in it."""


_SEEDS: dict[int, _Seed] = {}


def _seed(vehicles: int) -> _Seed:
    if vehicles not in _SEEDS:
        demo = generate_world(seed=7, vehicles=vehicles, reference_time=NOW)
        pki = OemPki.ephemeral(now=NOW)
        certs = {
            d.dealer_id: pki.issue_dealer(d.dealer_id, edge_name(d.dealer_id), now=NOW)
            for d in demo.dealers
        }
        signing = SigningKeys(repository_keys(), repository_keys(), NOW + timedelta(days=365))
        _SEEDS[vehicles] = _Seed(demo, pki, signing, certs, {})
    return _SEEDS[vehicles]


def _fill(database: Database, seed: _Seed) -> str:
    """Write the seed into an empty, migrated database; return the staff token."""
    with database.transaction() as session:
        for dealer in seed.demo.dealers:
            upsert_dealer(session, dealer)
        session.flush()
        for dealer in seed.demo.dealers:
            record_certificate(session, dealer.dealer_id, seed.certs[dealer.dealer_id].cert)
        for feature in seed.demo.catalog.features:
            put_feature(session, feature)
        for package in seed.demo.catalog.packages:
            put_package(session, package)
        for profile in seed.demo.profiles:
            publish_profile(session, profile, NOW)
        for car in seed.demo.vehicles:
            insert_vehicle(session, car)
        session.flush()
        for number, entitlement in enumerate(seed.demo.entitlements):
            grant(session, entitlement, f"demo-{number}", NOW)
        token = issue_token(session, "oem-admin", frozenset(s.value for s in Scope), NOW)
    _register_operators(database, seed)
    return token


def _register_operators(database: Database, seed: _Seed) -> None:
    """Each edge's operators as the edge pushes them, the manager's role as staff confirm it.

    One transaction per change: each is a leaf of the cloud's log, which takes one append per
    transaction."""
    ledger = RegistryLedger(MerkleLogStore(database.engine), CloudConfig.ledger_origin)
    try:
        for dealer in seed.demo.dealers:
            with database.transaction() as session:
                merge_edge_operators(
                    session,
                    dealer.dealer_id,
                    edge_name(dealer.dealer_id),
                    certificate_serial=seed.certs[dealer.dealer_id].cert.serial_number,
                    operators=[
                        OperatorClaim(OPERATOR, "technician"),
                        OperatorClaim(AUDITOR, "auditor"),
                        OperatorClaim(MANAGER, "service_manager"),
                    ],
                    now=NOW,
                    ledger=ledger,
                )
            with database.transaction() as session:
                confirm_role(
                    session,
                    dealer.dealer_id,
                    edge_name(dealer.dealer_id),
                    MANAGER,
                    role="service_manager",
                    by="staff:oem-admin",
                    now=NOW,
                    ledger=ledger,
                )
    finally:
        ledger.store.close()


def _sqlite_path(url: str) -> Path:
    return Path(url.split("///", 1)[1])


def _template(seed: _Seed, backend: str) -> tuple[str, str]:
    """The seeded template of ``backend`` (built on first use, kept for the process)."""
    if backend not in seed.templates:
        if backend == "sqlite":
            directory = Path(tempfile.mkdtemp(prefix="forecourt-cloud-seed-"))
            atexit.register(shutil.rmtree, directory, ignore_errors=True)
            url = f"sqlite:///{(directory / 'seed.sqlite3').as_posix()}"
        else:
            url = _create_pg_database(None)
            atexit.register(_drop_pg_database, url)
        database = Database(url)
        token = _fill(database, seed)
        database.dispose()
        seed.templates[backend] = (url, token)
    return seed.templates[backend]


def _pg_admin() -> psycopg.Connection[tuple[object, ...]]:
    return psycopg.connect(
        host=PG_HOST, port=PG_PORT, user=PG_USER, dbname=PG_ADMIN_DB, autocommit=True
    )


def _pg_name(url: str) -> str:
    return url.rsplit("/", 1)[1]


def _create_pg_database(template: str | None) -> str:
    name = f"forecourt_seed_{uuid.uuid4().hex[:16]}"
    with _pg_admin() as conn:
        source = _pg_name(template) if template else "template0"
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{source}"')
    return f"postgresql+psycopg://{PG_USER}@{PG_HOST}:{PG_PORT}/{name}"


def _drop_pg_database(url: str) -> None:
    with _pg_admin() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{_pg_name(url)}" WITH (FORCE)')


def _copy_template(template: str, db_url: str) -> None:
    """Make the empty database at ``db_url`` a copy of ``template`` (same name, same URL)."""
    if db_url.startswith("sqlite"):
        target = _sqlite_path(db_url)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(_sqlite_path(template), target)
        return
    name = _pg_name(db_url)
    with _pg_admin() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{_pg_name(template)}" STRATEGY FILE_COPY')


def _isolated(pki: OemPki) -> OemPki:
    """A copy of ``pki`` whose revocations and CRL are its own (keys and certificates, which
    are immutable, stay shared)."""
    clone = copy.copy(pki)
    for name, value in vars(pki).items():
        # cryptography's key, certificate and CRL objects cannot be copied: they are immutable
        with contextlib.suppress(TypeError):
            setattr(clone, name, copy.deepcopy(value))
    return clone


def build_world(db_url: str, blob_dir: Path | None = None, vehicles: int = 12) -> CloudWorld:
    """A seeded cloud on the empty database at ``db_url`` (a copy of the backend's template)."""
    seed = _seed(vehicles)
    backend = "sqlite" if db_url.startswith("sqlite") else "postgresql"
    template, token = _template(seed, backend)
    _copy_template(template, db_url)
    pki = _isolated(seed.pki)
    config = CloudConfig(
        database_url=db_url,
        signing=seed.signing,
        oem_root=pki.root,
        oem_intermediates=(pki.ca,),
        crl=lambda: pki.crl,
        blob_dir=blob_dir,
        clock=lambda: NOW,
        migrate=False,
    )
    context = build_context(config)
    return CloudWorld(seed.demo, pki, config, context, token, dict(seed.certs))
