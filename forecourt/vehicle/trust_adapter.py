"""Adapters from ``forecourt.trust`` to the car's seams (see :mod:`forecourt.vehicle.seams`).

:class:`UptaneBundleVerifier` runs the trust layer's pure ``verify_bundle`` on the gateway: it
rebuilds the trust layer's ``CarTrustState`` from the car's committed state (pinned director and
image roots, per-ECU installed release counters, offline counter: kept opaque in
``CarState.trust_state``), maps a refusal's ``BundleError.nrc`` to the NRC the car answers, and
returns the plan together with ``next_state`` so the car commits the verifier's state (spent
nonce, rotated roots, raised counters) in the same atomic write as the features and images.

What the trust layer does not offer yet stays refusing: 0x29 refuses every certificate and cars
are provisioned without ECU certificates (no OEM X.509 PKI in ``forecourt.trust`` yet).
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from forecourt.trust.errors import BundleError
from forecourt.trust.model import NonceFreshness
from forecourt.trust.verifier import CarTrustState, EcuTrustState, verify_bundle
from forecourt.vehicle.seams import (
    ActivationPlan,
    BundleVerifier,
    CarView,
    EcuCertificateIssuer,
    FeatureGrant,
    ImageInstall,
    RefuseAllAuthenticator,
    RefuseAllVerifier,
    TesterAuthenticator,
    TrustRefusal,
)
from forecourt.vehicle.uds.nrc import Nrc


def trust_state_to_dict(state: CarTrustState) -> dict[str, Any]:
    """What the car persists for the verifier (everything but VIN, options and nonces)."""
    return {
        "director_root": base64.b64encode(state.director_root).decode(),
        "image_root": base64.b64encode(state.image_root).decode(),
        "last_offline_counter": state.last_offline_counter,
        "last_activation_counter": state.last_activation_counter,
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
    )


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
                FeatureGrant(g.feature, address[ecu.serial], g.not_after.astimezone(UTC))
                for ecu in verified.ecus
                for g in ecu.features
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


@dataclass
class TrustServices:
    verifier: BundleVerifier = field(default_factory=RefuseAllVerifier)
    authenticator: TesterAuthenticator = field(default_factory=RefuseAllAuthenticator)
    issuer: EcuCertificateIssuer | None = None
    oem_root_pem: str = ""


def trust_services(data_dir: Path) -> TrustServices:
    """The trust layer's implementations for cars under ``data_dir``.

    The bundle verifier is real; it refuses until a car's roots are pinned (``trust_state``).
    0x29 and ECU certificates wait for the OEM PKI in ``forecourt.trust``.
    """
    return TrustServices(verifier=UptaneBundleVerifier())
