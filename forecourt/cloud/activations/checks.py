"""The cloud's own refusal reasons, beside the domain's (:class:`forecourt.core.RefusalCode`).

The edge reports what it read from the car and who asks; the cloud compares that with what it
knows, never with what the edge believes. Each reason has a stable code, like the domain's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from forecourt.core import Dealer, Market, Vehicle


class CloudRefusalCode(StrEnum):
    INVENTORY_MISMATCH = "inventory_mismatch"
    DEALER_NOT_ASSIGNED = "dealer_not_assigned"
    SALES_REGION_MISMATCH = "sales_region_mismatch"
    OPERATOR_UNKNOWN = "operator_unknown"
    OPERATOR_NOT_PERMITTED = "operator_not_permitted"
    IMAGE_NOT_PUBLISHED = "image_not_published"
    """A package the plan installs is not in the image targets published (signed offline)."""


@dataclass(frozen=True, slots=True)
class ReadEcu:
    """One ECU as the edge read it over UDS (DIDs F18C serial, F191 hardware, F189 software)."""

    role: str
    serial: str
    hardware_number: str
    software_version: str = ""


@dataclass(frozen=True, slots=True)
class CloudReason:
    code: CloudRefusalCode
    message: str
    feature: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code.value, "feature": self.feature, "message": self.message}


def inventory_reasons(vehicle: Vehicle, read: Sequence[ReadEcu]) -> list[CloudReason]:
    """Differences between the ECUs read and the factory record (software may have moved on)."""
    reasons: list[CloudReason] = []
    factory = {ecu.role.value: ecu for ecu in vehicle.ecus}
    seen = {ecu.role: ecu for ecu in read}
    for role in sorted(factory.keys() - seen.keys()):
        reasons.append(_mismatch(f"ECU {role} is in the factory record but was not read"))
    for role in sorted(seen.keys() - factory.keys()):
        reasons.append(_mismatch(f"ECU {role} was read but is not in the factory record"))
    for role in sorted(factory.keys() & seen.keys()):
        known, got = factory[role], seen[role]
        if known.serial != got.serial:
            reasons.append(_mismatch(f"ECU {role} serial {got.serial} is not {known.serial}"))
        if known.hardware_number != got.hardware_number:
            reasons.append(
                _mismatch(
                    f"ECU {role} hardware {got.hardware_number} is not {known.hardware_number}"
                )
            )
    return reasons


def _mismatch(message: str) -> CloudReason:
    return CloudReason(CloudRefusalCode.INVENTORY_MISMATCH, message)


def assignment_reasons(vehicle: Vehicle, dealer: Dealer, market: Market) -> list[CloudReason]:
    """The car must be assigned to the asking dealer, and sold in the dealer's region."""
    reasons = []
    if vehicle.dealer_id != dealer.dealer_id:
        reasons.append(
            CloudReason(
                CloudRefusalCode.DEALER_NOT_ASSIGNED,
                f"vehicle is assigned to {vehicle.dealer_id or 'no dealer'}, "
                f"not {dealer.dealer_id}",
            )
        )
    if market is not vehicle.market:
        reasons.append(
            CloudReason(
                CloudRefusalCode.SALES_REGION_MISMATCH,
                f"vehicle is for {vehicle.market.value}; {dealer.dealer_id} sells in "
                f"{market.value}",
            )
        )
    return reasons


def operator_reason(code: str | None, operator_id: str, dealer_id: str) -> list[CloudReason]:
    if code is None:
        return []
    if code == CloudRefusalCode.OPERATOR_UNKNOWN:
        return [
            CloudReason(
                CloudRefusalCode.OPERATOR_UNKNOWN,
                f"operator {operator_id} is not registered (or inactive) at {dealer_id}",
            )
        ]
    return [
        CloudReason(
            CloudRefusalCode.OPERATOR_NOT_PERMITTED,
            f"operator {operator_id} does not hold a role that may activate at {dealer_id}",
        )
    ]


def image_reasons(missing: Sequence[str]) -> list[CloudReason]:
    """The images a plan needs that the published image targets do not list (or why none of
    them can be served): a car would refuse the bundle, so the cloud refuses first."""
    return [CloudReason(CloudRefusalCode.IMAGE_NOT_PUBLISHED, message) for message in missing]
