"""FD00 nonces go to authenticated testers only; FD04 reads do not write the disk each time."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from udsoncan.exceptions import NegativeResponseException

from forecourt.vehicle.car import REPORT_COUNTER_LEASE, Car
from forecourt.vehicle.storage import CarStore
from tests.vehicle.conftest import RunningCar
from tests.vehicle.test_conformance import ExtendedSession, authenticate, nrc_of
from tests.vehicle.test_trust_wiring import RawBytes


def test_an_anonymous_tester_gets_no_nonce_in_any_session(running: RunningCar) -> None:
    with running.client(tester=0x0E99) as other:
        with pytest.raises(NegativeResponseException) as default_session:
            other.read_data_by_identifier_first(0xFD00)
        other.change_session(ExtendedSession)
        with pytest.raises(NegativeResponseException) as extended_session:
            other.read_data_by_identifier_first(0xFD00)
    assert nrc_of(default_session) == 0x31  # FD00 is not offered in the default session
    assert nrc_of(extended_session) == 0x33
    assert running.car.state.issued_nonces == []


def test_anonymous_readers_cannot_push_out_the_dealers_nonce(running: RunningCar) -> None:
    with running.client(tester=0x0E80) as dealer:
        dealer.change_session(ExtendedSession)
        authenticate(dealer)
        dealer.config["data_identifiers"][0xFD00] = RawBytes()
        nonce = bytes(dealer.read_data_by_identifier_first(0xFD00))
    with running.client(tester=0x0E99) as other:
        other.change_session(ExtendedSession)
        for _ in range(10):
            with pytest.raises(NegativeResponseException):
                other.read_data_by_identifier_first(0xFD00)
    assert running.car.state.issued_nonces == [nonce.hex()]


def test_version_reports_commit_once_per_lease_and_never_reuse_a_counter(
    make_store: Callable[[str], CarStore],
) -> None:
    store = make_store("car")
    car = Car(store)
    generation = car.state.generation
    counters = [_report_counter(car) for _ in range(REPORT_COUNTER_LEASE)]
    assert counters == list(range(1, REPORT_COUNTER_LEASE + 1))
    assert car.state.generation == generation + 1  # one commit for the whole lease
    restarted = Car(store)
    assert _report_counter(restarted) > counters[-1]


def _report_counter(car: Car) -> int:
    car.version_report(car.gateway_address)
    return car.report_counter
