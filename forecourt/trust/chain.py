"""Certificate path validation against the pinned OEM root, with one typed refusal per reason.

``verify_chain(leaf, chain, root, purpose, at, crl)`` is what the cloud (mTLS client certificates),
the car (UDS 0x29) and the edge call. Checks, in order; the first failure is the one raised:

1. issuer linkage and signatures along ``leaf → chain… → root`` (``UntrustedCertificate`` when the
   path does not reach the pinned root, ``CertificateSignatureInvalid`` when a link's signature
   fails);
2. every certificate of the path valid at the trusted time ``at`` (``CertificateExpired``);
3. every issuer is a CA with keyCertSign, pathLen respected, and the subject and subjectAltNames
   of every certificate below a name-constrained CA inside its permitted subtrees
   (``CertificateConstraintViolated``);
4. the leaf's key type, key usage and extended key usage fit ``purpose``
   (``CertificatePurposeError``);
5. the CRL is signed by the leaf's issuer and current at ``at`` (``CrlInvalid``), and does not
   list the leaf (``CertificateRevoked``);
6. given the root's CRL (``root_crl``), the same for the CA the root issued in the path: a
   revoked issuing CA refuses every certificate under it (``CertificateRevoked`` naming the CA).

Signatures are pyca/cryptography's (``verify_directly_issued_by``); the rules above are the RFC
5280 profile this PKI issues, checked here for the typed reason a car answers with. pyca's own
path builder (``cryptography.x509.verification``) is not used: it refuses directoryName name
constraints outright, and the issuing CA confines each leaf kind by a directoryName subtree.
Over TLS, OpenSSL's path validation (which does enforce them) runs in the handshake as well.
Revocation of the issuing CA itself is the root's CRL, signed offline (``forecourt pki
root-crl``); the same :func:`check_revocation` checks it, with the root as issuer. Which CRL a
holder keeps (never an older one: :func:`forecourt.trust.crl_reload.supersedes`) is the
holder's rule, not this function's.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from datetime import datetime

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.x509.oid import ExtendedKeyUsageOID

from forecourt.logging import get_logger
from forecourt.trust.certificates import ECU_IDENTITY_EKU, CertificatePurpose, load_certificate
from forecourt.trust.errors import (
    CertificateConstraintViolated,
    CertificateError,
    CertificateExpired,
    CertificatePurposeError,
    CertificateRevoked,
    CertificateSignatureInvalid,
    CrlInvalid,
    UntrustedCertificate,
)

MAX_CHAIN = 4
_log = get_logger("trust.chain")

__all__ = ["MAX_CHAIN", "check_revocation", "name_permitted", "verify_chain"]

_PURPOSE_EKU = {
    CertificatePurpose.DEALER: ExtendedKeyUsageOID.CLIENT_AUTH,
    CertificatePurpose.CLOUD_SERVER: ExtendedKeyUsageOID.SERVER_AUTH,
    CertificatePurpose.ECU_IDENTITY: ECU_IDENTITY_EKU,
}


def _describe(cert: x509.Certificate) -> str:
    return f"{cert.subject.rfc4514_string()} (serial {cert.serial_number:x})"


def _link(child: x509.Certificate, issuer: x509.Certificate, is_root: bool) -> None:
    if child.issuer != issuer.subject:
        raise UntrustedCertificate(
            f"{_describe(child)} is not issued by {issuer.subject.rfc4514_string()}",
            issuer=child.issuer.rfc4514_string(),
        )
    try:
        child.verify_directly_issued_by(issuer)
    except (InvalidSignature, ValueError, TypeError, UnsupportedAlgorithm) as exc:
        if is_root:
            raise UntrustedCertificate(
                f"{_describe(child)} does not chain to the pinned root"
            ) from exc
        raise CertificateSignatureInvalid(
            f"signature of {_describe(child)} does not verify"
        ) from exc


def _path(
    leaf: x509.Certificate, chain: Sequence[x509.Certificate], root: x509.Certificate
) -> list[x509.Certificate]:
    """leaf, intermediates…, root — each link's issuer name and signature checked."""
    middle = [c for c in chain if c != root]
    if len(middle) > MAX_CHAIN:
        raise UntrustedCertificate(f"chain longer than {MAX_CHAIN} certificates")
    path = [leaf, *middle, root]
    for index in range(len(path) - 1):
        _link(path[index], path[index + 1], is_root=index + 1 == len(path) - 1)
    return path


