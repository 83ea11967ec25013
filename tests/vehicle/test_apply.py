"""Verify-and-apply: all-or-nothing across ECUs, power loss at every step, refusals recorded."""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from udsoncan import services
from udsoncan.exceptions import NegativeResponseException

from forecourt.vehicle.car import Car, CarServices
from forecourt.vehicle.faults import FaultPlan, PowerLoss
from forecourt.vehicle.storage import CarStore
from forecourt.vehicle.trust_adapter import PkiTesterAuthenticator
from forecourt.vehicle.uds.nrc import NegativeResponse, Nrc
from tests.vehicle.conftest import VIN, RunningCar
from tests.vehicle.doubles import HmacBundleVerifier, make_bundle
from tests.vehicle.test_conformance import ExtendedSession, authenticate, nrc_of

MAPS = b"maps v2 " * 4096


def image(name: str, ecu: int, version: int, data: bytes) -> dict[str, Any]:
    return {
        "ecu_address": ecu,
        "name": name,
        "version": version,
        "sha256": hashlib.sha256(data).hexdigest(),
        "length": len(data),
    }


def bundle(counter: int = 1) -> bytes:
    return make_bundle(
        VIN,
        counter,
        features=[("NAV_PRO", 0x1002, None), ("REMOTE_PARK", 0x1001, "2099-01-01T00:00:00+00:00")],
        images=[image("maps-eu", 0x1002, 2, MAPS)],
    )


def fingerprint(car: Car) -> tuple[Any, ...]:
    """What an activation may change: features, counter, installed images, used nonces."""
    state = car.state
    return (
        sorted((f.feature_id, f.ecu_address, f.valid_until) for f in state.features),
        state.activation_counter,
        sorted(
            (a, n, i.version, i.sha256) for a, e in state.ecus.items() for n, i in e.images.items()
        ),
        list(state.used_nonces),
    )


def receive(store: CarStore, name: str, data: bytes) -> None:
    (store.files_dir(0x1000) / name).write_bytes(data)


def services_with(hook: Callable[[str], None] = lambda step: None, **faults: Any) -> CarServices:
    return CarServices(
        verifier=HmacBundleVerifier(),
        authenticator=PkiTesterAuthenticator(),
        faults=FaultPlan(**faults),
        apply_hook=hook,
    )


def test_activation_over_uds_answers_pending_then_applies_every_ecu(running: RunningCar) -> None:
    receive(running.store, "maps-eu", MAPS)
    with running.client() as client:
        client.change_session(ExtendedSession)
        authenticate(client)
        client.request_file_transfer(
            services.RequestFileTransfer.ModeOfOperation.AddFile, "bundle", filesize=len(bundle())
        )
        client.transfer_data(1, bundle())
        client.request_transfer_exit()
        started = client.start_routine(0xFF00)
        assert started.service_data.routine_status_record == b"\x00\x00\x00\x00\x01"
        results = client.get_routine_result(0xFF00).service_data.routine_status_record
        assert results == b"\x10\x01\x00\x10\x02\x00"
        status = client.read_data_by_identifier_first(0xFD02)
    assert '"feature":"NAV_PRO"' in status and '"active":true' in status
    running.restart()
    assert running.car.state.activation_counter == 1
    assert running.car.state.ecus[0x1002].images["maps-eu"].version == 2


def test_activation_without_authentication_is_refused(running: RunningCar) -> None:
    with running.client() as client:
        client.change_session(ExtendedSession)
        with pytest.raises(NegativeResponseException) as exc:
            client.start_routine(0xFF00)
    assert nrc_of(exc) == 0x33


def test_forged_bundle_is_refused_with_dtc_and_nothing_changes(
    make_store: Callable[[str], CarStore],
) -> None:
    store = make_store("car")
    receive(store, "maps-eu", MAPS)
    car = Car(store, services_with())
    before = fingerprint(car)
    forged = make_bundle(VIN, 5, features=[("NAV_PRO", 0x1002, None)], key=b"attacker")
    with pytest.raises(NegativeResponse) as exc:
        car.verify_and_apply(forged)
    assert exc.value.nrc == Nrc.SECURITY_ACCESS_DENIED
    restarted = Car(store, services_with())
    assert fingerprint(restarted) == before
    assert [d.code for d in restarted.state.dtcs] == [0xD10000 | Nrc.SECURITY_ACCESS_DENIED]


@pytest.mark.parametrize(
    ("attack", "nrc"),
    [
        ("replayed_counter", Nrc.UPLOAD_DOWNLOAD_NOT_ACCEPTED),
        ("other_vin", Nrc.REQUEST_OUT_OF_RANGE),
        ("image_hash_mismatch", Nrc.GENERAL_PROGRAMMING_FAILURE),
        ("rollback", Nrc.UPLOAD_DOWNLOAD_NOT_ACCEPTED),
        ("unissued_nonce", Nrc.REQUEST_SEQUENCE_ERROR),
        ("unknown_ecu", Nrc.REQUEST_OUT_OF_RANGE),
    ],
)
def test_car_level_checks_refuse_what_the_verifier_let_through(
    make_store: Callable[[str], CarStore], attack: str, nrc: Nrc
) -> None:
    store = make_store("car")
    receive(store, "maps-eu", MAPS)
    car = Car(store, services_with())
    car.verify_and_apply(bundle(counter=3))
    before = fingerprint(car)
    bad = {
        "replayed_counter": bundle(counter=3),
        "other_vin": make_bundle("WFCRT0TESTA000099", 4),
        "image_hash_mismatch": make_bundle(VIN, 4, images=[image("maps-eu", 0x1002, 3, b"x")]),
        "rollback": make_bundle(VIN, 4, images=[image("maps-eu", 0x1002, 1, MAPS)]),
        "unissued_nonce": make_bundle(VIN, 4, nonce=b"\x01" * 16),
        "unknown_ecu": make_bundle(VIN, 4, features=[("X", 0x1F00, None)]),
    }[attack]
    with pytest.raises(NegativeResponse) as exc:
        car.verify_and_apply(bad)
    assert exc.value.nrc == nrc
    assert fingerprint(Car(store, services_with())) == before
    assert len(car.state.dtcs) == 1


