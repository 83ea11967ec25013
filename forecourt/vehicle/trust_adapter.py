"""Adapters from ``forecourt.trust`` to the car's seams (see :mod:`forecourt.vehicle.seams`).

:class:`UptaneBundleVerifier` runs the trust layer's pure ``verify_bundle`` on the gateway: it
rebuilds the trust layer's ``CarTrustState`` from the car's committed state (pinned director and
image roots, per-ECU installed release counters, offline counter, the last accepted
timestamp/snapshot/targets version per repository: kept opaque in ``CarState.trust_state``),
maps a refusal's ``BundleError.nrc`` to the NRC the car answers, and
returns the plan together with ``next_state`` so the car commits the verifier's state (spent
nonce, rotated roots, raised counters) in the same atomic write as the features and images.

Sealed secrets travel in the plan still sealed, with an opener bound to the verified activation
(``open_secrets``): the car hands each ECU's own X25519 key to it, so only the car ever holds the
key and only the trust layer does the cryptography.

:class:`PkiTesterAuthenticator` answers UDS 0x29 with ``verify_dealer_certificate`` (chain to the
OEM root pinned at provisioning, at the car's time), then the newest CRL the car holds
(``forecourt.vehicle.revocation``: delivered over FD07, applied even past its nextUpdate), the
newest root CRL it holds for the dealer's issuing CA the same way, and
``verify_possession`` bound to VIN and ECU serial; the trust layer's error NRCs (0x50-0x58) go to
the wire unchanged. :class:`OemPkiIssuer` certifies ECU keys from the OEM issuing CA at the
factory.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding

from forecourt.logging import get_logger
from forecourt.trust.certificates import load_certificate
from forecourt.trust.errors import BundleError, CertificateError
from forecourt.trust.model import NonceFreshness
from forecourt.trust.oem_pki import OemPki
from forecourt.trust.uds_auth import EcuContext, verify_dealer_certificate, verify_possession
from forecourt.trust.verifier import (
    CarTrustState,
    EcuTrustState,
    MetadataVersions,
    VerifiedActivation,
    open_secrets,
    verify_bundle,
)
from forecourt.vehicle.revocation import check_not_revoked
from forecourt.vehicle.seams import (
    ActivationPlan,
    AuthenticationContext,
    BundleVerifier,
    CarView,
    EcuCertificateIssuer,
    FeatureGrant,
    ImageInstall,
    RefuseAllVerifier,
    SealedSecrets,
    SecretOpener,
    TesterAuthenticator,
    TesterIdentity,
    TrustRefusal,
)
from forecourt.vehicle.uds.nrc import Nrc

_log = get_logger("vehicle.trust")


def trust_state_to_dict(state: CarTrustState) -> dict[str, Any]:
    """What the car persists for the verifier (everything but VIN, options and nonces)."""
    return {
        "director_root": base64.b64encode(state.director_root).decode(),
        "image_root": base64.b64encode(state.image_root).decode(),
        "last_offline_counter": state.last_offline_counter,
        "last_activation_counter": state.last_activation_counter,
        "metadata_versions": {
            "director": asdict(state.director_versions),
            "image": asdict(state.image_versions),
        },
        "ecus": {
            e.serial: {
                "role": e.role,
                "installed_image": e.installed_image,
                "installed_version": e.installed_version,
                "release_counter": e.release_counter,
            }
            for e in state.ecus
        },
    }


def factory_trust_state(
    director_root: bytes, image_root: bytes, ecus: Mapping[str, str]
) -> dict[str, Any]:
    """The verifier's state of a new car: pinned root metadata, ``{ECU serial: role}``, counters 0.

    ``director_root``/``image_root`` are the repositories' root metadata as the cloud exports
    them (canonical JSON bytes of the signed root).
    """
    return {
        "director_root": base64.b64encode(director_root).decode(),
        "image_root": base64.b64encode(image_root).decode(),
        "last_offline_counter": 0,
        "last_activation_counter": 0,
        "ecus": {
            serial: {
                "role": role,
                "installed_image": "",
                "installed_version": "",
                "release_counter": 0,
            }
            for serial, role in ecus.items()
        },
    }


def trust_state_of(car: CarView) -> CarTrustState:
    stored: Mapping[str, Any] = car.trust_state
    if "director_root" not in stored:
        raise TrustRefusal(Nrc.CONDITIONS_NOT_CORRECT, "no pinned roots: car not provisioned")
    ecus = stored.get("ecus", {})
    return CarTrustState(
        vin=car.vin,
        director_root=base64.b64decode(stored["director_root"]),
        image_root=base64.b64decode(stored["image_root"]),
        ecus=tuple(
            EcuTrustState(
                serial=e.serial_number,
                hardware_id=e.hardware_number,
                role=ecus.get(e.serial_number, {}).get("role", ""),
                installed_image=ecus.get(e.serial_number, {}).get("installed_image", ""),
                installed_version=ecus.get(e.serial_number, {}).get("installed_version", ""),
                release_counter=ecus.get(e.serial_number, {}).get("release_counter", 0),
            )
            for e in car.ecus
        ),
        factory_options=frozenset(car.option_codes),
        issued_nonces=frozenset(n.hex() for n in car.issued_nonces if n not in car.used_nonces),
        last_offline_counter=stored.get("last_offline_counter", 0),
        last_activation_counter=stored.get("last_activation_counter", 0),
        director_versions=_versions(stored, "director"),
        image_versions=_versions(stored, "image"),
    )


def _versions(stored: Mapping[str, Any], repo: str) -> MetadataVersions:
    """The rollback floors of ``repo``; a car provisioned before they existed starts at 0."""
    floors = stored.get("metadata_versions", {}).get(repo, {})
    return MetadataVersions(**{role: int(floors.get(role, 0)) for role in _ROLES})


_ROLES = tuple(f.name for f in fields(MetadataVersions))


class UptaneBundleVerifier:
    """:class:`BundleVerifier` backed by ``forecourt.trust.verifier.verify_bundle``."""

    def verify(self, bundle: bytes, car: CarView, now: datetime) -> ActivationPlan:
        state = trust_state_of(car)
        try:
            verified = verify_bundle(bundle, state, now)
        except BundleError as error:
            raise TrustRefusal(Nrc(error.nrc), f"{error.code}: {error}") from error
        address = {e.serial_number: e.address for e in car.ecus}
        freshness = verified.freshness
        return ActivationPlan(
            bundle_id=hashlib.sha256(bundle).hexdigest()[:16],
            counter=verified.activation_counter,
            nonce=bytes.fromhex(freshness.nonce) if isinstance(freshness, NonceFreshness) else None,
            features=tuple(
                FeatureGrant(
                    g.feature,
                    address[ecu.serial],
                    g.not_after.astimezone(UTC),
                    g.not_before.astimezone(UTC),
                )
                for ecu in verified.ecus
                for g in ecu.features
            ),
            secrets=tuple(
                SealedSecrets(
                    address[ecu.serial],
                    tuple(sorted(ecu.sealed_secrets)),
                    _opener(verified, ecu.serial),
                )
                for ecu in verified.ecus
                if ecu.sealed_secrets
            ),
            images=tuple(
                ImageInstall(
                    ecu_address=address[ecu.serial],
                    name=image.image,
                    version=image.release_counter,
                    sha256=image.hashes["sha256"],
                    length=image.length,
                )
                for ecu in verified.ecus
                for image in ecu.images
            ),
            trust_state=trust_state_to_dict(verified.next_state(state)),
        )


def _opener(verified: VerifiedActivation, serial: str) -> SecretOpener:
    def open_with(sealing_private_key: bytes) -> Mapping[str, bytes]:
        try:
            return open_secrets(verified, serial, sealing_private_key)
        except BundleError as error:
            raise TrustRefusal(Nrc(error.nrc), f"{error.code}: {error}") from error

    return open_with


def _pem_certificates(pem: str) -> list[x509.Certificate]:
    return x509.load_pem_x509_certificates(pem.encode()) if pem.strip() else []


class PkiTesterAuthenticator:
    """:class:`TesterAuthenticator` on the OEM PKI (``forecourt.trust.uds_auth``)."""

    def verify_certificate(
        self, certificate: bytes, context: AuthenticationContext
    ) -> TesterIdentity:
        if not context.oem_root_pem:
            raise TrustRefusal(Nrc.CERTIFICATE_INVALID_CHAIN_OF_TRUST, "no OEM root pinned")
        try:
            root = load_certificate(context.oem_root_pem.encode())
            issuers = _pem_certificates(context.oem_chain_pem)
            # Revocation against the newest CRL the car holds, whatever its nextUpdate: the
            # trust layer would refuse a stale CRL outright, locking every dealer out of a car
            # that waited on a lot (forecourt.vehicle.revocation).
            dealer = verify_dealer_certificate(certificate, issuers, root, context.now, None)
            leaf = load_certificate(certificate)
            check_not_revoked(leaf, context.crl_pem, issuers, context.now)
            for issuer in issuers:  # the dealer's issuing CA, against the root's CRL
                if issuer.subject == leaf.issuer:
                    check_not_revoked(issuer, context.root_crl_pem, [root], context.now)
        except CertificateError as error:
            raise TrustRefusal(Nrc(error.nrc), f"{error.code}: {error}") from error
        except ValueError as error:  # a pinned anchor unreadable: refuse, never crash
            raise TrustRefusal(
                Nrc.CERTIFICATE_INVALID_CHAIN_OF_TRUST, f"pinned anchors unreadable: {error}"
            ) from error
        _log.info(
            "dealer_certificate_accepted",
            dealer=dealer.dealer_id,
            edge=dealer.edge_id,
            serial=f"{dealer.serial:x}",
            ecu=context.ecu_serial,
        )
        return TesterIdentity(f"{dealer.dealer_id}/{dealer.edge_id}", "dealer", certificate)

    def verify_proof_of_ownership(
        self,
        tester: TesterIdentity,
        challenge: bytes,
        proof: bytes,
        context: AuthenticationContext,
    ) -> None:
        try:
            verify_possession(
                tester.certificate, challenge, proof, EcuContext(context.vin, context.ecu_serial)
            )
        except CertificateError as error:
            raise TrustRefusal(Nrc(error.nrc), f"{error.code}: {error}") from error


class OemPkiIssuer:
    """:class:`EcuCertificateIssuer` on the OEM issuing CA (``OemPki.issue_ecu``)."""

    def __init__(self, pki: OemPki, now: datetime | None = None) -> None:
        self.pki = pki
        self.now = now

    def issue_ecu_certificate(
        self, vin: str, ecu_serial: str, signing_public_key: bytes, sealing_public_key: bytes
    ) -> str:
        cert = self.pki.issue_ecu(
            vin,
            ecu_serial,
            Ed25519PublicKey.from_public_bytes(signing_public_key),
            sealing_public_key,
            now=self.now,
        )
        return cert.public_bytes(Encoding.PEM).decode()

    @property
    def root_pem(self) -> str:
        return self.pki.root.public_bytes(Encoding.PEM).decode()

    @property
    def chain_pem(self) -> str:
        return self.pki.ca.public_bytes(Encoding.PEM).decode()


@dataclass
class TrustServices:
    verifier: BundleVerifier = field(default_factory=RefuseAllVerifier)
    authenticator: TesterAuthenticator = field(default_factory=PkiTesterAuthenticator)
    issuer: EcuCertificateIssuer | None = None
    oem_root_pem: str = ""


def trust_services(data_dir: Path | None = None) -> TrustServices:
    """The trust layer's implementations for a car; each reads the anchors the car pinned.

    Both refuse until the car is provisioned with them: bundles without pinned repository roots
    (``trust_state``), 0x29 without a pinned OEM root.
    """
    return TrustServices(verifier=UptaneBundleVerifier(), authenticator=PkiTesterAuthenticator())
