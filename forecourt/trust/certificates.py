"""Certificate profiles of the OEM PKI: what each certificate says, and how to read it back.

Hierarchy (ARCHITECTURE.md, "Identity and permission")::

    OEM root CA (offline; CA:TRUE, keyCertSign/cRLSign, pathLen 1)
    └── issuing CA (online; CA:TRUE, pathLen 0, name constraints)
        ├── dealer edge certificate  ECDSA P-256, EKU clientAuth     (mTLS to the cloud, UDS 0x29)
        ├── cloud server certificate ECDSA P-256, EKU serverAuth, SAN DNS/IP
        └── ECU identity certificate Ed25519,    EKU ECU identity   (factory provisioning)

Subjects start with ``O=Forecourt OEM, OU=<kind>`` so the issuing CA's directoryName subtrees
confine each kind of leaf, and its DNS/IP subtrees confine the names a server certificate may
claim: a stolen issuing-CA key cannot mint a certificate for a public host name.

The ECU's X25519 sealing key cannot sign, so it cannot have a certificate of its own; it is bound
into the ECU's identity certificate as a non-critical extension (:data:`SEALING_KEY_OID`, value the
DER SubjectPublicKeyInfo of the X25519 key). The CA's signature then binds VIN, ECU serial, signing
key and sealing key together; the cloud seals secrets only to a key it read from a verified
certificate. See docs/adr/0001-activation-bundle-format.md.

Private OIDs are UUID-based (``2.25.<uuid>``, ITU-T X.667): no registry number needed, no clash.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, x25519
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from forecourt.trust.errors import CertificateFormatError, CertificatePurposeError, PkiError

OEM_ORGANIZATION = "Forecourt OEM"
OU_DEALERS = "Dealers"
OU_CLOUD = "Cloud"
OU_ECUS = "ECUs"
OU_CA = "Certificate Authority"

ECU_IDENTITY_EKU = x509.ObjectIdentifier("2.25.218288365269022728889878992706315422830")
"""Extended key usage of an ECU identity certificate (signs version reports, not TLS)."""
SEALING_KEY_OID = x509.ObjectIdentifier("2.25.73179753041733357281346001384101780555")
"""Extension carrying the ECU's X25519 sealing public key as a DER SubjectPublicKeyInfo."""

MAX_CERTIFICATE_BYTES = 16_384
"""A certificate larger than this is refused unread (a UDS 0x29 frame carries one)."""

CaPrivateKey = ec.EllipticCurvePrivateKey
LeafPublicKey = ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey

__all__ = [
    "ECU_IDENTITY_EKU",
    "MAX_CERTIFICATE_BYTES",
    "OEM_ORGANIZATION",
    "SEALING_KEY_OID",
    "CertificatePurpose",
    "DealerIdentity",
    "EcuIdentity",
    "NameConstraintsPolicy",
    "build_issuing_ca",
    "build_root_ca",
    "dealer_identity",
    "dealer_subject",
    "ecu_identity",
    "ecu_subject",
    "issue_leaf",
    "load_certificate",
    "load_crl",
    "server_subject",
]


class CertificatePurpose(StrEnum):
    """What a leaf certificate is checked for: decides key type, key usage and EKU."""

    DEALER = "dealer"
    CLOUD_SERVER = "cloud-server"
    ECU_IDENTITY = "ecu-identity"


@dataclass(frozen=True)
class NameConstraintsPolicy:
    """The issuing CA's permitted subtrees (RFC 5280 §4.2.1.10)."""

    dns: tuple[str, ...] = ("localhost",)
    ips: tuple[str, ...] = ("127.0.0.0/8", "::1/128")

    def extension(self) -> x509.NameConstraints:
        permitted: list[x509.GeneralName] = [
            x509.DirectoryName(_oem_name(ou)) for ou in (OU_DEALERS, OU_CLOUD, OU_ECUS)
        ]
        permitted += [x509.DNSName(d) for d in self.dns]
        permitted += [x509.IPAddress(ipaddress.ip_network(n)) for n in self.ips]
        return x509.NameConstraints(permitted_subtrees=permitted, excluded_subtrees=None)


def _oem_name(ou: str, *rest: x509.NameAttribute[str]) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, OEM_ORGANIZATION),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, ou),
            *rest,
        ]
    )


def dealer_subject(dealer_id: str, edge_id: str) -> x509.Name:
    """``O=Forecourt OEM, OU=Dealers, UID=<dealer id>, CN=<edge id>``."""
    _check_label(dealer_id, "dealer id")
    _check_label(edge_id, "edge id")
    return _oem_name(
        OU_DEALERS,
        x509.NameAttribute(NameOID.USER_ID, dealer_id),
        x509.NameAttribute(NameOID.COMMON_NAME, edge_id),
    )