def _validity(path: Sequence[x509.Certificate], at: datetime) -> None:
    for cert in path:
        if not cert.not_valid_before_utc <= at <= cert.not_valid_after_utc:
            raise CertificateExpired(
                f"{_describe(cert)} is valid {cert.not_valid_before_utc:%Y-%m-%dT%H:%MZ}.."
                f"{cert.not_valid_after_utc:%Y-%m-%dT%H:%MZ}, not at {at:%Y-%m-%dT%H:%MZ}",
                serial=cert.serial_number,
            )


def _extension(cert: x509.Certificate, kind: type[x509.ExtensionType]) -> x509.ExtensionType | None:
    try:
        return cert.extensions.get_extension_for_class(kind).value
    except x509.ExtensionNotFound:
        return None


def _issuer_constraints(path: Sequence[x509.Certificate]) -> None:
    for index, ca in enumerate(path[1:], start=1):
        basic = _extension(ca, x509.BasicConstraints)
        usage = _extension(ca, x509.KeyUsage)
        if not isinstance(basic, x509.BasicConstraints) or not basic.ca:
            raise CertificateConstraintViolated(f"{_describe(ca)} is not a CA but issued one")
        if not isinstance(usage, x509.KeyUsage) or not usage.key_cert_sign:
            raise CertificateConstraintViolated(f"{_describe(ca)} may not sign certificates")
        intermediates_below = index - 1
        if basic.path_length is not None and intermediates_below > basic.path_length:
            raise CertificateConstraintViolated(
                f"{_describe(ca)} allows {basic.path_length} CA(s) below it, "
                f"path has {intermediates_below}",
                path_length=basic.path_length,
            )
        constraints = _extension(ca, x509.NameConstraints)
        if isinstance(constraints, x509.NameConstraints):
            for cert in path[:index]:
                _within(cert, constraints, ca)


def _dn_within(name: x509.Name, subtree: x509.Name) -> bool:
    rdns, prefix = list(name.rdns), list(subtree.rdns)
    return rdns[: len(prefix)] == prefix


def _dns_within(host: str, subtree: str) -> bool:
    host, subtree = host.lower().rstrip("."), subtree.lower().rstrip(".")
    if subtree.startswith("."):
        return host.endswith(subtree)
    return host == subtree or host.endswith("." + subtree)


def name_permitted(
    general: x509.GeneralName,
    permitted: Sequence[x509.GeneralName],
    excluded: Sequence[x509.GeneralName],
) -> bool:
    """RFC 5280 §4.2.1.10 subtree matching for DNS, IP and directory names."""

    def matches(tree: x509.GeneralName) -> bool:
        if isinstance(general, x509.DNSName) and isinstance(tree, x509.DNSName):
            return _dns_within(general.value, tree.value)
        if isinstance(general, x509.IPAddress) and isinstance(tree, x509.IPAddress):
            network = tree.value
            address = general.value
            return (
                isinstance(network, ipaddress.IPv4Network | ipaddress.IPv6Network)
                and isinstance(address, ipaddress.IPv4Address | ipaddress.IPv6Address)
                and address in network
            )
        if isinstance(general, x509.DirectoryName) and isinstance(tree, x509.DirectoryName):
            return _dn_within(general.value, tree.value)
        return False

    same_kind = [t for t in permitted if type(t) is type(general)]
    if same_kind and not any(matches(t) for t in same_kind):
        return False
    return not any(matches(t) for t in excluded)


def _within(
    cert: x509.Certificate, constraints: x509.NameConstraints, ca: x509.Certificate
) -> None:
    permitted = list(constraints.permitted_subtrees or [])
    excluded = list(constraints.excluded_subtrees or [])
    names: list[x509.GeneralName] = []
    if len(cert.subject) and cert.subject != cert.issuer:
        names.append(x509.DirectoryName(cert.subject))
    san = _extension(cert, x509.SubjectAlternativeName)
    if isinstance(san, x509.SubjectAlternativeName):
        names.extend(san)
    for name in names:
        if not name_permitted(name, permitted, excluded):
            raise CertificateConstraintViolated(
                f"{_describe(cert)}: name {name.value!s} outside the name constraints of "
                f"{ca.subject.rfc4514_string()}",
                name=str(name.value),
            )


