"""Signers behind one interface, chosen by key URI.

Callers ask for ``load_signer(uri)`` and receive a securesystemslib :class:`Signer`; whether the
private key lives in an encrypted PEM file or in an HSM is configuration, not code:

* ``file:/path/key.pem?password-env=VAR`` — PKCS#8 PEM encrypted with the password held in
  environment variable ``VAR`` (``password-file=/path`` also accepted);
* ``pkcs11:token=LABEL;object=LABEL?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=env:VAR``
  — a key pair inside a PKCS#11 token (RFC 7512 path attributes; the PIN from ``env:VAR`` or
  ``file:/path``).

Ed25519 and ECDSA P-256 are supported on both backends. securesystemslib's own ``HSMSigner`` is
ECDSA-only, so the PKCS#11 path uses python-pkcs11 directly (SoftHSM2 2.6 signs with CKM_EDDSA).
Signatures are in securesystemslib's encoding (DER for ECDSA), so TUF metadata verifies the same
whichever backend signed it.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qs, unquote, urlsplit

import pkcs11
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from pkcs11.util.ec import encode_named_curve_parameters

from forecourt.trust._sslib import CryptoSigner, Key, Signature, Signer, SSlibKey
from forecourt.trust.errors import KeyLoadError, KeyUriError, WrongKeyPassword

KeyAlgorithm = Literal["ed25519", "ecdsa-p256"]
ED25519_OID = "1.3.101.112"
P256_OID = "1.2.840.10045.3.1.7"

__all__ = [
    "KeyAlgorithm",
    "Pkcs11Signer",
    "generate_file_key",
    "generate_pkcs11_key",
    "load_signer",
    "public_key_of",
]


def generate_file_key(path: Path, algorithm: KeyAlgorithm, password: bytes) -> SSlibKey:
    """Create a key pair and write the private key as an encrypted PKCS#8 PEM (mode 0600)."""
    private: ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey = (
        ed25519.Ed25519PrivateKey.generate()
        if algorithm == "ed25519"
        else ec.generate_private_key(ec.SECP256R1())
    )
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(password),
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)
    return SSlibKey.from_crypto(private.public_key())


