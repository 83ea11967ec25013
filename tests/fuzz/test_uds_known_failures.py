"""Regression, found by fuzzing forecourt/vehicle/ecu.py: a ReadDataByIdentifier naming a DID with
a side effect (FD04 raises the report counter, FD00 issues a nonce) and an unsupported DID was
refused with 0x31 after the first DID's commit had already changed state.json. Now every DID is
looked up before any is read (ISO 14229-1:2020 10.2.5: the supported ones are answered, 0x31 only
when none is supported), and a refusal changes nothing.
"""

from __future__ import annotations

import pytest

from forecourt.vehicle.car import Car
from tests.fuzz.test_uds import UdsTester, car  # noqa: F401 - the fixture is used by name


@pytest.mark.parametrize("request_", [b"\x22\xfd\x04\x00\x00", b"\x22\xfd\x00\x00\x00"])
def test_a_multi_did_read_answers_the_supported_did_and_leaves_out_the_unsupported(
    car: Car,  # noqa: F811
    request_: bytes,
) -> None:
    tester = UdsTester(car.ecus[0x1000])
    answer = tester.send(request_)
    assert answer[:3] == b"\x62" + request_[1:3]
    assert tester.send(b"\x22\x00\x00\xab\xcd") == b"\x7f\x22\x31"
