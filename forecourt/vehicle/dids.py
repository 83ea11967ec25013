"""Data identifiers the simulated ECUs serve (PROTOCOL.md): numbers and encodings in one place.

Fixed-format DIDs are raw bytes (VIN, serials, the nonce, the counter, preconditions); structured
ones (feature status, identity, version report) are canonical JSON (sorted keys, no whitespace) so a
udsoncan codec reads them with "all remaining bytes" and any tool can print them.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from enum import IntEnum
from typing import Any


class Did(IntEnum):
    SUPPLIER_SOFTWARE_VERSION = 0xF195
    SPARE_PART_NUMBER = 0xF187
    ECU_SOFTWARE_VERSION = 0xF189
    ECU_SERIAL_NUMBER = 0xF18C
    VIN = 0xF190
    ECU_HARDWARE_NUMBER = 0xF191
    REPAIR_SHOP_CODE = 0xF198  # writable after authentication: who last touched this ECU
    ACTIVATION_NONCE = 0xFD00
    ACTIVATION_COUNTER = 0xFD01
    FEATURE_STATUS = 0xFD02
    ECU_IDENTITY = 0xFD03
    VERSION_REPORT = 0xFD04  # signed: the gateway's manifest, or the ECU's own report
    PRECONDITIONS = 0xFD05
    VEHICLE_STATUS = 0xFD06  # unsigned summary by logical address (what FD04 was before)
    CERTIFICATE_REVOCATION_LIST = 0xFD07  # write-only: the issuing CA's CRL (gateway, 0x29)


class PowerModeState(IntEnum):
    OFF = 0x00
    ACCESSORY = 0x01
    ON = 0x02


MIN_BATTERY_MILLIVOLTS = 12_000
REPAIR_SHOP_CODE_MAX = 32


@dataclass
class Preconditions:
    """Inputs of the simulated car that gate an activation (DID FD05, routine FF01)."""

    power_mode: PowerModeState = PowerModeState.ON
    battery_millivolts: int = 12_600
    stationary: bool = True

    def encode(self) -> bytes:
        return struct.pack(">BHB", self.power_mode, self.battery_millivolts, self.stationary)

    def failures(self) -> int:
        """Bitmask of unmet preconditions: 0x01 power mode, 0x02 battery, 0x04 moving."""
        mask = 0
        if self.power_mode is not PowerModeState.ON:
            mask |= 0x01
        if self.battery_millivolts < MIN_BATTERY_MILLIVOLTS:
            mask |= 0x02
        if not self.stationary:
            mask |= 0x04
        return mask


def canonical_json(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()
