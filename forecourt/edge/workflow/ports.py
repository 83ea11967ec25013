"""What the workflow needs from the car: a narrow port over the vehicle link (DoIP + UDS).

The workflow never speaks DoIP or UDS itself; it calls these few operations, named after the
ISO 14229-1 services behind them. :mod:`forecourt.edge.link` provides the real implementation
over doipclient/udsoncan; unit tests use an in-memory car. Keeping the port this small is what
lets every crash/resume case be tested in milliseconds.

Errors the link raises, all under :class:`LinkError`:

* :class:`CarUnreachable` — no DoIP entity at the address, routing activation refused, TCP cut;
* :class:`NegativeResponse` — a UDS negative response, carrying the service id and the NRC.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO, Protocol


class LinkError(Exception):
    """Root of the errors the vehicle link raises."""


class CarUnreachable(LinkError):
    def __init__(self, address: str, detail: str) -> None:
        super().__init__(f"car at {address} unreachable: {detail}")
        self.address = address
        self.detail = detail


class NegativeResponse(LinkError):
    """A UDS negative response (0x7F): ``service`` is the request SID, ``nrc`` the code."""

    def __init__(self, ecu_address: int, service: int, nrc: int, detail: str = "") -> None:
        super().__init__(
            f"ECU 0x{ecu_address:04X} answered service 0x{service:02X} with NRC 0x{nrc:02X}"
            + (f": {detail}" if detail else "")
        )
        self.ecu_address = ecu_address
        self.service = service
        self.nrc = nrc
        self.detail = detail


@dataclass(frozen=True, slots=True)
class EcuIdentity:
    """One ECU as read over UDS 0x22: F18C serial, F191 hardware, F189 software version, and
    from FD03 its Ed25519 signing key (raw, hex) and identity certificate (PEM).

    The signing key is what the ECU's version report must verify under; the certificate, when
    the car has one, binds that key to this VIN and serial under the OEM root."""

    logical_address: int
    serial: str
    hardware_number: str
    software_version: str
    signing_key_hex: str = ""
    certificate_pem: str = ""

    def to_dict(self) -> dict[str, object]:
        return {
            "address": f"0x{self.logical_address:04X}",
            "serial": self.serial,
            "hardware": self.hardware_number,
            "software": self.software_version,
            "signing_key": self.signing_key_hex,
            "certificate_pem": self.certificate_pem,
        }


@dataclass(frozen=True, slots=True)
class CarIdentity:
    """What identification read: the VIN (F190), the inventory, nonce (FD00), counter (FD01)."""

    vin: str
    ecus: tuple[EcuIdentity, ...]
    nonce: bytes
    activation_counter: int


@dataclass(frozen=True, slots=True)
class ApplyOutcome:
    """Results of routine FF00 (requestRoutineResults): per ECU address, 0 = applied."""

    results: tuple[tuple[int, int], ...]

    @property
    def applied(self) -> bool:
        return bool(self.results) and all(code == 0 for _, code in self.results)


#: Called with the total bytes the car has confirmed for the file being sent.
TransferProgress = Callable[[int], None]


class CarSession(Protocol):
    """One open diagnostic connection to one car (through its gateway)."""

    @property
    def address(self) -> str:
        """Where the car was reached (IP address of its DoIP entity)."""
        ...

    @property
    def local_interface(self) -> str:
        """The edge's interface / local address used for this car, for the audit record."""
        ...

    def identify(self) -> CarIdentity:
        """Read VIN, inventory, a fresh nonce and the activation counter."""
        ...

    def authenticate(self, ecu_address: int) -> None:
        """UDS 0x29 (or 0x27) to ``ecu_address``; raises :class:`NegativeResponse` if refused."""
        ...

    def confirmed_bytes(self, name: str, size: int) -> int:
        """Bytes of file ``name`` the car already holds (0x38 ResumeFile's position)."""
        ...

    def send_file(
        self, name: str, source: BinaryIO, size: int, offset: int, progress: TransferProgress
    ) -> None:
        """Send ``source`` from ``offset`` (0x38 + 0x36 + 0x37); ``progress`` per block."""
        ...

    def apply(self) -> ApplyOutcome:
        """Start routine FF00 (verify and apply) on the gateway and wait for its results."""
        ...

    def version_report(self) -> bytes:
        """DID FD04 of the gateway: the vehicle version manifest."""
        ...

    def close(self) -> None: ...


class CarConnector(Protocol):
    """Finds cars on the dealer network and opens sessions to them."""

    def discover(self, vin: str) -> str:
        """The address of the car with ``vin`` (DoIP vehicle identification by VIN)."""
        ...

    def connect(self, address: str) -> CarSession:
        """Open TCP, activate routing, enter the extended session."""
        ...
