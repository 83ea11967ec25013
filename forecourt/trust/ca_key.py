"""The issuing CA's signing key, wherever it lives: an encrypted PEM file or a PKCS#11 token.

cryptography's ``CertificateBuilder`` and ``CertificateRevocationListBuilder`` sign only with
its own private-key objects, and a key inside an HSM is not one. So a certificate or CRL is
drafted by the builder with a throwaway key of the same type (the draft's TBS then names the
right signature algorithm, ecdsa-with-SHA256), its TBS bytes are signed inside the token by the
same :func:`~forecourt.trust.keys.load_signer` path the repository keys use, and the DER is put
back together (RFC 5280 4.1 and 5.1)::

    Certificate / CertificateList ::= SEQUENCE {
        tbsCertificate / tbsCertList, signatureAlgorithm, signatureValue BIT STRING }

Invariants kept here:

* the key must be the CA certificate's key: :meth:`IssuingKey.require_match` compares the public
  keys and has the token sign a fresh challenge (a token whose public object is right but whose
  private object is another key is caught before anything is issued);
* every certificate and CRL is verified against the CA's public key before it is returned, so a
  wrong key fails loudly (:class:`CaKeyMismatch`) and never yields a certificate nobody verifies.

Only ECDSA P-256 is accepted: the OEM chain is P-256 throughout (``certificates.CaPrivateKey``).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from forecourt.logging import get_logger
from forecourt.trust._sslib import Signer
from forecourt.trust.errors import KeyLoadError, PkiError
from forecourt.trust.keys import load_signer, public_key_of

__all__ = ["CaKeyMismatch", "IssuingKey"]

_log = get_logger("trust.ca_key")

_SEQUENCE = 0x30
_BIT_STRING = 0x03
_SIGNING_SCHEME = "ecdsa-sha2-nistp256"


class CaKeyMismatch(PkiError):
    """The issuing CA key does not match the CA certificate (or signed something that fails)."""

    code = "ca_key_mismatch"


def _spki(key: ec.EllipticCurvePublicKey) -> bytes:
    return key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _element(der: bytes, offset: int) -> tuple[int, int]:
    """(start of content, end) of the DER element at ``offset`` (definite lengths only)."""
    if offset + 2 > len(der):
        raise PkiError("truncated DER in a drafted certificate")
    first = der[offset + 1]
    if first < 0x80:
        start = offset + 2
        end = start + first
    else:
        count = first & 0x7F
        if not 1 <= count <= 4:
            raise PkiError("unsupported DER length in a drafted certificate")
        start = offset + 2 + count
        end = start + int.from_bytes(der[offset + 2 : start], "big")
    if end > len(der):
        raise PkiError("truncated DER in a drafted certificate")
    return start, end


def _length(size: int) -> bytes:
    if size < 0x80:
        return bytes([size])
    raw = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(raw)]) + raw


def _with_signature(draft: bytes, signature: bytes) -> bytes:
    """``draft`` (a signed SEQUENCE) with its signatureValue replaced by ``signature``."""
    if not draft or draft[0] != _SEQUENCE:
        raise PkiError("a drafted certificate is not a DER SEQUENCE")
    body_start, _ = _element(draft, 0)
    _, tbs_end = _element(draft, body_start)
    _, algorithm_end = _element(draft, tbs_end)
    bits = bytes([_BIT_STRING]) + _length(len(signature) + 1) + b"\x00" + signature
    body = draft[body_start:algorithm_end] + bits
    return bytes([_SEQUENCE]) + _length(len(body)) + body


@dataclass(frozen=True)
class IssuingKey:
    """The issuing CA key as the PKI uses it: drafts with :attr:`drafting_key`, then finishes.

    For a file key the drafting key *is* the CA key and finishing only verifies; for a key named
    by URI the drafting key is a throwaway P-256 key and finishing signs inside the token.
    """

    public_key: ec.EllipticCurvePublicKey
    drafting_key: ec.EllipticCurvePrivateKey
    uri: str | None = None
    """The key URI when the key is held elsewhere (``pkcs11:...``); ``None`` for a file key."""
    _signer: Signer | None = None

    @classmethod
    def from_private_key(cls, key: ec.EllipticCurvePrivateKey) -> IssuingKey:
        """A CA key held in this process (decrypted from ``ca-key.pem``)."""
        if not isinstance(key.curve, ec.SECP256R1):
            raise KeyLoadError("the issuing CA key must be ECDSA P-256")
        return cls(key.public_key(), key)

    @classmethod
    def from_uri(cls, uri: str) -> IssuingKey:
        """A CA key named by a key URI; raises :class:`KeyLoadError` if it does not resolve."""
        signer = load_signer(uri)
        public = public_key_of(signer)
        if public.keytype != "ecdsa" or public.scheme != _SIGNING_SCHEME:
            raise KeyLoadError(
                f"the issuing CA key must be ECDSA P-256, {uri.partition('?')[0]} holds a "
                f"{public.keytype} key"
            )
        loaded = serialization.load_pem_public_key(str(public.keyval["public"]).encode())
        if not isinstance(loaded, ec.EllipticCurvePublicKey) or not isinstance(
            loaded.curve, ec.SECP256R1
        ):
            raise KeyLoadError("the issuing CA key must be ECDSA P-256")
        return cls(loaded, ec.generate_private_key(ec.SECP256R1()), uri, signer)

    @property
    def where(self) -> str:
        """Where the key lives, for logs and errors (the URI without its query, no PIN source)."""
        return "ca-key.pem" if self.uri is None else self.uri.partition("?")[0]

    def require_match(self, ca: x509.Certificate) -> None:
        """Refuse a key that is not ``ca``'s; a token must also prove it holds the private key."""
        ca_public = ca.public_key()
        if not isinstance(ca_public, ec.EllipticCurvePublicKey) or _spki(ca_public) != _spki(
            self.public_key
        ):
            raise CaKeyMismatch(
                f"the issuing CA key at {self.where} is not the key of ca.pem", key=self.where
            )
        if self._signer is not None:
            challenge = secrets.token_bytes(32)
            self._verify(self._sign(challenge), challenge, "a challenge")

    def _sign(self, payload: bytes) -> bytes:
        if self._signer is None:
            return self.drafting_key.sign(payload, ec.ECDSA(hashes.SHA256()))
        return bytes.fromhex(self._signer.sign(payload).signature)

    def _verify(self, signature: bytes, payload: bytes, what: str) -> None:
        try:
            self.public_key.verify(signature, payload, ec.ECDSA(hashes.SHA256()))
        except InvalidSignature as exc:
            _log.error("ca_signature_invalid", key=self.where, signed=what)
            raise CaKeyMismatch(
                f"the issuing CA key at {self.where} signed {what} that does not verify against "
                "ca.pem: the token holds another private key",
                key=self.where,
            ) from exc

    def certificate(self, draft: x509.Certificate) -> x509.Certificate:
        """``draft`` signed by the CA key and verified against the CA's public key."""
        if self._signer is None:
            cert = draft
        else:
            signature = self._sign(draft.tbs_certificate_bytes)
            der = _with_signature(draft.public_bytes(serialization.Encoding.DER), signature)
            cert = x509.load_der_x509_certificate(der)
        self._verify(cert.signature, cert.tbs_certificate_bytes, "a certificate")
        return cert

    def crl(self, draft: x509.CertificateRevocationList) -> x509.CertificateRevocationList:
        """``draft`` signed by the CA key and verified against the CA's public key."""
        if self._signer is None:
            crl = draft
        else:
            signature = self._sign(draft.tbs_certlist_bytes)
            der = _with_signature(draft.public_bytes(serialization.Encoding.DER), signature)
            crl = x509.load_der_x509_crl(der)
        if not crl.is_signature_valid(self.public_key):
            _log.error("ca_signature_invalid", key=self.where, signed="a CRL")
            raise CaKeyMismatch(
                f"the issuing CA key at {self.where} signed a CRL that does not verify against "
                "ca.pem",
                key=self.where,
            )
        return crl
