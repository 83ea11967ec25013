"""UDS 0x29: the dealer's certificate and proof of ownership, bound to one ECU of one car."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding

from forecourt.trust import errors
from forecourt.trust._sslib import CryptoSigner
from forecourt.trust.pki import OemPki
from forecourt.trust.uds_auth import (
    EcuContext,
    make_challenge,
    prove_possession,
    verify_dealer_certificate,
    verify_possession,
)

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
TBOX = EcuContext("WF0XXXGCDX1234567", "TBX0001")


@pytest.fixture(scope="module")
def pki() -> OemPki:
    return OemPki.ephemeral(NOW)


def _dealer(pki: OemPki) -> tuple[bytes, ec.EllipticCurvePrivateKey]:
    issued = pki.issue_dealer("D001", "EDGE-1", now=NOW)
    assert issued.key is not None
    return issued.cert.public_bytes(Encoding.DER), issued.key


def test_ecu_accepts_dealer_certificate_and_proof_over_its_challenge(pki: OemPki) -> None:
    cert, key = _dealer(pki)
    identity = verify_dealer_certificate(cert, [pki.ca], pki.root, NOW, pki.crl)
    assert identity.dealer_id == "D001"
    challenge = make_challenge()
    verify_possession(cert, challenge, prove_possession(key, challenge, TBOX), TBOX)


def test_proof_from_a_securesystemslib_signer_verifies(pki: OemPki) -> None:
    cert, key = _dealer(pki)
    challenge = make_challenge()
    proof = prove_possession(CryptoSigner(key), challenge, TBOX)
    verify_possession(cert, challenge, proof, TBOX)


@pytest.mark.parametrize(
    "other",
    [EcuContext(TBOX.vin, "IVI0001"), EcuContext("WF0XXXGCDX7654321", TBOX.ecu_serial)],
    ids=["another-ecu", "another-car"],
)
def test_proof_replayed_to_another_ecu_or_car_is_refused(pki: OemPki, other: EcuContext) -> None:
    cert, key = _dealer(pki)
    challenge = make_challenge()
    proof = prove_possession(key, challenge, TBOX)
    with pytest.raises(errors.ProofOfPossessionFailed) as caught:
        verify_possession(cert, challenge, proof, other)
    assert caught.value.nrc == 0x58


def test_proof_over_an_old_challenge_is_refused(pki: OemPki) -> None:
    cert, key = _dealer(pki)
    proof = prove_possession(key, make_challenge(), TBOX)
    with pytest.raises(errors.ProofOfPossessionFailed):
        verify_possession(cert, make_challenge(), proof, TBOX)


def test_proof_by_a_key_other_than_the_certificates_is_refused(pki: OemPki) -> None:
    cert, _key = _dealer(pki)
    challenge = make_challenge()
    thief = ec.generate_private_key(ec.SECP256R1())
    with pytest.raises(errors.ProofOfPossessionFailed):
        verify_possession(cert, challenge, prove_possession(thief, challenge, TBOX), TBOX)


def test_revoked_dealer_is_refused_before_any_challenge() -> None:
    pki = OemPki.ephemeral(NOW)
    cert, _key = _dealer(pki)
    pki.revoke(x509.load_der_x509_certificate(cert).serial_number, now=NOW)
    with pytest.raises(errors.CertificateRevoked):
        verify_dealer_certificate(cert, [pki.ca], pki.root, NOW, pki.publish_crl(NOW))
