""":class:`InMemoryVehicleLink`: the vehicle link without a network, for the workflow's unit tests.

It keeps the behaviour the workflow relies on (tests/edge/link/test_contract.py runs the same
cases against it and against the DoIP link with the simulator): a refusal carries the NRC the
real car sends, a transfer needs authentication and resumes from the confirmed position after an
injected cut, an apply needs the bundle file, a refused apply records a DTC and changes nothing.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from udsoncan import Response  # type: ignore[attr-defined]

from forecourt.edge.link.errors import (
    ApplyRefused,
    DiagnosticMessageRefused,
    EcuNegativeResponse,
    LinkNotBound,
    TransferInterrupted,
    VehicleNotFound,
)
from forecourt.edge.link.model import (
    GATEWAY,
    ApplyOutcome,
    DiscoveredVehicle,
    Dtc,
    EcuIdentity,
    FeatureStatus,
    Preconditions,
    ResetType,
    TransferReceipt,
    VehicleIdentity,
    VehicleStatus,
    VersionReport,
)
from forecourt.edge.link.protocol import AuthenticationResult, DealerCredentials, Progress

NRC_SERVICE_NOT_SUPPORTED = 0x11
NRC_REQUEST_SEQUENCE_ERROR = 0x24
NRC_SECURITY_ACCESS_DENIED = 0x33
NRC_OWNERSHIP_VERIFICATION_FAILED = 0x58
NRC_SERVICE_NOT_SUPPORTED_IN_ACTIVE_SESSION = 0x7F
DTC_ACTIVATION_REFUSED = 0xD10000
DTC_STATUS_CONFIRMED = 0x09
DEFAULT_BLOCK = 1024 * 1024

# (certificate, challenge, proof) -> None to accept, or the NRC to refuse with
Authenticator = Callable[[bytes, bytes, bytes], int | None]
# bundle -> None to accept, or the NRC to refuse with
BundleCheck = Callable[[bytes], int | None]


def _accept_any_certificate(certificate: bytes, challenge: bytes, proof: bytes) -> int | None:
    return None


def _accept_any_bundle(bundle: bytes) -> int | None:
    return None


@dataclass
class MemoryEcu:
    identity: EcuIdentity
    files: dict[str, bytes] = field(default_factory=dict)
    partial: dict[str, bytearray] = field(default_factory=dict)
    extended_session: bool = False  # opened by authenticate, closed by ecu_reset
    authenticated: bool = False
    dtcs: list[Dtc] = field(default_factory=list)


@dataclass
class MemoryVehicle:
    """A car as the in-memory link sees it; tests arrange it and inspect it afterwards."""

    vin: str
    address: str
    ecus: dict[int, MemoryEcu]
    authenticator: Authenticator = _accept_any_certificate
    verify_bundle: BundleCheck = _accept_any_bundle
    offers_certificate_authentication: bool = True
    activation_counter: int = 0
    features: list[FeatureStatus] = field(default_factory=list)
    preconditions: Preconditions = field(default_factory=lambda: Preconditions(2, 12_600, True))
    eid: bytes = b"\x02\x00\x00\x00\x00\x01"
    gid: bytes = b"\x00\x00\x00\x00\x00\x01"
    cut_after_blocks: int | None = None  # one-shot link cut during the next transfer
    block_size: int = DEFAULT_BLOCK
    applied_to: tuple[int, ...] = (GATEWAY,)


def _refusal(ecu: int, service: int, nrc: int) -> EcuNegativeResponse:
    return EcuNegativeResponse(ecu, service, nrc, str(Response.Code.get_name(nrc)))


class InMemoryVehicleLink:
    """A :class:`~forecourt.edge.link.protocol.VehicleLink` over :class:`MemoryVehicle` objects."""

    def __init__(self, vehicles: Sequence[MemoryVehicle], *, max_resumes: int = 3) -> None:
        self.vehicles = list(vehicles)
        self.max_resumes = max_resumes
        self.vehicle: MemoryVehicle | None = None

    def _bound(self) -> MemoryVehicle:
        if self.vehicle is None:
            raise LinkNotBound("discover a vehicle first")
        return self.vehicle

    def _ecu(self, ecu: int) -> MemoryEcu:
        found = self._bound().ecus.get(ecu)
        if found is None:
            raise DiagnosticMessageRefused(ecu, DiagnosticMessageRefused.UNKNOWN_TARGET_ADDRESS)
        return found

    def discover(
        self, *, vin: str | None = None, addresses: Sequence[str] = ()
    ) -> DiscoveredVehicle:
        for vehicle in self.vehicles:
            if (vin is None or vehicle.vin == vin) and (
                not addresses or vehicle.address in addresses
            ):
                self.vehicle = vehicle
                return DiscoveredVehicle(
                    vehicle.vin, vehicle.address, GATEWAY, vehicle.eid, vehicle.gid
                )
        raise VehicleNotFound(vin=vin, addresses=tuple(addresses), timeout=0.0)

    def read_identity(self) -> VehicleIdentity:
        vehicle = self._bound()
        return VehicleIdentity(
            vin=vehicle.vin,
            ecus=tuple(e.identity for _, e in sorted(vehicle.ecus.items())),
            activation_nonce=secrets.token_bytes(16),
            activation_counter=vehicle.activation_counter,
            feature_status=tuple(vehicle.features),
            preconditions=vehicle.preconditions,
        )

    def authenticate(self, ecu: int, credentials: DealerCredentials) -> AuthenticationResult:
        vehicle, target = self._bound(), self._ecu(ecu)
        target.extended_session = True
        if not vehicle.offers_certificate_authentication:
            if credentials.seed_key is None:
                raise _refusal(ecu, 0x29, NRC_SERVICE_NOT_SUPPORTED)
            target.authenticated = True
            return AuthenticationResult(ecu, "seed_key")
        challenge = secrets.token_bytes(32)
        proof = credentials.prove_ownership(challenge, vehicle.vin, target.identity.serial_number)
        nrc = vehicle.authenticator(credentials.certificate, challenge, proof)
        if nrc is not None:
            raise _refusal(ecu, 0x29, nrc)
        target.authenticated = True
        return AuthenticationResult(ecu, "certificate")

    def transfer(
        self, ecu: int, name: str, source: bytes | Path, progress: Progress | None = None
    ) -> TransferReceipt:
        vehicle, target = self._bound(), self._ecu(ecu)
        data = source.read_bytes() if isinstance(source, Path) else bytes(source)
        if not target.extended_session:
            raise _refusal(ecu, 0x38, NRC_SERVICE_NOT_SUPPORTED_IN_ACTIVE_SESSION)
        if not target.authenticated:
            raise _refusal(ecu, 0x38, NRC_SECURITY_ACCESS_DENIED)
        partial = target.partial.setdefault(name, bytearray())
        if len(partial) > len(data):
            partial.clear()
        sent, resumed, cuts = 0, [], 0
        while True:
            blocks = 0
            if cuts:
                resumed.append(len(partial))
            try:
                while len(partial) < len(data):
                    block = data[len(partial) : len(partial) + vehicle.block_size]
                    sent += len(block)
                    blocks += 1
                    if vehicle.cut_after_blocks is not None and blocks > vehicle.cut_after_blocks:
                        vehicle.cut_after_blocks = None
                        raise ConnectionResetError("injected cut")
                    partial += block
                    if progress is not None:
                        progress(len(partial), len(data))
                break
            except ConnectionResetError:
                cuts += 1
                if cuts > self.max_resumes:
                    raise TransferInterrupted(
                        vehicle.address, ecu, name, len(partial), len(data)
                    ) from None
        target.files[name] = bytes(partial)
        del target.partial[name]
        digest = hashlib.sha256(data).hexdigest()
        return TransferReceipt(
            ecu, name, len(data), digest, sent, vehicle.block_size, tuple(resumed)
        )

    def apply(self, ecu: int = GATEWAY, bundle_name: str = "bundle") -> ApplyOutcome:
        vehicle, target = self._bound(), self._ecu(ecu)
        if not target.authenticated:
            raise _refusal(ecu, 0x31, NRC_SECURITY_ACCESS_DENIED)
        bundle = target.files.get(bundle_name)
        if bundle is None:
            raise ApplyRefused(_refusal(ecu, 0x31, NRC_REQUEST_SEQUENCE_ERROR), {})
        nrc = vehicle.verify_bundle(bundle)
        if nrc is not None:
            target.dtcs.append(Dtc(DTC_ACTIVATION_REFUSED | nrc, DTC_STATUS_CONFIRMED))
            raise ApplyRefused(_refusal(ecu, 0x31, nrc), {})
        vehicle.activation_counter += 1
        return ApplyOutcome(vehicle.activation_counter, dict.fromkeys(vehicle.applied_to, 0))

    def read_status(self, ecu: int = GATEWAY) -> VehicleStatus:
        vehicle = self._bound()
        self._ecu(ecu)
        document = {
            "vin": vehicle.vin,
            "activation_counter": vehicle.activation_counter,
            "ecus": [
                {"address": f"{a:04X}", "serial": e.identity.serial_number}
                for a, e in sorted(vehicle.ecus.items())
                if ecu in (GATEWAY, a)
            ],
        }
        return VehicleStatus(_canonical(document))

    def read_report(self, ecu: int = GATEWAY) -> VersionReport:
        """FD04 in the manifest's shape, unsigned: this fake holds no ECU keys."""
        vehicle = self._bound()
        self._ecu(ecu)
        reports = {
            e.identity.serial_number: {
                "signed": {
                    "ecu_serial": e.identity.serial_number,
                    "activation_counter": vehicle.activation_counter,
                },
                "signature": "",
            }
            for a, e in sorted(vehicle.ecus.items())
            if ecu in (GATEWAY, a)
        }
        if ecu != GATEWAY:
            return VersionReport(_canonical(next(iter(reports.values()))))
        signed = {
            "vin": vehicle.vin,
            "primary_ecu_serial": vehicle.ecus[GATEWAY].identity.serial_number,
            "ecu_version_reports": reports,
        }
        return VersionReport(_canonical({"signed": signed, "signature": ""}))

    def tester_present(self, ecu: int) -> None:
        self._ecu(ecu)

    def confirmed_position(self, ecu: int, name: str, size: int) -> int:
        partial = self._ecu(ecu).partial.get(name)
        return len(partial) if partial is not None and len(partial) <= size else 0

    def ecu_reset(self, ecu: int, reset_type: ResetType = ResetType.HARD_RESET) -> None:
        target = self._ecu(ecu)
        target.extended_session = target.authenticated = False

    def read_dtcs(self, ecu: int, status_mask: int = 0xFF) -> list[Dtc]:
        return [d for d in self._ecu(ecu).dtcs if d.status & status_mask]

    def close(self) -> None:
        self.vehicle = None


def _canonical(document: object) -> bytes:
    return json.dumps(document, sort_keys=True, separators=(",", ":")).encode()
