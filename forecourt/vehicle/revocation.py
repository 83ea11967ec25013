"""The car's certificate revocation list: which CRL it takes, and how 0x29 checks against it.

A car has no network, so it learns that a dealer certificate was revoked only from a tester: any
authenticated edge writes the OEM issuing CA's current CRL to the gateway (DID FD07) after 0x29.
The CRL itself is the proof, not the tester who carries it, so the car accepts one only if

* it is a complete X.509 CRL (no delta CRL) of at most :data:`MAX_CRL_BYTES`
  (``CrlMalformed``, NRC 0x13);
* it is issued and signed by an issuing CA the car pinned at the factory (``CrlForeign``,
  NRC 0x31: another PKI's or a forged CRL is out of what this car accepts);
* it is newer than the one held: a higher cRLNumber (RFC 5280 §5.2.3), or, when either lacks
  one, a later thisUpdate (``CrlNotNewer``, NRC 0x22). The same CRL again is accepted and
  changes nothing (every edge writes it at every session); an older one cannot replace a newer,
  so a stolen dealer key cannot un-revoke itself by replaying a CRL from before its revocation.

**Revoked issuing CAs.** The root's CRL travels the same way (FD07; the car tells the two
apart by issuer) and is taken by the same rules with the pinned root as the only signer. The car
keeps the newest of each, nothing more. At 0x29 the dealer certificate's issuing CA is checked
against the root CRL as the dealer certificate is against the issuing CA's CRL.

**Staleness.** A CRL's nextUpdate is a promise of the issuer, not a condition for the car: the car
cannot fetch a fresher one until a tester brings it, and a car that spent weeks on a lorry must
still be serviceable. So the newest CRL the car holds is applied for revocation whatever its
nextUpdate (a past nextUpdate is logged), and staleness never means "everyone revoked". The
bound on an undetected revocation is the time until any dealer's edge with a newer CRL connects.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.serialization import Encoding

from forecourt.logging import get_logger
from forecourt.trust.errors import CertificateRevoked
from forecourt.vehicle.uds.nrc import Nrc

_log = get_logger("vehicle.revocation")

MAX_CRL_BYTES = 256 * 1024  # ~6000 revoked serials; far above a dealer network's, below DoIP's


class CrlRefused(Exception):
    """A CRL written to the car was not taken; the car's CRL is unchanged."""

    nrc: Nrc = Nrc.CONDITIONS_NOT_CORRECT

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class CrlMalformed(CrlRefused):
    nrc = Nrc.INCORRECT_MESSAGE_LENGTH_OR_INVALID_FORMAT


class CrlForeign(CrlRefused):
    nrc = Nrc.REQUEST_OUT_OF_RANGE


class CrlNotNewer(CrlRefused):
    nrc = Nrc.CONDITIONS_NOT_CORRECT


@dataclass(frozen=True)
class CrlUpdate:
    """The outcome of an accepted write: the CRL to hold and whether it differs from the last."""

    pem: str
    number: int | None
    this_update: datetime
    changed: bool


def _parse(data: bytes) -> x509.CertificateRevocationList:
    if not 0 < len(data) <= MAX_CRL_BYTES:
        raise CrlMalformed(f"CRL of {len(data)} bytes (at most {MAX_CRL_BYTES})")
    try:
        if data.lstrip().startswith(b"-----BEGIN"):
            crl = x509.load_pem_x509_crl(data)
        else:
            crl = x509.load_der_x509_crl(data)
        _ = (crl.issuer, crl.extensions, crl.last_update_utc)  # decoded lazily: decode now
        for revoked in crl:
            _ = revoked.extensions
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise CrlMalformed(f"not an X.509 CRL: {exc}") from exc
    return crl


def crl_issuer(data: bytes) -> x509.Name:
    """The issuer named by the CRL in ``data`` (checked nothing else: :func:`accept_crl` does)."""
    return _parse(data).issuer


def _number(crl: x509.CertificateRevocationList) -> int | None:
    try:
        return crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
    except x509.ExtensionNotFound:
        return None


