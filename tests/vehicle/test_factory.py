"""End to end on the real trust layer: factory provisioning, a dealer over UDS, a real bundle.

The car is provisioned by the CLI's function from an OEM PKI directory and exported repository
root files, run on loopback, authenticated with 0x29 by a dealer certificate of that PKI, sent a
bundle the repositories sign for it (secrets sealed to the key its certificate names), and then
its FD04 manifest verifies against the inventory its certificates give.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from udsoncan import services
from udsoncan.exceptions import NegativeResponseException

from forecourt.trust import (
    BundleBuilder,
    CertificatePurpose,
    FeatureGrant,
    NonceFreshness,
    OemPki,
    ecu_identity,
    verify_manifest,
)
from forecourt.trust.canonical import canonical_bytes
from forecourt.trust.testing import IVI_IMAGE, NOW, TBOX_IMAGE, World, make_world
from forecourt.vehicle.car import Car, CarServices
from forecourt.vehicle.doip.entity import EntityConfig
from forecourt.vehicle.factory import RepositoryRoots, provision_cars
from forecourt.vehicle.provision import CarSpec, EcuSpec
from forecourt.vehicle.runtime import SimulatorHost
from forecourt.vehicle.storage import CarStore
from forecourt.vehicle.trust_adapter import trust_services
from forecourt.vehicle.uds.nrc import NegativeResponse, Nrc
from tests.vehicle.conftest import OEM_SECRET, RunningCar, random_loopback
from tests.vehicle.pki import dealer_of
from tests.vehicle.test_conformance import ExtendedSession, authenticate
from tests.vehicle.test_trust_wiring import RawBytes

VIN = "WF0XXXGCDX1234567"
SPEC = CarSpec(
    vin=VIN,
    option_codes=("TBOX", "IVI"),
    ecus=(
        EcuSpec(0x1000, "cgw", "CGW0001", "CGW-H1", "1.0.0"),
        EcuSpec(0x1001, "tbox", "TBX0001", "TBX-H1", "1.5.0"),
        EcuSpec(0x1002, "head_unit", "IVI0001", "IVI-H2", "3.0.0"),
    ),
)
CA_PASSWORD = b"ca password for tests"


def _factory(tmp_path: Path, world: World, *, roots: bool = True) -> tuple[Path, OemPki]:
    """The OEM's exports (PKI directory, root metadata files) and one car provisioned from them."""
    OemPki.create(tmp_path / "pki", b"root password for tests", CA_PASSWORD, now=NOW)
    director, image = tmp_path / "director-root.json", tmp_path / "image-root.json"
    director.write_bytes(canonical_bytes(world.director.root.to_dict()))
    image.write_bytes(canonical_bytes(world.images.root.to_dict()))
    pki = OemPki.load(tmp_path / "pki", CA_PASSWORD)
    provision_cars(
        tmp_path / "cars",
        [SPEC],
        oem_secret=OEM_SECRET,
        pki=pki,
        roots=RepositoryRoots.from_files(director, image) if roots else None,
        now=NOW,
    )
    return tmp_path / "cars" / VIN, pki


def _services() -> CarServices:
    trust = trust_services()
    return CarServices(verifier=trust.verifier, authenticator=trust.authenticator, now=lambda: NOW)


@pytest.fixture
def factory_car(tmp_path: Path) -> Iterator[tuple[RunningCar, World, OemPki]]:
    world = make_world()
    directory, pki = _factory(tmp_path, world)
    store = CarStore(directory)
    services_ = _services()
    car = Car(store, services_)
    host = SimulatorHost()
    address = random_loopback()
    entity = host.start_car(car, EntityConfig(address, announce_to=None))
    yield RunningCar(host, store, services_, car, entity, address), world, pki
    host.close()


def _upload(client: Any, name: str, data: bytes) -> None:
    moop = services.RequestFileTransfer.ModeOfOperation.ReplaceFile
    response = client.request_file_transfer(moop, name, filesize=len(data))
    block = response.service_data.max_length - 2
    for counter, offset in enumerate(range(0, len(data), block), start=1):
        client.transfer_data(counter & 0xFF, data[offset : offset + block])
    client.request_transfer_exit()


def _identity(client: Any) -> dict[str, Any]:
    client.config["data_identifiers"][0xFD03] = RawBytes()
    return dict(json.loads(client.read_data_by_identifier_first(0xFD03)))