def ecu_subject(vin: str, ecu_serial: str) -> x509.Name:
    """``O=Forecourt OEM, OU=ECUs, CN=<VIN>, serialNumber=<ECU serial>``."""
    _check_label(vin, "VIN")
    _check_label(ecu_serial, "ECU serial")
    return _oem_name(
        OU_ECUS,
        x509.NameAttribute(NameOID.COMMON_NAME, vin),
        x509.NameAttribute(NameOID.SERIAL_NUMBER, ecu_serial),
    )


def server_subject(host: str) -> x509.Name:
    return _oem_name(OU_CLOUD, x509.NameAttribute(NameOID.COMMON_NAME, host))


def _check_label(value: str, what: str) -> None:
    if not value or len(value) > 64 or not value.isprintable() or not value.isascii():
        raise PkiError(f"{what} must be 1-64 printable ASCII characters", what=what)


def _ca_key_usage() -> x509.KeyUsage:
    return x509.KeyUsage(False, False, False, False, False, True, True, False, False)


def _signing_key_usage() -> x509.KeyUsage:
    return x509.KeyUsage(True, False, False, False, False, False, False, False, False)


def build_root_ca(
    key: CaPrivateKey, common_name: str, not_before: datetime, not_after: datetime
) -> x509.Certificate:
    """Self-signed OEM root: CA:TRUE with pathLen 1 (one issuing CA below it)."""
    name = _oem_name(OU_CA, x509.NameAttribute(NameOID.COMMON_NAME, common_name))
    public = key.public_key()
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=1), critical=True)
        .add_extension(_ca_key_usage(), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )


def build_issuing_ca(
    root: x509.Certificate,
    root_key: CaPrivateKey,
    public_key: ec.EllipticCurvePublicKey,
    common_name: str,
    *,
    not_before: datetime,
    not_after: datetime,
    constraints: NameConstraintsPolicy | None = NameConstraintsPolicy(),
    path_length: int | None = 0,
) -> x509.Certificate:
    """The online issuing CA: pathLen 0 (issues leaves only) and name-constrained."""
    builder = (
        x509.CertificateBuilder()
        .subject_name(_oem_name(OU_CA, x509.NameAttribute(NameOID.COMMON_NAME, common_name)))
        .issuer_name(root.subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=path_length), critical=True)
        .add_extension(_ca_key_usage(), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(_aki(root), critical=False)
    )
    if constraints is not None:
        builder = builder.add_extension(constraints.extension(), critical=True)
    return builder.sign(root_key, hashes.SHA256())


def _aki(issuer: x509.Certificate) -> x509.AuthorityKeyIdentifier:
    ski = issuer.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    return x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski)


def _eku(purpose: CertificatePurpose) -> x509.ObjectIdentifier:
    return {
        CertificatePurpose.DEALER: ExtendedKeyUsageOID.CLIENT_AUTH,
        CertificatePurpose.CLOUD_SERVER: ExtendedKeyUsageOID.SERVER_AUTH,
        CertificatePurpose.ECU_IDENTITY: ECU_IDENTITY_EKU,
    }[purpose]


