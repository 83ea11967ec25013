"""Regression, found by fuzzing forecourt/vehicle/ecu.py: a ReadDataByIdentifier naming a DID with
a side effect (FD04 raises the report counter, FD00 issues a nonce) and an unsupported DID was
refused with 0x31 after the first DID's commit had already changed state.json. Now every DID is
looked up before any is read (ISO 14229-1:2020 10.2.5: the supported ones are answered, 0x31 only
when none is supported), and a refusal changes nothing.

FD00 is a secured DID: only a tester authenticated (0x27/0x29) in the extended or programming
session may draw nonces, so it is read here in an authenticated extended session; anonymously it
is unsupported in the default session (0x31) and 0x33 in the extended one, changing nothing.
"""

from __future__ import annotations

import pytest

from forecourt.vehicle.car import Car
from forecourt.vehicle.uds.security_access import compute_key, derive_ecu_secret
from tests.fuzz.test_uds import (  # noqa: F401 - the fixture is used by name
    OEM_SECRET,
    SERIALS,
    UdsTester,
    _committed,
    car,
)


def _authenticate_in_extended(tester: UdsTester) -> None:
    assert tester.send(b"\x10\x03")[0] == 0x50
    seed = tester.send(b"\x27\x01")[2:]
    secret = derive_ecu_secret(OEM_SECRET, SERIALS[tester.ecu.address])
    assert tester.send(b"\x27\x02" + compute_key(secret, 1, seed))[0] == 0x67


@pytest.mark.parametrize(
    ("request_", "authenticated"),
    [(b"\x22\xfd\x04\x00\x00", False), (b"\x22\xfd\x00\x00\x00", True)],
)
def test_a_multi_did_read_answers_the_supported_did_and_leaves_out_the_unsupported(
    car: Car,  # noqa: F811
    request_: bytes,
    authenticated: bool,
) -> None:
    tester = UdsTester(car.ecus[0x1000])
    if authenticated:
        _authenticate_in_extended(tester)
    answer = tester.send(request_)
    assert answer[:3] == b"\x62" + request_[1:3]
    before = _committed(car.store)
    assert tester.send(b"\x22\x00\x00\xab\xcd") == b"\x7f\x22\x31"
    assert _committed(car.store) == before


@pytest.mark.parametrize(("session", "nrc"), [(b"\x10\x01", 0x31), (b"\x10\x03", 0x33)])
def test_an_anonymous_nonce_read_with_an_unsupported_did_is_refused_and_changes_nothing(
    car: Car,  # noqa: F811
    session: bytes,
    nrc: int,
) -> None:
    tester = UdsTester(car.ecus[0x1000])
    assert tester.send(session)[0] == 0x50
    before = _committed(car.store)
    assert tester.send(b"\x22\xfd\x00\x00\x00") == bytes([0x7F, 0x22, nrc])
    assert _committed(car.store) == before