def test_car_provisioned_by_the_factory_applies_a_real_bundle_and_reports_a_signed_manifest(
    factory_car: tuple[RunningCar, World, OemPki],
) -> None:
    running, world, pki = factory_car
    certificates = {}
    for ecu in (0x1000, 0x1001, 0x1002):
        with running.client(ecu) as client:
            doc = _identity(client)
        identity = pki.verify(doc["certificate_pem"].encode(), CertificatePurpose.ECU_IDENTITY, NOW)
        assert identity  # the ECU certificate chains to the OEM root
        certificates[ecu] = ecu_identity(doc["certificate_pem"].encode())
        assert certificates[ecu].sealing_key.hex() == doc["sealing_public_key"]
    client = running.client()
    client.config["data_identifiers"][0xFD00] = RawBytes()
    client.config["data_identifiers"][0xFD04] = RawBytes()
    with client:
        client.change_session(ExtendedSession)
        authenticate(client, dealer_of(pki, NOW))
        nonce = bytes(client.read_data_by_identifier_first(0xFD00)).hex()
        builder = BundleBuilder(VIN, NonceFreshness(nonce), 1, compliance={}, consent={})
        builder.add_ecu("TBX0001", "TBX-H1", certificates[0x1001].sealing_key)
        builder.add_ecu("IVI0001", "IVI-H2", certificates[0x1002].sealing_key)
        builder.add_image("TBX0001", world.images.targets.targets["tbox-fw-2.0.bin"])
        builder.add_image("IVI0001", world.images.targets.targets["ivi-os-3.1.img"])
        builder.add_feature(
            FeatureGrant(
                "connected_services",
                VIN,
                "TBX0001",
                NOW,
                NOW + timedelta(days=365),
                frozenset({"TBOX"}),
            )
        )
        builder.add_secret("TBX0001", "subscription_key", b"sk-connected-0001")
        bundle = builder.build(
            world.director,
            world.images.publish_images(NOW + timedelta(days=30)),
            NOW + timedelta(days=1),
        )
        _upload(client, "tbox-fw-2.0.bin", TBOX_IMAGE)
        _upload(client, "ivi-os-3.1.img", IVI_IMAGE)
        _upload(client, "bundle", bundle)
        client.start_routine(0xFF00)
        manifest = bytes(client.read_data_by_identifier_first(0xFD04))
    inventory = {
        SPEC.ecus[i].serial_number: certificates[a].signing_key
        for i, a in enumerate((0x1000, 0x1001, 0x1002))
    }
    verified = verify_manifest(manifest, inventory, {}, vin=VIN)
    tbox = verified.reports["TBX0001"]
    assert [i.name for i in tbox.images] == ["tbox-fw-2.0.bin"]
    assert [f.feature for f in tbox.features] == ["connected_services"]
    assert tbox.activation_counter == 1
    assert running.car.secure_storage(0x1001) == {"subscription_key": b"sk-connected-0001"}


def test_car_without_pinned_roots_refuses_every_bundle(tmp_path: Path) -> None:
    world = make_world()
    directory, _ = _factory(tmp_path, world, roots=False)
    car = Car(CarStore(directory), _services())
    with pytest.raises(NegativeResponse) as refused:
        car.verify_and_apply(world.bundle())
    assert refused.value.nrc == Nrc.CONDITIONS_NOT_CORRECT
    assert [d.code for d in car.state.dtcs] == [0xD10000 | Nrc.CONDITIONS_NOT_CORRECT]
    assert car.state.activation_counter == 0


def test_dealer_of_another_oem_is_refused_by_a_factory_provisioned_car(
    factory_car: tuple[RunningCar, World, OemPki],
) -> None:
    running, _, _ = factory_car
    with running.client() as client:
        client.change_session(ExtendedSession)
        with pytest.raises(NegativeResponseException) as exc:
            authenticate(client, dealer_of(OemPki.ephemeral(NOW), NOW))
    # another OEM's CA bears the same names: its signature fails under the pinned CA (0x51)
    assert exc.value.response.code in (
        Nrc.CERTIFICATE_INVALID_SIGNATURE,
        Nrc.CERTIFICATE_INVALID_CHAIN_OF_TRUST,
    )