def issue_leaf(
    issuer: x509.Certificate,
    issuer_key: CaPrivateKey,
    subject: x509.Name,
    public_key: LeafPublicKey,
    purpose: CertificatePurpose,
    *,
    not_before: datetime,
    lifetime: timedelta,
    san: Sequence[x509.GeneralName] = (),
    sealing_key: x25519.X25519PublicKey | None = None,
) -> x509.Certificate:
    """Sign an end-entity certificate of ``purpose`` (no policy checks: callers decide names)."""
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_before + lifetime)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_signing_key_usage(), critical=True)
        .add_extension(x509.ExtendedKeyUsage([_eku(purpose)]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(_aki(issuer), critical=False)
    )
    if san:
        builder = builder.add_extension(x509.SubjectAlternativeName(list(san)), critical=False)
    if sealing_key is not None:
        spki = sealing_key.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        builder = builder.add_extension(
            x509.UnrecognizedExtension(SEALING_KEY_OID, spki), critical=False
        )
    return builder.sign(issuer_key, hashes.SHA256())


def load_certificate(data: bytes | x509.Certificate) -> x509.Certificate:
    """A certificate from PEM or DER bytes, refused unread above :data:`MAX_CERTIFICATE_BYTES`."""
    if isinstance(data, x509.Certificate):
        return data
    if len(data) > MAX_CERTIFICATE_BYTES:
        raise CertificateFormatError(
            f"certificate is {len(data)} bytes, above {MAX_CERTIFICATE_BYTES}", size=len(data)
        )
    try:
        if data.lstrip().startswith(b"-----BEGIN"):
            certificate = x509.load_pem_x509_certificate(data)
        else:
            certificate = x509.load_der_x509_certificate(data)
        # cryptography decodes names, extensions and the key lazily: decode them here, so a
        # malformed one is this refusal and not a ValueError out of a later check.
        _ = (certificate.subject, certificate.issuer, certificate.extensions)
        certificate.public_key()
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise CertificateFormatError("not an X.509 certificate") from exc
    return certificate


def load_crl(data: bytes) -> x509.CertificateRevocationList:
    try:
        if data.lstrip().startswith(b"-----BEGIN"):
            crl = x509.load_pem_x509_crl(data)
        else:
            crl = x509.load_der_x509_crl(data)
        _ = (crl.issuer, crl.extensions)  # decoded lazily: refuse a malformed one here
        for revoked in crl:
            _ = revoked.extensions
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise CertificateFormatError("not an X.509 CRL") from exc
    return crl


def _attribute(name: x509.Name, oid: x509.ObjectIdentifier, what: str) -> str:
    values = name.get_attributes_for_oid(oid)
    if len(values) != 1 or not isinstance(values[0].value, str):
        raise CertificatePurposeError(f"certificate subject must carry exactly one {what}")
    return values[0].value


def _ou(cert: x509.Certificate) -> str:
    return _attribute(cert.subject, NameOID.ORGANIZATIONAL_UNIT_NAME, "organizational unit")


@dataclass(frozen=True)
class DealerIdentity:
    """Who a verified dealer certificate speaks for: the cloud's and the car's notion of caller."""

    dealer_id: str
    edge_id: str
    serial: int
    not_after: datetime


def dealer_identity(cert: x509.Certificate | bytes) -> DealerIdentity:
    """Read dealer and edge id from a dealer certificate (call :func:`verify_chain` first)."""
    certificate = load_certificate(cert)
    if _ou(certificate) != OU_DEALERS:
        raise CertificatePurposeError("not a dealer certificate", ou=_ou(certificate))
    return DealerIdentity(
        dealer_id=_attribute(certificate.subject, NameOID.USER_ID, "dealer id (UID)"),
        edge_id=_attribute(certificate.subject, NameOID.COMMON_NAME, "edge id (CN)"),
        serial=certificate.serial_number,
        not_after=certificate.not_valid_after_utc,
    )


@dataclass(frozen=True)
class EcuIdentity:
    """An ECU as its factory certificate describes it."""

    vin: str
    ecu_serial: str
    signing_key: ed25519.Ed25519PublicKey
    sealing_key: bytes
    """Raw 32-byte X25519 public key (what libsodium's SealedBox takes)."""

    @property
    def signing_key_raw(self) -> bytes:
        return self.signing_key.public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )


def ecu_identity(cert: x509.Certificate | bytes) -> EcuIdentity:
    """Read VIN, ECU serial and both public keys from an ECU identity certificate."""
    certificate = load_certificate(cert)
    if _ou(certificate) != OU_ECUS:
        raise CertificatePurposeError("not an ECU identity certificate", ou=_ou(certificate))
    signing = certificate.public_key()
    if not isinstance(signing, ed25519.Ed25519PublicKey):
        raise CertificatePurposeError("ECU identity key must be Ed25519")
    try:
        ext = certificate.extensions.get_extension_for_oid(SEALING_KEY_OID).value
    except x509.ExtensionNotFound as exc:
        raise CertificatePurposeError("ECU certificate carries no sealing key") from exc
    if not isinstance(ext, x509.UnrecognizedExtension):
        raise CertificatePurposeError("sealing key extension malformed")
    try:
        sealing = serialization.load_der_public_key(ext.value)
    except ValueError as exc:
        raise CertificatePurposeError("sealing key extension malformed") from exc
    if not isinstance(sealing, x25519.X25519PublicKey):
        raise CertificatePurposeError("sealing key must be X25519")
    return EcuIdentity(
        vin=_attribute(certificate.subject, NameOID.COMMON_NAME, "VIN (CN)"),
        ecu_serial=_attribute(certificate.subject, NameOID.SERIAL_NUMBER, "ECU serial"),
        signing_key=signing,
        sealing_key=sealing.public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        ),
    )