def _purpose(leaf: x509.Certificate, purpose: CertificatePurpose) -> None:
    basic = _extension(leaf, x509.BasicConstraints)
    if isinstance(basic, x509.BasicConstraints) and basic.ca:
        raise CertificatePurposeError(f"{_describe(leaf)} is a CA, not an end entity")
    usage = _extension(leaf, x509.KeyUsage)
    if not isinstance(usage, x509.KeyUsage) or not usage.digital_signature:
        raise CertificatePurposeError(f"{_describe(leaf)} lacks key usage digitalSignature")
    eku = _extension(leaf, x509.ExtendedKeyUsage)
    wanted = _PURPOSE_EKU[purpose]
    if not isinstance(eku, x509.ExtendedKeyUsage) or wanted not in list(eku):
        raise CertificatePurposeError(
            f"{_describe(leaf)} lacks extended key usage {wanted.dotted_string} for {purpose}",
            purpose=str(purpose),
        )
    key = leaf.public_key()
    if purpose is CertificatePurpose.ECU_IDENTITY:
        ok = isinstance(key, ed25519.Ed25519PublicKey)
    else:
        ok = isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP256R1)
    if not ok:
        raise CertificatePurposeError(f"{_describe(leaf)} has the wrong key type for {purpose}")


def check_revocation(
    leaf: x509.Certificate,
    issuer: x509.Certificate,
    crl: x509.CertificateRevocationList,
    at: datetime,
) -> None:
    """Refuse ``leaf`` if ``crl`` (which must be the issuer's, and current) lists it."""
    if crl.issuer != issuer.subject or not crl.is_signature_valid(issuer.public_key()):  # type: ignore[arg-type]
        raise CrlInvalid(f"CRL is not signed by {issuer.subject.rfc4514_string()}")
    next_update = crl.next_update_utc
    if at < crl.last_update_utc or next_update is None or at > next_update:
        raise CrlInvalid(
            f"CRL issued {crl.last_update_utc:%Y-%m-%dT%H:%MZ} is not current at "
            f"{at:%Y-%m-%dT%H:%MZ}"
        )
    revoked = crl.get_revoked_certificate_by_serial_number(leaf.serial_number)
    if revoked is not None:
        raise CertificateRevoked(
            f"{_describe(leaf)} revoked at {revoked.revocation_date_utc:%Y-%m-%dT%H:%MZ}",
            serial=leaf.serial_number,
        )


def verify_chain(  # noqa: PLR0917 - the shared contract the cloud, edge and car call
    leaf: x509.Certificate | bytes,
    chain: Sequence[x509.Certificate | bytes],
    root: x509.Certificate,
    purpose: CertificatePurpose,
    at: datetime,
    crl: x509.CertificateRevocationList | None,
    *,
    root_crl: x509.CertificateRevocationList | None = None,
) -> list[x509.Certificate]:
    """Validate ``leaf`` for ``purpose`` at trusted time ``at``; return the path leaf → root.

    ``chain`` holds the intermediates, the leaf's issuer first (the root may be included; it is
    ignored — only the pinned ``root`` is trusted). ``crl`` is the issuing CA's CRL; ``None``
    skips revocation and must be a deliberate caller decision (e.g. a car with no CRL yet).
    ``root_crl`` is the root's CRL of issuing CAs; ``None`` (no root CRL published or held)
    checks no CA's revocation, as before root CRLs existed.
    """
    try:
        certificate = load_certificate(leaf)
        intermediates = [load_certificate(c) for c in chain]
        path = _path(certificate, intermediates, root)
        _validity(path, at)
        _issuer_constraints(path)
        _purpose(certificate, purpose)
        if crl is not None:
            check_revocation(certificate, path[1], crl, at)
        if root_crl is not None:
            check_revocation(path[-2], path[-1], root_crl, at)
    except CertificateError as error:
        _log.warning(
            "certificate_refused",
            code=error.code,
            nrc=hex(error.nrc),
            purpose=str(purpose),
            reason=str(error),
        )
        raise
    return path
