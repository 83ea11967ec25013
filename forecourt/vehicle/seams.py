"""The seams between the car and the trust layer (``forecourt.trust``).

The simulator decides *when* to check (which session, which sequence, what to record on refusal);
the trust layer decides *whether* a certificate, a proof of ownership or a bundle is valid. These
Protocols are the only place the two meet, so the car's state machine can be tested with small
in-memory doubles and the real PKI / bundle verifier plugged in without touching the ECU code.

Every refusal carries the ISO 14229 NRC the ECU sends back, so the trust layer chooses the precise
code (0x50-0x58 for certificates and proofs, 0x22/0x31/0x33 etc. for bundles).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from forecourt.vehicle.uds.nrc import Nrc


class TrustRefusal(Exception):
    """A certificate, proof or bundle the car refuses: ``nrc`` to the wire, ``reason`` to logs."""

    def __init__(self, nrc: Nrc, reason: str) -> None:
        super().__init__(f"{nrc.name}: {reason}")
        self.nrc = nrc
        self.reason = reason


@dataclass(frozen=True, slots=True)
class TesterIdentity:
    """Who passed 0x29 verifyCertificateUnidirectional: a dealer certificate under the OEM CA."""

    subject: str
    role: str
    certificate: bytes


@dataclass(frozen=True, slots=True)
class AuthenticationContext:
    """What one ECU checks a 0x29 exchange against, read from the car at the moment of the check.

    ``vin`` and ``ecu_serial`` are what the proof of ownership is bound to (a proof made for one
    ECU is worthless on another); the anchors are the ones pinned at the factory; ``now`` is the
    car's clock, not the host's.
    """

    vin: str
    ecu_serial: str
    oem_root_pem: str
    oem_chain_pem: str  # issuing CA certificate(s), PEM, pinned with the root
    crl_pem: str  # the issuing CA's CRL when the car holds one, else ""
    now: datetime
    root_crl_pem: str = ""  # the root's CRL of revoked issuing CAs when the car holds one


class TesterAuthenticator(Protocol):
    """UDS 0x29 checks (ISO 14229-1:2020 §10.6, PKI certificate exchange, unidirectional)."""

    def verify_certificate(
        self, certificate: bytes, context: AuthenticationContext
    ) -> TesterIdentity:
        """Check chain to the pinned OEM root, validity and scope; raise :class:`TrustRefusal`."""
        ...

    def verify_proof_of_ownership(
        self,
        tester: TesterIdentity,
        challenge: bytes,
        proof: bytes,
        context: AuthenticationContext,
    ) -> None:
        """Check the tester signed the ECU's challenge with its certificate's key."""
        ...


@dataclass(frozen=True, slots=True)
class EcuView:
    address: int
    serial_number: str
    hardware_number: str
    installed: dict[str, int]  # image name -> version
    sealing_public_key: str  # hex


@dataclass(frozen=True, slots=True)
class CarView:
    """What a bundle verifier may know about the car: its identity and anti-rollback state."""

    vin: str
    option_codes: tuple[str, ...]
    ecus: tuple[EcuView, ...]
    activation_counter: int
    issued_nonces: tuple[bytes, ...]
    used_nonces: tuple[bytes, ...]
    oem_root_pem: str
    active_features: tuple[str, ...]
    trust_state: Mapping[str, Any] = field(default_factory=dict)  # the verifier's own, opaque


@dataclass(frozen=True, slots=True)
class FeatureGrant:
    feature_id: str
    ecu_address: int
    valid_until: datetime | None
    valid_from: datetime | None = None


@dataclass(frozen=True, slots=True)
class ImageInstall:
    ecu_address: int
    name: str
    version: int
    sha256: str  # hex
    length: int


SecretOpener = Callable[[bytes], Mapping[str, bytes]]
"""Opens the secrets sealed to one ECU with that ECU's raw X25519 private key, or raises
:class:`TrustRefusal` (a secret sealed to another key)."""


@dataclass(frozen=True, slots=True)
class SealedSecrets:
    """Secrets a bundle carries for one ECU, still sealed; only that ECU's key opens them."""

    ecu_address: int
    names: tuple[str, ...]
    open: SecretOpener = field(repr=False)


@dataclass(frozen=True, slots=True)
class ActivationPlan:
    """A verified bundle reduced to what the car must do; the car applies it all-or-nothing."""

    bundle_id: str
    counter: int
    nonce: bytes | None
    features: tuple[FeatureGrant, ...]
    images: tuple[ImageInstall, ...]
    revoked_features: tuple[str, ...] = ()
    secrets: tuple[SealedSecrets, ...] = ()
    trust_state: Mapping[str, Any] | None = None  # verifier state to persist with the apply


class BundleVerifier(Protocol):
    """Pure check of an activation bundle against the car (``forecourt.trust.verify_bundle``)."""

    def verify(self, bundle: bytes, car: CarView, now: datetime) -> ActivationPlan:
        """Return the plan or raise :class:`TrustRefusal` with the NRC to send."""
        ...


class EcuCertificateIssuer(Protocol):
    """Factory provisioning: the OEM CA certifies an ECU's keys (``forecourt.trust``)."""

    def issue_ecu_certificate(
        self, vin: str, ecu_serial: str, signing_public_key: bytes, sealing_public_key: bytes
    ) -> str:
        """Return the ECU identity certificate (binding VIN, serial and both raw keys) as PEM."""
        ...


class RefuseAllVerifier:
    """Used when no trust layer is configured: the car stays locked rather than trust anything."""

    def verify(self, bundle: bytes, car: CarView, now: datetime) -> ActivationPlan:
        raise TrustRefusal(Nrc.CONDITIONS_NOT_CORRECT, "no bundle verifier configured")


class RefuseAllAuthenticator:
    """Used when no OEM PKI is configured: 0x29 refuses every certificate."""

    def verify_certificate(
        self, certificate: bytes, context: AuthenticationContext
    ) -> TesterIdentity:
        raise TrustRefusal(Nrc.CERTIFICATE_INVALID_CHAIN_OF_TRUST, "no OEM root pinned")

    def verify_proof_of_ownership(
        self,
        tester: TesterIdentity,
        challenge: bytes,
        proof: bytes,
        context: AuthenticationContext,
    ) -> None:
        raise TrustRefusal(Nrc.OWNERSHIP_VERIFICATION_FAILED, "no OEM root pinned")