def test_issued_nonce_is_accepted_once(make_store: Callable[[str], CarStore]) -> None:
    car = Car(make_store("car"), services_with())
    nonce = car.issue_nonce()
    car.verify_and_apply(make_bundle(VIN, 1, nonce=nonce, features=[("A", 0x1001, None)]))
    with pytest.raises(NegativeResponse):
        car.verify_and_apply(make_bundle(VIN, 2, nonce=nonce, features=[("B", 0x1001, None)]))
    assert [f.feature_id for f in car.state.features] == ["A"]


def test_flash_failure_on_one_ecu_leaves_all_ecus_unchanged(
    make_store: Callable[[str], CarStore],
) -> None:
    store = make_store("car")
    receive(store, "maps-eu", MAPS)
    car = Car(store, services_with(fail_flash_ecu=0x1002))
    before = fingerprint(car)
    with pytest.raises(NegativeResponse) as exc:
        car.verify_and_apply(bundle())
    assert exc.value.nrc == Nrc.GENERAL_PROGRAMMING_FAILURE
    assert car.routine_results() == b"\x10\x01\x01\x10\x02\x72"
    assert fingerprint(Car(store, services_with())) == before
    assert not list((store.directory / "slots").glob("*/*"))


def test_unmet_preconditions_refuse_the_apply(make_store: Callable[[str], CarStore]) -> None:
    car = Car(make_store("car"), services_with())
    car.preconditions.battery_millivolts = 11_000
    with pytest.raises(NegativeResponse) as exc:
        car.verify_and_apply(bundle())
    assert exc.value.nrc == Nrc.CONDITIONS_NOT_CORRECT


def test_power_loss_at_every_apply_step_leaves_the_car_wholly_old_or_wholly_new(
    make_store: Callable[[str], CarStore], tmp_path: Path
) -> None:
    pristine = make_store("pristine")
    receive(pristine, "maps-eu", MAPS)
    steps: list[str] = []
    reference = tmp_path / "reference"
    shutil.copytree(pristine.directory, reference)
    old = fingerprint(Car(CarStore(reference), services_with()))
    Car(CarStore(reference), services_with(steps.append)).verify_and_apply(bundle())
    new = fingerprint(Car(CarStore(reference), services_with()))
    assert steps == ["verify", "stage:1001", "stage:1002", "commit", "rename", "cleanup"]

    outcomes = {}
    for step in steps:
        copy = tmp_path / f"cut-{step.replace(':', '-')}"
        shutil.copytree(pristine.directory, copy)

        def cut(reached: str, at: str = step) -> None:
            if reached == at:
                raise PowerLoss(reached)

        with pytest.raises(PowerLoss):
            Car(CarStore(copy), services_with(cut)).verify_and_apply(bundle())
        after = Car(CarStore(copy), services_with())
        state = fingerprint(after)
        assert state in (old, new), step
        outcomes[step] = "new" if state == new else "old"
        referenced = {
            i.slot for e in after.state.ecus.values() for i in e.images.values() if i.slot
        }
        on_disk = {p.relative_to(copy).as_posix() for p in (copy / "slots").glob("*/*")}
        assert on_disk == referenced, step  # no orphan, nothing referenced missing
        if state == new:  # the re-started car can apply the next activation
            after.verify_and_apply(make_bundle(VIN, 2, features=[("X", 0x1001, None)]))
    assert outcomes == {
        "verify": "old",
        "stage:1001": "old",
        "stage:1002": "old",
        "commit": "old",
        "rename": "old",
        "cleanup": "new",
    }


def test_a_clock_set_back_before_the_last_verification_refuses_with_a_dtc(
    make_store: Callable[[str], CarStore],
) -> None:
    store = make_store("car")
    car = Car(store, services_with())
    car.verify_and_apply(make_bundle(VIN, 1, features=[("A", 0x1001, None)]))
    verified_at = datetime.fromisoformat(str(car.state.last_verified_at))
    car.services.now = lambda: verified_at - timedelta(days=30)
    before = fingerprint(car)
    with pytest.raises(NegativeResponse) as exc:
        car.verify_and_apply(make_bundle(VIN, 2, features=[("B", 0x1001, None)]))
    assert exc.value.nrc == Nrc.CONDITIONS_NOT_CORRECT
    assert fingerprint(car) == before
    assert car.state.dtcs[-1].code == 0xD10000 | Nrc.CONDITIONS_NOT_CORRECT
