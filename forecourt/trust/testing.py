"""A complete in-memory test world: OEM repositories, PKI and one provisioned car.

Public so that the trust tests, the benchmark, the vehicle simulator's and the cloud's tests build
the same world: ``make_world()`` gives director and image repositories (Ed25519 keys, offline
role), three images, a car trust state with three ECUs, each ECU's X25519 sealing key, Ed25519
signing key and factory identity certificate from an ephemeral OEM PKI, and a bundle factory.
Keys are generated per call; nothing touches disk.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ed25519
from nacl.public import PrivateKey

from forecourt.trust._sslib import CryptoSigner, Signer
from forecourt.trust.canonical import canonical_bytes
from forecourt.trust.issuer import (
    BundleBuilder,
    ImageRepository,
    Repository,
    RepositoryKeys,
    RoleSigners,
)
from forecourt.trust.model import FeatureGrant, Freshness, NonceFreshness
from forecourt.trust.oem_pki import OemPki
from forecourt.trust.verifier import CarTrustState, EcuTrustState

NOW = datetime(2025, 6, 1, 9, 0, tzinfo=UTC)
VIN = "WF0XXXGCDX1234567"
TBOX_IMAGE = b"t-box firmware 2.0 " * 100
IVI_IMAGE = b"head unit os 3.1 " * 200

__all__ = [
    "IVI_IMAGE",
    "NOW",
    "TBOX_IMAGE",
    "VIN",
    "World",
    "ed",
    "keys",
    "make_world",
]


def ed() -> Signer:
    """A fresh in-memory Ed25519 signer."""
    return CryptoSigner.generate_ed25519()


def keys(
    root_n: int = 1, root_t: int = 1, targets_n: int = 1, targets_t: int = 1
) -> RepositoryKeys:
    """One repository's role keys with the given root and targets thresholds."""
    return RepositoryKeys(
        root=RoleSigners([ed() for _ in range(root_n)], root_t),
        timestamp=RoleSigners([ed()]),
        snapshot=RoleSigners([ed()]),
        targets=RoleSigners([ed() for _ in range(targets_n)], targets_t),
        offline=RoleSigners([ed()]),
    )


@dataclass
class World:
    """An OEM and one car; ``bundle()`` signs a valid activation for it."""

    director: Repository
    images: ImageRepository
    car: CarTrustState
    sealing: dict[str, PrivateKey]
    pki: OemPki
    signing: dict[str, ed25519.Ed25519PrivateKey]
    """Each ECU's Ed25519 identity key (signs its version reports)."""
    identity_certs: dict[str, x509.Certificate]
    meta_expires: datetime = field(default=NOW + timedelta(days=1))

    def builder(
        self, freshness: Freshness | None = None, counter: int = 8, vin: str = VIN
    ) -> BundleBuilder:
        b = BundleBuilder(
            vin,
            freshness or NonceFreshness("n-1"),
            counter,
            compliance={"region": "EU", "data_residency": "eu-central"},
            consent={"telemetry": False, "location": True},
        )
        b.add_ecu("TBX0001", "TBX-H1", bytes(self.sealing["TBX0001"].public_key))
        b.add_ecu("IVI0001", "IVI-H2", bytes(self.sealing["IVI0001"].public_key))
        b.add_image("TBX0001", self.images.targets.targets["tbox-fw-2.0.bin"])
        b.add_image("IVI0001", self.images.targets.targets["ivi-os-3.1.img"])
        b.add_feature(
            FeatureGrant(
                "connected_services",
                vin,
                "TBX0001",
                NOW,
                NOW + timedelta(days=365),
                frozenset({"TBOX"}),
            )
        )
        b.add_secret("TBX0001", "subscription_key", b"sk-connected-0001")
        return b

    def bundle(
        self, builder: BundleBuilder | None = None, expires: datetime | None = None
    ) -> bytes:
        image_md = self.images.publish_images(NOW + timedelta(days=30))
        return (builder or self.builder()).build(
            self.director, image_md, expires or self.meta_expires
        )


def make_world(director_keys: RepositoryKeys | None = None) -> World:
    """A fresh world at :data:`NOW` (keys differ on every call)."""
    director = Repository(director_keys or keys(), NOW + timedelta(days=365))
    images = ImageRepository(keys(), NOW + timedelta(days=365))
    images.add_image("tbox-fw-2.0.bin", TBOX_IMAGE, "TBX-H1", 5, "2.0.0")
    images.add_image("ivi-os-3.1.img", IVI_IMAGE, "IVI-H2", 3, "3.1.0")
    images.add_image("tbox-fw-1.0.bin", b"old t-box firmware", "TBX-H1", 2, "1.0.0")
    sealing = {s: PrivateKey.generate() for s in ("TBX0001", "IVI0001", "ADS0001")}
    car = CarTrustState(
        vin=VIN,
        director_root=canonical_bytes(director.root.to_dict()),
        image_root=canonical_bytes(images.root.to_dict()),
        ecus=(
            EcuTrustState("TBX0001", "TBX-H1", "tbox", "tbox-fw-1.5.bin", "1.5.0", 4),
            EcuTrustState("IVI0001", "IVI-H2", "ivi", "ivi-os-3.0.img", "3.0.0", 3),
            EcuTrustState("ADS0001", "ADS-H1", "adas"),
        ),
        factory_options=frozenset({"TBOX", "IVI"}),
        issued_nonces=frozenset({"n-1"}),
        last_offline_counter=3,
        last_activation_counter=7,
    )
    pki = OemPki.ephemeral(NOW)
    signing = {s: ed25519.Ed25519PrivateKey.generate() for s in sealing}
    certs = {
        s: pki.issue_ecu(VIN, s, signing[s].public_key(), bytes(sealing[s].public_key), now=NOW)
        for s in sealing
    }
    return World(director, images, car, sealing, pki, signing, certs)
