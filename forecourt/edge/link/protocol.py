"""The I/O seam between the edge's activation workflow and a car: :class:`VehicleLink`.

The workflow speaks to one car per link: ``discover`` binds the link to a vehicle, the other
operations address an ECU of that vehicle by its DoIP logical address. Two implementations honour
the same contract (tests/edge/link/test_contract.py): ``DoipVehicleLink`` over ISO 13400-2 and
ISO 14229-1 (:mod:`forecourt.edge.link.doip`), and ``InMemoryVehicleLink`` for unit tests of the
workflow (:mod:`forecourt.edge.link.memory`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from securesystemslib.signer import Signer  # type: ignore[attr-defined]

from forecourt.edge.link.model import (
    GATEWAY,
    ApplyOutcome,
    DiscoveredVehicle,
    Dtc,
    ResetType,
    TransferReceipt,
    VehicleIdentity,
    VehicleStatus,
    VersionReport,
)
from forecourt.trust.uds_auth import EcuContext, prove_possession

Progress = Callable[[int, int], None]  # (bytes confirmed by the ECU, total bytes)
# (ECU challenge, VIN, ECU serial) -> signature with the dealer key, bound to that ECU
ProofOfOwnership = Callable[[bytes, str, str], bytes]
SeedKey = Callable[[int, int, bytes], bytes]  # (ECU address, security level, seed) -> key


@dataclass(frozen=True)
class DealerCredentials:
    """What the edge presents to a car: the dealer certificate and proof of its private key.

    ``prove_ownership`` signs the ECU's 0x29 challenge bound to the car's VIN and the ECU's serial
    (``forecourt.trust.uds_auth.prove_possession``), so a proof cannot be replayed to another ECU;
    the key never leaves its holder (file or HSM signer of :mod:`forecourt.trust.keys`).
    ``seed_key`` asks the OEM backend for a 0x27 key, for ECUs that do not offer 0x29.
    The repr names no secret.
    """

    certificate: bytes
    prove_ownership: ProofOfOwnership = field(repr=False)
    seed_key: SeedKey | None = field(default=None, repr=False)
    security_level: int = 0x01

    @classmethod
    def from_signer(
        cls, certificate: bytes, signer: object, seed_key: SeedKey | None = None
    ) -> DealerCredentials:
        """Prove ownership with the trust layer's 0x29 recipe and a securesystemslib ``Signer``."""
        if not isinstance(signer, Signer):
            raise TypeError("signer must be a securesystemslib Signer")

        def prove(challenge: bytes, vin: str, ecu_serial: str) -> bytes:
            return prove_possession(signer, challenge, EcuContext(vin, ecu_serial))

        return cls(certificate, prove, seed_key)


@dataclass(frozen=True, slots=True)
class AuthenticationResult:
    ecu: int
    method: str  # "certificate" (0x29) or "seed_key" (0x27)


class VehicleLink(Protocol):
    """One car on the dealer network, as the activation workflow sees it."""

    def discover(
        self, *, vin: str | None = None, addresses: Sequence[str] = ()
    ) -> DiscoveredVehicle:
        """Identify the vehicle (by VIN, at the given addresses) and bind the link to it."""
        ...

    def read_identity(self) -> VehicleIdentity:
        """VIN, every fitted ECU's identification and keys, nonce, counter, features, conditions.

        The car answers the nonce (FD00) only after :meth:`authenticate` on the gateway."""
        ...

    def authenticate(self, ecu: int, credentials: DealerCredentials) -> AuthenticationResult:
        """Open an extended session and authenticate (0x29, else 0x27) on ``ecu``."""
        ...

    def transfer(
        self, ecu: int, name: str, source: bytes | Path, progress: Progress | None = None
    ) -> TransferReceipt:
        """Send a file to ``ecu``, resuming from the ECU-confirmed position after a cut."""
        ...

    def apply(self, ecu: int = GATEWAY, bundle_name: str = "bundle") -> ApplyOutcome:
        """RoutineControl FF00 on the received bundle, then its per-ECU results."""
        ...

    def read_report(self, ecu: int = GATEWAY) -> VersionReport:
        """DID FD04: the signed version report (the gateway's covers the whole vehicle)."""
        ...

    def read_status(self, ecu: int = GATEWAY) -> VehicleStatus:
        """DID FD06: the unsigned summary (counter, last bundle id, images by ECU address)."""
        ...

    def tester_present(self, ecu: int) -> None:
        """TesterPresent (0x3E): keep ``ecu``'s extended session (and authentication) alive."""
        ...

    def confirmed_position(self, ecu: int, name: str, size: int) -> int:
        """Bytes of file ``name`` the ECU has confirmed (0x38 ResumeFile), 0 if none."""
        ...

    def ecu_reset(self, ecu: int, reset_type: ResetType = ResetType.HARD_RESET) -> None: ...

    def read_dtcs(self, ecu: int, status_mask: int = 0xFF) -> list[Dtc]: ...

    def close(self) -> None: ...
