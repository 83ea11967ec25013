"""A seeded cloud for tests: OEM PKI, demo catalog, dealers with certificates, cars, tokens.

Everything is built from the deterministic demo world at a fixed instant ``NOW`` (the wall clock
when the test run started, so real TLS handshakes accept the certificates too).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.serialization import Encoding

from forecourt.cloud.app import build_context, create_app
from forecourt.cloud.auth import Scope, issue_token
from forecourt.cloud.catalog.service import grant, put_feature, put_package
from forecourt.cloud.compliance.service import publish_profile
from forecourt.cloud.config import CloudConfig, SigningKeys
from forecourt.cloud.context import CloudContext
from forecourt.cloud.registry.dealers import (
    OperatorClaim,
    record_certificate,
    replace_operators,
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
from forecourt.trust._sslib import CryptoSigner
from forecourt.trust.issuer import RepositoryKeys, RoleSigners
from forecourt.trust.oem_pki import IssuedCertificate, OemPki

NOW = datetime.now(UTC).replace(microsecond=0)
OPERATOR = "op-anna"
AUDITOR = "op-otto"


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


def build_world(db_url: str, blob_dir: Path | None = None, vehicles: int = 12) -> CloudWorld:
    demo = generate_world(seed=7, vehicles=vehicles, reference_time=NOW)
    pki = OemPki.ephemeral(now=NOW)
    config = CloudConfig(
        database_url=db_url,
        signing=SigningKeys(repository_keys(), repository_keys(), NOW + timedelta(days=365)),
        oem_root=pki.root,
        oem_intermediates=(pki.ca,),
        crl=lambda: pki.crl,
        blob_dir=blob_dir,
        clock=lambda: NOW,
    )
    context = build_context(config)
    certs: dict[str, IssuedCertificate] = {}
    with context.db.transaction() as session:
        for dealer in demo.dealers:
            upsert_dealer(session, dealer)
        session.flush()
        for dealer in demo.dealers:
            issued = pki.issue_dealer(dealer.dealer_id, f"edge-{dealer.dealer_id.lower()}", now=NOW)
            certs[dealer.dealer_id] = issued
            record_certificate(session, dealer.dealer_id, issued.cert)
            replace_operators(
                session,
                dealer.dealer_id,
                [OperatorClaim(OPERATOR, "technician"), OperatorClaim(AUDITOR, "auditor")],
                NOW,
            )
        for feature in demo.catalog.features:
            put_feature(session, feature)
        for package in demo.catalog.packages:
            put_package(session, package)
        for profile in demo.profiles:
            publish_profile(session, profile, NOW)
        for car in demo.vehicles:
            insert_vehicle(session, car)
        session.flush()
        for number, entitlement in enumerate(demo.entitlements):
            grant(session, entitlement, f"demo-{number}", NOW)
        token = issue_token(session, "oem-admin", frozenset(s.value for s in Scope), NOW)
    return CloudWorld(demo, pki, config, context, token, certs)
