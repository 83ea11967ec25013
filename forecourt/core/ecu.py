"""Electronic control units that take part in an activation, as the registry knows them.

The role fixes the DoIP logical address (ISO 13400-2) used on the vehicle network, as PROTOCOL.md
lays out; the identifiers are those a tester reads with UDS ReadDataByIdentifier (ISO 14229-1):
serial ``F18C``, hardware number ``F191``, software version ``F189``. The public keys are the ECU's
factory identity (``FD03``): one for signing its reports, one that activation secrets are sealed to.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from forecourt.core.errors import DomainValueError

# ISO 13400-2 logical addresses reserved for testers (external 0x0E00–0x0EFF, internal
# 0x0F00–0x0FFF) and the functional / reserved range from 0xE000: never an ECU's own address.
_TESTER_ADDRESSES = range(0x0E00, 0x1000)
_FIRST_RESERVED = 0xE000


class EcuRole(StrEnum):
    """What an ECU does in an activation; each role has its standard address on our cars."""

    CGW = "cgw"
    TBOX = "tbox"
    HEAD_UNIT = "head_unit"
    ADAS = "adas"

    @property
    def logical_address(self) -> int:
        """The DoIP logical address of this role (PROTOCOL.md)."""
        return _ADDRESSES[self]


_ADDRESSES: dict[EcuRole, int] = {
    EcuRole.CGW: 0x1000,
    EcuRole.TBOX: 0x1001,
    EcuRole.HEAD_UNIT: 0x1002,
    EcuRole.ADAS: 0x1003,
}


@dataclass(frozen=True, slots=True)
class Ecu:
    """One ECU fitted to one vehicle (factory inventory)."""

    role: EcuRole
    logical_address: int
    serial: str
    hardware_number: str
    software_version: str
    signing_public_key: bytes
    sealing_public_key: bytes

    def __post_init__(self) -> None:
        if not 0 < self.logical_address < _FIRST_RESERVED:
            raise DomainValueError(
                "logical_address", f"0x{self.logical_address:04X} is outside 0x0001–0xDFFF"
            )
        if self.logical_address in _TESTER_ADDRESSES:
            raise DomainValueError(
                "logical_address", f"0x{self.logical_address:04X} is a tester address"
            )
        for name in ("serial", "hardware_number", "software_version"):
            if not getattr(self, name).strip():
                raise DomainValueError(name, "must not be empty")