def load_file_private_key(
    path: Path, password: bytes
) -> ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey:
    """Read an encrypted PEM; a wrong password is a :class:`WrongKeyPassword`, not a bare error."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise KeyLoadError(f"cannot read key file {path}: {exc.strerror}", path=str(path)) from exc
    try:
        key = serialization.load_pem_private_key(data, password=password)
    except TypeError as exc:
        raise KeyLoadError(f"key file {path} is not encrypted", path=str(path)) from exc
    except ValueError as exc:
        if b"ENCRYPTED" in data:
            raise WrongKeyPassword(f"wrong password for key file {path}", path=str(path)) from exc
        raise KeyLoadError(f"key file {path} is not a PEM private key", path=str(path)) from exc
    if not isinstance(key, ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey):
        raise KeyLoadError(f"key file {path} holds an unsupported key type", path=str(path))
    if isinstance(key, ec.EllipticCurvePrivateKey) and not isinstance(key.curve, ec.SECP256R1):
        raise KeyLoadError(f"key file {path}: only P-256 is supported", path=str(path))
    return key


@dataclass(frozen=True)
class _Pkcs11Ref:
    module_path: str
    token: str
    object: str
    pin: str


def _secret_from_source(source: str, what: str) -> str:
    kind, _, ref = source.partition(":")
    if kind == "env":
        value = os.environ.get(ref)
        if value is None:
            raise KeyUriError(f"{what}: environment variable {ref} is not set")
        return value
    if kind == "file":
        try:
            return Path(ref).read_text().strip()
        except OSError as exc:
            raise KeyUriError(f"{what}: cannot read {ref}") from exc
    raise KeyUriError(f"{what}: source must be env:VAR or file:/path")


def _parse_pkcs11_uri(uri: str) -> _Pkcs11Ref:
    body = uri.removeprefix("pkcs11:")
    path, _, query = body.partition("?")
    attrs: dict[str, str] = {}
    for part in filter(None, path.split(";")):
        name, sep, value = part.partition("=")
        if not sep:
            raise KeyUriError(f"pkcs11 URI attribute without value: {name}")
        attrs[name] = unquote(value)
    params = {k: v[0] for k, v in parse_qs(query).items()}
    missing = [n for n in ("token", "object") if n not in attrs]
    missing += [n for n in ("module-path", "pin-source") if n not in params]
    if missing:
        raise KeyUriError(f"pkcs11 URI lacks {', '.join(missing)}")
    return _Pkcs11Ref(
        module_path=params["module-path"],
        token=attrs["token"],
        object=attrs["object"],
        pin=_secret_from_source(params["pin-source"], "pin-source"),
    )


def _open_session(ref: _Pkcs11Ref, rw: bool = False) -> Any:
    try:
        lib = pkcs11.lib(ref.module_path)
        try:
            token = lib.get_token(token_label=ref.token)
        except pkcs11.exceptions.NoSuchToken:
            # The module is initialised once per process and caches its slot list; a token
            # created since (e.g. by softhsm2-util) appears after a re-initialisation.
            lib.reinitialize()
            token = lib.get_token(token_label=ref.token)
        return token.open(user_pin=ref.pin, rw=rw)
    except pkcs11.exceptions.PinIncorrect as exc:
        raise WrongKeyPassword(f"wrong PIN for token {ref.token}", token=ref.token) from exc
    except (pkcs11.exceptions.PKCS11Error, RuntimeError) as exc:
        raise KeyLoadError(
            f"cannot open PKCS#11 token {ref.token}: {type(exc).__name__}", token=ref.token
        ) from exc


def _sslib_key_from_pkcs11(public: Any, key_type: Any) -> SSlibKey:
    if key_type == pkcs11.KeyType.EC_EDWARDS:
        point = bytes(public[pkcs11.Attribute.EC_POINT])
        # CKA_EC_POINT is a DER OCTET STRING (0x04 len || 32 bytes) per PKCS#11 3.0.
        raw = point[2:] if len(point) == 34 and point[0] == 0x04 else point
        return SSlibKey.from_crypto(ed25519.Ed25519PublicKey.from_public_bytes(raw))
    if key_type != pkcs11.KeyType.EC:
        raise KeyLoadError(f"PKCS#11 {key_type.name} key: only Ed25519 and ECDSA are supported")
    der = pkcs11.util.ec.encode_ec_public_key(public)
    loaded = serialization.load_der_public_key(der)
    if not isinstance(loaded, ec.EllipticCurvePublicKey):
        raise KeyLoadError("PKCS#11 object is not an EC public key")
    return SSlibKey.from_crypto(loaded)


class Pkcs11Signer(Signer):
    """Signs inside a PKCS#11 token; the private key never leaves it.

    A session is opened per signature: simple and safe across threads; an HSM-heavy deployment
    would pool sessions behind this same interface.
    """

    SCHEME = "pkcs11"

    def __init__(self, ref: _Pkcs11Ref, public_key: SSlibKey) -> None:
        self._ref = ref
        self._public_key = public_key

    @property
    def public_key(self) -> Key:
        return self._public_key

    @classmethod
    def from_priv_key_uri(
        cls,
        priv_key_uri: str,
        public_key: Key,
        secrets_handler: Any = None,
    ) -> Pkcs11Signer:
        if not isinstance(public_key, SSlibKey):
            raise KeyUriError("PKCS#11 signer needs an SSlibKey public key")
        return cls(_parse_pkcs11_uri(priv_key_uri), public_key)

    @classmethod
    def from_uri(cls, uri: str) -> Pkcs11Signer:
        """Load the signer and read its public key from the token."""
        ref = _parse_pkcs11_uri(uri)
        with _open_session(ref) as session:
            public = _find(session, ref.object, pkcs11.ObjectClass.PUBLIC_KEY)
            key_type = public[pkcs11.Attribute.KEY_TYPE]
            return cls(ref, _sslib_key_from_pkcs11(public, key_type))

    def sign(self, payload: bytes) -> Signature:
        with _open_session(self._ref) as session:
            private = _find(session, self._ref.object, pkcs11.ObjectClass.PRIVATE_KEY)
            if self._public_key.keytype == "ed25519":
                raw = private.sign(payload, mechanism=pkcs11.Mechanism.EDDSA)
                return Signature(self._public_key.keyid, bytes(raw).hex())
            digest = hashlib.sha256(payload).digest()
            raw = bytes(private.sign(digest, mechanism=pkcs11.Mechanism.ECDSA))
            half = len(raw) // 2
            der = encode_dss_signature(
                int.from_bytes(raw[:half], "big"), int.from_bytes(raw[half:], "big")
            )
            return Signature(self._public_key.keyid, der.hex())


def _find(session: Any, label: str, object_class: Any) -> Any:
    try:
        return session.get_key(object_class=object_class, label=label)
    except (pkcs11.exceptions.NoSuchKey, pkcs11.exceptions.MultipleObjectsReturned) as exc:
        raise KeyLoadError(
            f"PKCS#11 object {label!r} not found exactly once", object=label
        ) from exc


def generate_pkcs11_key(uri: str, algorithm: KeyAlgorithm) -> SSlibKey:
    """Generate a key pair inside the token named by ``uri`` (labelled with its ``object``)."""
    ref = _parse_pkcs11_uri(uri)
    key_type = pkcs11.KeyType.EC_EDWARDS if algorithm == "ed25519" else pkcs11.KeyType.EC
    oid = ED25519_OID if algorithm == "ed25519" else P256_OID
    with _open_session(ref, rw=True) as session:
        params = session.create_domain_parameters(
            key_type,
            {pkcs11.Attribute.EC_PARAMS: encode_named_curve_parameters(oid)},
            local=True,
        )
        public, _private = params.generate_keypair(store=True, label=ref.object)
        return _sslib_key_from_pkcs11(public, key_type)


def _parse_file_uri(uri: str) -> tuple[Path, bytes]:
    parts = urlsplit(uri)
    params = {k: v[0] for k, v in parse_qs(parts.query).items()}
    path = Path(unquote(parts.path))
    if "password-env" in params:
        return path, _secret_from_source("env:" + params["password-env"], "password").encode()
    if "password-file" in params:
        return path, _secret_from_source("file:" + params["password-file"], "password").encode()
    raise KeyUriError("file key URI needs password-env=VAR or password-file=/path")


def load_signer(uri: str) -> Signer:
    """Return the signer a key URI names (``file:`` or ``pkcs11:``)."""
    scheme = uri.partition(":")[0]
    if scheme == "file":
        path, password = _parse_file_uri(uri)
        return CryptoSigner(load_file_private_key(path, password))
    if scheme == "pkcs11":
        return Pkcs11Signer.from_uri(uri)
    raise KeyUriError(f"unsupported key URI scheme {scheme!r}", scheme=scheme)


def public_key_of(signer: Signer) -> SSlibKey:
    """The signer's public key as an :class:`SSlibKey` (what TUF metadata lists)."""
    key = signer.public_key
    if not isinstance(key, SSlibKey):
        raise KeyLoadError("signer's public key is not an SSlibKey")
    return key
