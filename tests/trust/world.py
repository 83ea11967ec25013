"""An in-memory OEM: director + image repositories, one provisioned car, a bundle factory."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from nacl.public import PrivateKey

from forecourt.trust._sslib import CryptoSigner, Signer
from forecourt.trust.canonical import canonical_bytes
from forecourt.trust.errors import BundleError
from forecourt.trust.issuer import (
    BundleBuilder,
    ImageRepository,
    Repository,
    RepositoryKeys,
    RoleSigners,
)
from forecourt.trust.model import FeatureGrant, Freshness, NonceFreshness
from forecourt.trust.verifier import CarTrustState, EcuTrustState, verify_bundle

NOW = datetime(2025, 6, 1, 9, 0, tzinfo=UTC)
VIN = "WF0XXXGCDX1234567"
TBOX_IMAGE = b"t-box firmware 2.0 " * 100
IVI_IMAGE = b"head unit os 3.1 " * 200


def ed() -> Signer:
    return CryptoSigner.generate_ed25519()


def keys(
    root_n: int = 1, root_t: int = 1, targets_n: int = 1, targets_t: int = 1
) -> RepositoryKeys:
    return RepositoryKeys(
        root=RoleSigners([ed() for _ in range(root_n)], root_t),
        timestamp=RoleSigners([ed()]),
        snapshot=RoleSigners([ed()]),
        targets=RoleSigners([ed() for _ in range(targets_n)], targets_t),
        offline=RoleSigners([ed()]),
    )


@dataclass
class World:
    director: Repository
    images: ImageRepository
    car: CarTrustState
    sealing: dict[str, PrivateKey]
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
    return World(director, images, car, sealing)


def assert_refused(
    bundle: bytes, car: CarTrustState, error: type[BundleError], now: datetime = NOW
) -> BundleError:
    """The bundle is refused with exactly ``error`` and the car's state is unchanged."""
    before = copy.deepcopy(car)
    with pytest.raises(BundleError) as caught:
        verify_bundle(bundle, car, now)
    assert type(caught.value) is error, caught.value
    assert caught.value.code == error.code
    assert car == before
    return caught.value


def tamper(bundle: bytes, edit: Any) -> bytes:
    """Edit the parsed bundle (after signing) and re-encode it canonically."""
    import json

    obj = json.loads(bundle)
    edit(obj)
    return canonical_bytes(obj)
