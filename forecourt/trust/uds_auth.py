"""UDS Authentication (0x29) with PKI certificate exchange — one implementation for car and edge.

ISO 14229-1:2020 §10.6 "authentication with PKI certificate exchange" (APCE), unidirectional:

1. the tester (the edge) sends its dealer certificate (verifyCertificateUnidirectional, 0x29 01);
   the ECU checks it against the OEM root pinned at the factory — :func:`verify_dealer_certificate`
   — and answers with a fresh challenge — :func:`make_challenge`;
2. the tester signs the challenge with the certificate's key — :func:`prove_possession` — and sends
   the proof (proofOfOwnership, 0x29 03); the ECU checks it — :func:`verify_possession`.

Domain separation: the signature covers ``POP_CONTEXT || len‖challenge || len‖VIN || len‖ECU
serial``, so a proof obtained from one ECU (or for any other signing purpose of the dealer key,
such as TLS) cannot be replayed to another ECU, another car, or another protocol.
Refusals carry the 0x29 NRCs (0x50–0x58) of :mod:`forecourt.trust.errors`.
"""

from __future__ import annotations

import secrets
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from forecourt.logging import get_logger
from forecourt.trust._sslib import Signer
from forecourt.trust.certificates import (
    CertificatePurpose,
    DealerIdentity,
    dealer_identity,
    load_certificate,
)
from forecourt.trust.chain import verify_chain
from forecourt.trust.errors import ProofOfPossessionFailed

POP_CONTEXT = b"forecourt/uds-0x29/proof-of-ownership/v1\x00"
CHALLENGE_BYTES = 32
MAX_SIGNATURE_BYTES = 80  # DER ECDSA P-256 is at most 72 bytes

_log = get_logger("trust.uds_auth")

__all__ = [
    "CHALLENGE_BYTES",
    "POP_CONTEXT",
    "EcuContext",
    "make_challenge",
    "prove_possession",
    "verify_dealer_certificate",
    "verify_possession",
]


@dataclass(frozen=True)
class EcuContext:
    """The ECU that issued the challenge: what the proof is bound to."""

    vin: str
    ecu_serial: str


def _field(value: bytes) -> bytes:
    return struct.pack(">H", len(value)) + value


def _message(challenge: bytes, context: EcuContext) -> bytes:
    if len(challenge) != CHALLENGE_BYTES:
        raise ProofOfPossessionFailed(f"challenge must be {CHALLENGE_BYTES} bytes")
    return (
        POP_CONTEXT
        + _field(challenge)
        + _field(context.vin.encode("ascii"))
        + _field(context.ecu_serial.encode("ascii"))
    )


def make_challenge() -> bytes:
    """A fresh random challenge from the OS CSPRNG (the ECU keeps it for one attempt)."""
    return secrets.token_bytes(CHALLENGE_BYTES)


def verify_dealer_certificate(
    cert_der: bytes,
    chain: Sequence[x509.Certificate | bytes],
    pinned_root: x509.Certificate,
    at: datetime,
    crl: x509.CertificateRevocationList | None,
) -> DealerIdentity:
    """The ECU's step 1: a dealer certificate valid for UDS authentication, or a typed refusal."""
    verify_chain(cert_der, chain, pinned_root, CertificatePurpose.DEALER, at, crl)
    return dealer_identity(cert_der)


def prove_possession(
    signer: ec.EllipticCurvePrivateKey | Signer, challenge: bytes, ecu_context: EcuContext
) -> bytes:
    """The tester's step 2: a DER ECDSA P-256/SHA-256 signature over the bound challenge.

    ``signer`` is the dealer key itself or any securesystemslib signer (a PKCS#11 token).
    """
    message = _message(challenge, ecu_context)
    if isinstance(signer, ec.EllipticCurvePrivateKey):
        return signer.sign(message, ec.ECDSA(hashes.SHA256()))
    return bytes.fromhex(signer.sign(message).signature)


def verify_possession(
    cert: x509.Certificate | bytes,
    challenge: bytes,
    signature: bytes,
    ecu_context: EcuContext,
) -> None:
    """The ECU's step 2: the proof verifies under the (already verified) dealer certificate."""
    certificate = load_certificate(cert)
    key = certificate.public_key()
    try:
        if not isinstance(key, ec.EllipticCurvePublicKey) or len(signature) > MAX_SIGNATURE_BYTES:
            raise InvalidSignature
        key.verify(signature, _message(challenge, ecu_context), ec.ECDSA(hashes.SHA256()))
    except InvalidSignature as exc:
        error = ProofOfPossessionFailed(
            "proof of ownership does not verify for this challenge and ECU",
            ecu_serial=ecu_context.ecu_serial,
        )
        _log.warning("proof_of_possession_refused", code=error.code, ecu=ecu_context.ecu_serial)
        raise error from exc
