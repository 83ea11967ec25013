"""Real dealer credentials for UDS 0x29 against the simulated car, from an in-memory OEM PKI.

The car checks them with ``forecourt.trust`` (PkiTesterAuthenticator); the tester side signs the
ECU's challenge with ``prove_possession`` bound to VIN and ECU serial, as the edge does.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TypedDict

from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding

from forecourt.trust.oem_pki import OemPki
from forecourt.trust.uds_auth import EcuContext, prove_possession


@dataclass(frozen=True)
class Dealer:
    certificate: bytes  # DER, what 0x29 verifyCertificateUnidirectional carries
    key: ec.EllipticCurvePrivateKey

    def proof(self, challenge: bytes, vin: str, ecu_serial: str) -> bytes:
        return prove_possession(self.key, challenge, EcuContext(vin, ecu_serial))


def dealer_of(pki: OemPki, now: datetime | None = None, dealer_id: str = "D0042") -> Dealer:
    issued = pki.issue_dealer(dealer_id, "edge-01", now=now)
    assert issued.key is not None
    return Dealer(issued.cert.public_bytes(Encoding.DER), issued.key)


class Anchors(TypedDict):
    """The ``provision`` keywords that pin the OEM PKI."""

    oem_root_pem: str
    oem_chain_pem: str


def anchors(pki: OemPki) -> Anchors:
    """What the factory pins for 0x29: the OEM root and the issuing CA under it."""
    return {
        "oem_root_pem": pki.root.public_bytes(Encoding.PEM).decode(),
        "oem_chain_pem": pki.ca.public_bytes(Encoding.PEM).decode(),
    }


OEM = OemPki.ephemeral()
DEALER = dealer_of(OEM)
