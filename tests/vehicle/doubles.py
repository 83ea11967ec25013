"""In-memory doubles for the trust seams, so the car's state machine is tested on its own.

They honour the seams' contracts (refusals carry an NRC, a plan is returned only for a bundle bound
to this car) but use an HMAC in place of the OEM PKI, so the car's state machine (sessions,
transfer, all-or-nothing apply, power loss) is tested without building repositories for every
case. The real ``forecourt.trust`` implementations are exercised in test_trust_wiring.py,
test_authentication.py and test_factory.py; the edge link's tests use these doubles too.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import datetime
from typing import Any

from forecourt.vehicle.seams import (
    ActivationPlan,
    AuthenticationContext,
    CarView,
    FeatureGrant,
    ImageInstall,
    TesterIdentity,
    TrustRefusal,
)
from forecourt.vehicle.uds.nrc import Nrc

BUNDLE_KEY = b"test bundle key"
DEALER_KEY = b"test dealer key"


def make_bundle(
    vin: str,
    counter: int,
    *,
    features: list[tuple[str, int, str | None]] = (),  # type: ignore[assignment]
    images: list[dict[str, Any]] = (),  # type: ignore[assignment]
    nonce: bytes | None = None,
    key: bytes = BUNDLE_KEY,
) -> bytes:
    body = {
        "vin": vin,
        "counter": counter,
        "nonce": nonce.hex() if nonce else None,
        "features": [{"id": f, "ecu": e, "valid_until": v} for f, e, v in features],
        "images": list(images),
    }
    raw = json.dumps(body, sort_keys=True).encode()
    return json.dumps({"body": body, "mac": hmac.new(key, raw, "sha256").hexdigest()}).encode()


class HmacBundleVerifier:
    def verify(self, bundle: bytes, car: CarView, now: datetime) -> ActivationPlan:
        try:
            doc = json.loads(bundle)
            body = doc["body"]
            raw = json.dumps(body, sort_keys=True).encode()
            mac = doc["mac"]
        except (ValueError, KeyError, TypeError):
            raise TrustRefusal(Nrc.INCORRECT_MESSAGE_LENGTH_OR_INVALID_FORMAT, "format") from None
        if not hmac.compare_digest(hmac.new(BUNDLE_KEY, raw, "sha256").hexdigest(), mac):
            raise TrustRefusal(Nrc.SECURITY_ACCESS_DENIED, "bad signature")
        if body["vin"] != car.vin:
            raise TrustRefusal(Nrc.REQUEST_OUT_OF_RANGE, "other VIN")
        return ActivationPlan(
            bundle_id=hashlib.sha256(bundle).hexdigest()[:16],
            counter=body["counter"],
            nonce=bytes.fromhex(body["nonce"]) if body["nonce"] else None,
            features=tuple(
                FeatureGrant(
                    f["id"],
                    f["ecu"],
                    datetime.fromisoformat(f["valid_until"]) if f["valid_until"] else None,
                )
                for f in body["features"]
            ),
            images=tuple(ImageInstall(**i) for i in body["images"]),
        )


def dealer_certificate(name: str = "dealer-0042") -> bytes:
    return f"dealer:{name}".encode()


def dealer_proof(challenge: bytes, key: bytes = DEALER_KEY) -> bytes:
    return hmac.new(key, challenge, "sha256").digest()


class HmacAuthenticator:
    def verify_certificate(
        self, certificate: bytes, context: AuthenticationContext
    ) -> TesterIdentity:
        if not certificate.startswith(b"dealer:"):
            raise TrustRefusal(Nrc.CERTIFICATE_INVALID_CHAIN_OF_TRUST, "not a dealer cert")
        return TesterIdentity(certificate.decode()[7:], "technician", certificate)

    def verify_proof_of_ownership(
        self,
        tester: TesterIdentity,
        challenge: bytes,
        proof: bytes,
        context: AuthenticationContext,
    ) -> None:
        if not hmac.compare_digest(dealer_proof(challenge), proof):
            raise TrustRefusal(Nrc.OWNERSHIP_VERIFICATION_FAILED, "bad proof")
