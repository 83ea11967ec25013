"""What can go wrong between the edge and a car, as typed exceptions the workflow records.

Everything the car refuses surfaces with its ISO 14229-1 negative response code; everything the
network does wrong surfaces as a loss of the vehicle. The tree::

    VehicleLinkError
    ├── VehicleNotFound             no DoIP vehicle identification response (ISO 13400-2 §7.3)
    ├── VehicleUnreachable          TCP connect failed, the connection dropped, or no DoIP ack
    │   └── TransferInterrupted     ... during a transfer; carries the ECU-confirmed position
    ├── RoutingActivationRefused    routing activation response code other than 0x10
    ├── DiagnosticMessageRefused    DoIP diagnostic message negative ack 0x8003 (e.g. unknown ECU)
    ├── EcuNegativeResponse         UDS 7F SID NRC (ISO 14229-1 annex A.1), with the response
    │   └── ApplyRefused            ... on RoutineControl FF00, with the per-ECU routine results
    ├── EcuTimeout                  no UDS response within P2 / P2* (after NRC 0x78)
    ├── UnexpectedResponse          a response that is malformed or answers another request
    ├── TransferVerificationFailed  the ECU's digest at RequestTransferExit differs from ours
    └── LinkNotBound                a car operation before :meth:`discover` bound the link

Messages never contain certificates, proofs, keys or transferred data.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class VehicleLinkError(Exception):
    """Root of every error of the vehicle link."""


class LinkNotBound(VehicleLinkError):
    """The link has not discovered a vehicle yet, so it has nowhere to send requests."""


class VehicleNotFound(VehicleLinkError):
    """No DoIP entity answered the vehicle identification request."""

    def __init__(self, *, vin: str | None, addresses: tuple[str, ...], timeout: float) -> None:
        target = f"VIN {vin}" if vin else "any vehicle"
        super().__init__(f"no answer for {target} from {', '.join(addresses)} in {timeout:.1f} s")
        self.vin = vin
        self.addresses = addresses
        self.timeout = timeout


class VehicleUnreachable(VehicleLinkError):
    """The car's DoIP entity cannot be reached, or the TCP connection was lost."""

    def __init__(self, address: str, detail: str) -> None:
        super().__init__(f"vehicle at {address} unreachable: {detail}")
        self.address = address
        self.detail = detail


class TransferInterrupted(VehicleUnreachable):
    """A transfer stopped on a link cut; ``position`` bytes are confirmed by the ECU."""

    def __init__(self, address: str, ecu: int, name: str, position: int, size: int) -> None:
        super().__init__(address, f"transfer of {name!r} to ECU {ecu:04X} cut at {position}/{size}")
        self.ecu = ecu
        self.name = name
        self.position = position
        self.size = size


class RoutingActivationRefused(VehicleLinkError):
    """The DoIP entity refused routing activation (ISO 13400-2 table 25 response code)."""

    def __init__(self, address: str, tester_address: int, detail: str) -> None:
        super().__init__(
            f"routing activation for tester {tester_address:04X} at {address} refused: {detail}"
        )
        self.address = address
        self.tester_address = tester_address
        self.detail = detail


class DiagnosticMessageRefused(VehicleLinkError):
    """DoIP diagnostic message negative ack (ISO 13400-2 table 31), e.g. 0x03 unknown target."""

    UNKNOWN_TARGET_ADDRESS = 0x03

    def __init__(self, ecu: int, nack_code: int) -> None:
        super().__init__(f"diagnostic message to ECU {ecu:04X} refused, DoIP NACK {nack_code:#04x}")
        self.ecu = ecu
        self.nack_code = nack_code


class EcuNegativeResponse(VehicleLinkError):
    """The ECU answered ``7F <service> <nrc>``; ``response`` is udsoncan's parsed response."""

    def __init__(
        self, ecu: int, service: int, nrc: int, nrc_name: str, response: Any = None
    ) -> None:
        super().__init__(f"ECU {ecu:04X} refused service {service:#04x}: NRC {nrc:#04x} {nrc_name}")
        self.ecu = ecu
        self.service = service
        self.nrc = nrc
        self.nrc_name = nrc_name
        self.response = response


class ApplyRefused(EcuNegativeResponse):
    """RoutineControl FF00 refused; ``ecu_results`` maps ECU address to its outcome byte."""

    def __init__(self, refusal: EcuNegativeResponse, ecu_results: Mapping[int, int]) -> None:
        super().__init__(
            refusal.ecu, refusal.service, refusal.nrc, refusal.nrc_name, refusal.response
        )
        self.ecu_results = dict(ecu_results)


class EcuTimeout(VehicleLinkError):
    """No response from the ECU within P2 (or P2* after response pending)."""

    def __init__(self, ecu: int, service: int, detail: str) -> None:
        super().__init__(f"ECU {ecu:04X} did not answer service {service:#04x}: {detail}")
        self.ecu = ecu
        self.service = service
        self.detail = detail


class UnexpectedResponse(VehicleLinkError):
    """The ECU's answer is malformed or does not match the request."""

    def __init__(self, ecu: int, service: int, detail: str) -> None:
        super().__init__(f"ECU {ecu:04X} gave an unexpected answer to {service:#04x}: {detail}")
        self.ecu = ecu
        self.service = service
        self.detail = detail


class TransferVerificationFailed(VehicleLinkError):
    """The digest the ECU reports at RequestTransferExit is not the digest of what we sent."""

    def __init__(self, ecu: int, name: str, expected: str, reported: str) -> None:
        super().__init__(
            f"ECU {ecu:04X} stored {name!r} with sha256 {reported}, expected {expected}"
        )
        self.ecu = ecu
        self.name = name
        self.expected = expected
        self.reported = reported