def _is_delta(crl: x509.CertificateRevocationList) -> bool:
    try:
        crl.extensions.get_extension_for_class(x509.DeltaCRLIndicator)
    except x509.ExtensionNotFound:
        return False
    return True


def _signed_by(crl: x509.CertificateRevocationList, issuer: x509.Certificate) -> bool:
    key = issuer.public_key()
    if not isinstance(key, ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey | rsa.RSAPublicKey):
        return False
    return crl.issuer == issuer.subject and crl.is_signature_valid(key)


def pinned_issuers(chain_pem: str) -> list[x509.Certificate]:
    """The issuing CA certificate(s) pinned at provisioning (``CarState.oem_chain_pem``)."""
    return x509.load_pem_x509_certificates(chain_pem.encode()) if chain_pem.strip() else []


def _newer(new: x509.CertificateRevocationList, held: x509.CertificateRevocationList) -> bool:
    new_number, held_number = _number(new), _number(held)
    if new_number is not None and held_number is not None:
        return new_number > held_number
    return new.last_update_utc > held.last_update_utc


def accept_crl(data: bytes, issuers: Sequence[x509.Certificate], held_pem: str) -> CrlUpdate:
    """Decide whether the car takes CRL ``data`` over the one it holds (``held_pem``, or ``""``).

    Pure: returns what to persist, or raises a :class:`CrlRefused` carrying the NRC.
    """
    crl = _parse(data)
    if _is_delta(crl):
        raise CrlMalformed("delta CRLs are not accepted; send the complete CRL")
    if not any(_signed_by(crl, issuer) for issuer in issuers):
        raise CrlForeign(f"CRL of {crl.issuer.rfc4514_string()} not signed by a pinned issuing CA")
    pem = crl.public_bytes(Encoding.PEM).decode("ascii")
    update = CrlUpdate(pem, _number(crl), crl.last_update_utc, changed=True)
    if not held_pem:
        return update
    held = x509.load_pem_x509_crl(held_pem.encode())
    if held.public_bytes(Encoding.DER) == crl.public_bytes(Encoding.DER):
        return CrlUpdate(pem, update.number, update.this_update, changed=False)
    if held.issuer != crl.issuer:
        raise CrlNotNewer("the car holds the CRL of another issuing CA")
    if not _newer(crl, held):
        raise CrlNotNewer(
            f"CRL number {_number(crl)} of {crl.last_update_utc:%Y-%m-%dT%H:%MZ} is not newer "
            f"than the held {_number(held)} of {held.last_update_utc:%Y-%m-%dT%H:%MZ}"
        )
    return update


def check_not_revoked(
    certificate: x509.Certificate,
    crl_pem: str,
    issuers: Sequence[x509.Certificate],
    now: datetime,
) -> None:
    """Refuse ``certificate`` (``CertificateRevoked``, 0x57) if the held CRL lists it.

    The held CRL was checked when it was accepted; its signature is checked again here (cheap,
    and a CRL provisioned at the factory or a damaged state file gets the same scrutiny). A CRL
    of another issuer than the certificate's says nothing about it. A past nextUpdate is logged
    and the list still applies (see the module docstring).
    """
    if not crl_pem:
        return
    crl = x509.load_pem_x509_crl(crl_pem.encode())
    if crl.issuer != certificate.issuer:
        return
    if not any(_signed_by(crl, issuer) for issuer in issuers):
        _log.warning("crl_ignored", reason="held CRL not signed by a pinned issuing CA")
        return
    next_update = crl.next_update_utc
    if next_update is not None and now > next_update:
        _log.warning(
            "crl_past_next_update",
            number=_number(crl),
            next_update=next_update.isoformat(),
            now=now.isoformat(),
        )
    revoked = crl.get_revoked_certificate_by_serial_number(certificate.serial_number)
    if revoked is not None:
        error = CertificateRevoked(
            f"{certificate.subject.rfc4514_string()} (serial {certificate.serial_number:x}) "
            "revoked at "
            f"{revoked.revocation_date_utc:%Y-%m-%dT%H:%MZ} (CRL number {_number(crl)})",
            serial=certificate.serial_number,
        )
        _log.warning("certificate_refused", code=error.code, nrc=hex(error.nrc), reason=str(error))
        raise error
