"""The edge's TesterPresent keep-alive holds a car's extended session and authentication open.

ISO 14229-1 S3server: an ECU left without a request for 5 s drops back to the default session,
and with it the tester's authentication. The workflow pauses between steps (reviews, cloud
calls) for longer than that, so :class:`DoipCarConnector` sends 0x3E to every authenticated ECU
while the session is idle. These tests run the real simulated car over DoIP; only the car's
clock is the test's, so "more than S3 passed" is a fact the test sets rather than waits for.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from forecourt.edge.link import LinkConfig
from forecourt.edge.link.connector import ConnectorSettings, DoipCarConnector, DoipCarSession
from forecourt.edge.workflow.ports import NegativeResponse
from forecourt.vehicle.car import Car, CarServices
from forecourt.vehicle.doip.entity import EntityConfig
from forecourt.vehicle.faults import FaultPlan
from forecourt.vehicle.provision import provision
from forecourt.vehicle.runtime import SimulatorHost
from forecourt.vehicle.uds.session import S3_SERVER_SECONDS
from tests.edge.link.conftest import OEM_SECRET, SPEC, dealer, random_loopback
from tests.vehicle.doubles import HmacAuthenticator, HmacBundleVerifier

GATEWAY = 0x1000
KEEPALIVE_ON = 0.05  # edge-side seconds: the keep-alive thread runs on the host's real clock
KEEPALIVE_OFF = 3600.0  # never due within a test: the keep-alive stays silent
NOT_IN_SESSION = {0x7F, 0x33, 0x31}  # what a car answers for FD00 outside an authenticated session
WAIT = 10.0  # bound on waiting for the keep-alive to reach the car (a failure, not a pace)


class CarClock:
    """The car's monotonic clock: moves only when the test advances it; records every read.

    Each request an ECU serves reads it once (to run the S3 timer), so a read of the current
    value after an advance is the observable sign that a request reached the car since then.
    """

    def __init__(self) -> None:
        self._now = 0.0
        self._read_at_now = False
        self._changed = threading.Condition()

    def monotonic(self) -> float:
        with self._changed:
            self._read_at_now = True
            self._changed.notify_all()
            return self._now

    def advance(self, seconds: float) -> None:
        with self._changed:
            self._now += seconds
            self._read_at_now = False

    def wait_for_request(self) -> bool:
        """True once the car served a request at the current time (bounded by ``WAIT``)."""
        with self._changed:
            return self._changed.wait_for(lambda: self._read_at_now, timeout=WAIT)


@pytest.fixture
def host() -> Iterator[SimulatorHost]:
    simulator = SimulatorHost()
    yield simulator
    simulator.close()


@pytest.fixture
def clock() -> CarClock:
    return CarClock()


@pytest.fixture
def address(host: SimulatorHost, tmp_path: Path, clock: CarClock) -> str:
    services = CarServices(
        verifier=HmacBundleVerifier(),
        authenticator=HmacAuthenticator(),
        clock=clock,
        faults=FaultPlan(),
    )
    car = Car(provision(tmp_path / "car", SPEC, oem_secret=OEM_SECRET), services)
    for _ in range(10):
        candidate = random_loopback()
        try:
            host.start_car(car, EntityConfig(candidate, announce_to=None))
        except OSError:
            continue
        return candidate
    raise RuntimeError("no free loopback address")


def _authenticated_session(address: str, keepalive_interval: float) -> DoipCarSession:
    settings = ConnectorSettings(
        (address,), link=LinkConfig(discovery_timeout=0.5), keepalive_interval=keepalive_interval
    )
    session = DoipCarConnector(settings, dealer()).connect(address)
    session.authenticate(GATEWAY)  # 0x10 03 then 0x29 (0x27 as the doubles' fallback)
    return session


def test_the_keepalive_keeps_the_authenticated_session_past_s3(
    address: str, clock: CarClock
) -> None:
    session = _authenticated_session(address, KEEPALIVE_ON)
    try:
        # Two pauses, each shorter than S3 but together longer: the car sees 0x3E in each.
        pause = S3_SERVER_SECONDS * 0.8
        for _ in range(2):
            clock.advance(pause)
            assert clock.wait_for_request(), "no TesterPresent reached the car during the pause"

        identity = session.identify()  # reads FD00: extended session and authentication only
    finally:
        session.close()

    assert 2 * pause > S3_SERVER_SECONDS
    assert len(identity.nonce) > 0


def test_without_the_keepalive_the_car_drops_the_session_after_s3(
    address: str, clock: CarClock
) -> None:
    session = _authenticated_session(address, KEEPALIVE_OFF)
    try:
        clock.advance(S3_SERVER_SECONDS * 1.6)  # the same pause, no request in between
        with pytest.raises(NegativeResponse) as refused:
            session.identify()
    finally:
        session.close()

    assert refused.value.ecu_address == GATEWAY
    assert refused.value.service == 0x22
    assert refused.value.nrc in NOT_IN_SESSION
