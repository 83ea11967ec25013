"""The OEM PKI as a directory an operator keeps: create once, load to issue, revoke, publish CRLs.

Layout of ``DIR``::

    root.pem              OEM root certificate (pinned in cars, given to the cloud and edges)
    offline/root-key.pem  root private key, PKCS#8 encrypted with the root password — move it to
                          offline storage after ``init``; nothing here loads it again
    ca.pem                issuing CA certificate
    ca-key.pem            its key, encrypted with the CA password; or instead
    ca-key.json           ``{"uri": "pkcs11:..."}``: the key is held in an HSM (never both)
    pki.json              name-constraint policy, revoked serials, CRL number
    issued/<serial>.pem   every certificate issued, by hexadecimal serial
    crl.pem               the issuing CA's latest CRL
    root-crl.pem          the root's latest CRL of revoked issuing CAs (``sign_root_crl``)

Without a directory (:meth:`OemPki.ephemeral`) the same object lives in memory, for tests and
the demo world.

The issuing CA key behind a ``pkcs11:`` URI is chosen by the directory, not by callers: a
``ca-key.json`` present before :meth:`OemPki.create` makes the issuing CA certificate for the
token's key, and :meth:`OemPki.load` signs through the token whenever ``ca-key.json`` is there
(:mod:`forecourt.trust.ca_key` signs the X.509 structures). Either way the key must match
``ca.pem``; a mismatch or a URI that does not resolve is refused before anything is written.

The root CRL (:func:`sign_root_crl`) is the one thing the root key signs after ``init``: an
offline ceremony, on the machine that holds ``offline/``, whose output ``root-crl.pem`` is copied
to the cloud's PKI directory. It is its own record: the next one carries every CA it lists and a
higher cRLNumber, so a root CRL can only grow and only move forward.
"""

from __future__ import annotations

import ipaddress
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, x25519

from forecourt.logging import get_logger
from forecourt.trust.ca_key import IssuingKey
from forecourt.trust.certificates import (
    CertificatePurpose,
    NameConstraintsPolicy,
    build_issuing_ca,
    build_root_ca,
    dealer_subject,
    ecu_subject,
    issue_leaf,
    load_certificate,
    load_crl,
    server_subject,
)
from forecourt.trust.chain import name_permitted, verify_chain
from forecourt.trust.crl_reload import ROOT_CRL_FILE, crl_number
from forecourt.trust.errors import (
    CertificateFormatError,
    KeyLoadError,
    PkiError,
    TrustError,
    WrongKeyPassword,
)
from forecourt.trust.tls import PemBundlePaths, write_pem_bundle

_log = get_logger("trust.pki")

__all__ = ["ROOT_CRL_FILE", "IssuedCertificate", "OemPki", "sign_root_crl"]

ROOT_LIFETIME = timedelta(days=20 * 365)
CA_LIFETIME = timedelta(days=5 * 365)
DEALER_LIFETIME = timedelta(days=365)
SERVER_LIFETIME = timedelta(days=90)
ECU_LIFETIME = timedelta(days=25 * 365)
CRL_LIFETIME = timedelta(days=7)
ROOT_CRL_LIFETIME = timedelta(days=365)
"""Long: the root CRL is signed offline, by a ceremony held rarely."""
_BACKDATE = timedelta(minutes=5)
CA_KEY_FILE = "ca-key.pem"
CA_KEY_REFERENCE = "ca-key.json"
"""Holds ``{"uri": "pkcs11:..."}`` when the issuing CA key lives in an HSM."""


def read_ca_key_reference(directory: Path) -> str | None:
    """The key URI in ``directory/ca-key.json``, or ``None`` when the key is a PEM file.

    Both files at once is refused: the issuing CA key lives in one place, and a PEM copy left
    beside an HSM reference is key material that should have gone offline.
    """
    path = directory / CA_KEY_REFERENCE
    if not path.exists():
        return None
    if (directory / CA_KEY_FILE).exists():
        raise PkiError(
            f"{directory} holds both {CA_KEY_FILE} and {CA_KEY_REFERENCE}: the issuing CA key "
            f"lives in one place; move {CA_KEY_FILE} off this host",
            directory=str(directory),
        )
    try:
        obj = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise PkiError(f"{path} is not readable JSON: {exc}", path=str(path)) from exc
    uri = obj.get("uri") if isinstance(obj, dict) else None
    if not isinstance(uri, str) or not uri.startswith("pkcs11:"):
        raise PkiError(
            f'{path} must hold {{"uri": "pkcs11:..."}} naming the issuing CA key',
            path=str(path),
        )
    return uri


@dataclass(frozen=True)
class IssuedCertificate:
    """A leaf with what a TLS endpoint needs beside it."""

    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey | None
    """The private key when the PKI generated it (dealer edge, cloud server); else ``None``."""
    chain: tuple[x509.Certificate, ...]
    root: x509.Certificate

    def write_pem_bundle(
        self,
        directory: Path,
        name: str = "tls",
        crl: x509.CertificateRevocationList | None = None,
    ) -> PemBundlePaths:
        if self.key is None:
            raise PkiError("the private key of this certificate is held elsewhere")
        return write_pem_bundle(
            directory, self.cert, self.key, list(self.chain), self.root, crl=crl, name=name
        )


def _encrypted_pem(key: ec.EllipticCurvePrivateKey, password: bytes) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(password),
    )


def _write_private(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


@dataclass
class _State:
    policy: NameConstraintsPolicy
    revoked: dict[int, datetime] = field(default_factory=dict)
    crl_number: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "dns": list(self.policy.dns),
            "ips": list(self.policy.ips),
            "revoked": {f"{s:x}": t.isoformat() for s, t in sorted(self.revoked.items())},
            "crl_number": self.crl_number,
        }

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> _State:
        return cls(
            NameConstraintsPolicy(tuple(obj["dns"]), tuple(obj["ips"])),
            {int(s, 16): datetime.fromisoformat(t) for s, t in obj["revoked"].items()},
            int(obj["crl_number"]),
        )


class OemPki:
    """Root, issuing CA and the issuing CA's CRL; issues dealer, cloud and ECU certificates."""

    def __init__(
        self,
        root: x509.Certificate,
        ca: x509.Certificate,
        ca_key: ec.EllipticCurvePrivateKey | IssuingKey,
        state: _State,
        *,
        directory: Path | None,
        crl: x509.CertificateRevocationList | None = None,
    ) -> None:
        self.root = root
        self.ca = ca
        self._ca_key = (
            ca_key if isinstance(ca_key, IssuingKey) else IssuingKey.from_private_key(ca_key)
        )
        self._state = state
        self.directory = directory
        self._crl = crl

    # -- creation and loading -------------------------------------------------------------

    @classmethod
    def ephemeral(
        cls, now: datetime | None = None, policy: NameConstraintsPolicy | None = None
    ) -> OemPki:
        """A complete PKI in memory (root key discarded at once), with an empty CRL."""
        pki, _root_key = cls._build(now or datetime.now(UTC), policy or NameConstraintsPolicy())
        pki.publish_crl(now)
        return pki

    @classmethod
    def _build(
        cls, now: datetime, policy: NameConstraintsPolicy, ca_key: IssuingKey | None = None
    ) -> tuple[OemPki, ec.EllipticCurvePrivateKey]:
        root_key = ec.generate_private_key(ec.SECP256R1())
        ca_key = ca_key or IssuingKey.from_private_key(ec.generate_private_key(ec.SECP256R1()))
        start = now - _BACKDATE
        root = build_root_ca(root_key, "Forecourt OEM Root CA", start, start + ROOT_LIFETIME)
        ca = build_issuing_ca(
            root,
            root_key,
            ca_key.public_key,
            "Forecourt OEM Issuing CA",
            not_before=start,
            not_after=start + CA_LIFETIME,
            constraints=policy,
        )
        return cls(root, ca, ca_key, _State(policy), directory=None), root_key

    @classmethod
    def create(
        cls,
        directory: Path,
        root_password: bytes,
        ca_password: bytes,
        *,
        now: datetime | None = None,
        policy: NameConstraintsPolicy | None = None,
        ca_key_uri: str | None = None,
    ) -> OemPki:
        """Create the whole PKI in ``directory`` (which must not hold one already).

        The issuing CA key is generated and written encrypted to ``ca-key.pem``, unless a key URI
        is given (``ca_key_uri``, or a ``ca-key.json`` already in ``directory``): then the CA
        certificate is made for that key, ``ca-key.json`` records the URI and ``ca_password`` is
        not used. A URI that does not resolve is refused before anything is written.
        """
        if (directory / "root.pem").exists():
            raise PkiError(f"{directory} already holds a PKI", directory=str(directory))
        uri = ca_key_uri or read_ca_key_reference(directory)
        if uri is None and (not ca_password or root_password == ca_password):
            raise PkiError("root and CA passwords must be given and differ")
        if not root_password:
            raise PkiError("the root password must be given")
        moment = now or datetime.now(UTC)
        try:
            held = None if uri is None else IssuingKey.from_uri(uri)
            pki, root_key = cls._build(moment, policy or NameConstraintsPolicy(), held)
            if held is not None:
                held.require_match(pki.ca)  # the token proves it holds the key before any write
        except TrustError as exc:
            _log.warning("pki_create_refused", directory=str(directory), reason=exc.code)
            raise
        pki.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        _write_private(
            directory / "offline" / "root-key.pem", _encrypted_pem(root_key, root_password)
        )
        (directory / "root.pem").write_bytes(_pem(pki.root))
        (directory / "ca.pem").write_bytes(_pem(pki.ca))
        if held is None:
            _write_private(
                directory / CA_KEY_FILE, _encrypted_pem(pki._ca_key.drafting_key, ca_password)
            )
        else:
            (directory / CA_KEY_REFERENCE).write_text(json.dumps({"uri": uri}, indent=2) + "\n")
        pki.publish_crl(moment)
        _log.info(
            "pki_created",
            directory=str(directory),
            root_serial=f"{pki.root.serial_number:x}",
            ca_key=pki._ca_key.where,
        )
        return pki

    @classmethod
    def load(cls, directory: Path, ca_password: bytes) -> OemPki:
        """Load the issuing side (never the root key).

        With ``ca-key.json`` in ``directory`` the issuing CA key is the HSM key it names and
        ``ca_password`` is not used. Either key must be ``ca.pem``'s, or loading is refused.
        """
        try:
            root = load_certificate((directory / "root.pem").read_bytes())
            ca = load_certificate((directory / "ca.pem").read_bytes())
            state = _State.from_json(json.loads((directory / "pki.json").read_text()))
            crl_path = directory / "crl.pem"
            crl = load_crl(crl_path.read_bytes()) if crl_path.exists() else None
        except (OSError, KeyError, ValueError) as exc:
            raise PkiError(f"{directory} does not hold a readable PKI: {exc}") from exc
        try:
            key = _load_ca_key(directory, ca_password)
            key.require_match(ca)
        except TrustError as exc:
            _log.warning("pki_load_refused", directory=str(directory), reason=exc.code)
            raise
        return cls(root, ca, key, state, directory=directory, crl=crl)

    def _save(self) -> None:
        if self.directory is not None:
            (self.directory / "pki.json").write_text(json.dumps(self._state.to_json(), indent=2))

    def _record(self, cert: x509.Certificate) -> None:
        if self.directory is not None:
            issued = self.directory / "issued"
            issued.mkdir(exist_ok=True)
            (issued / f"{cert.serial_number:x}.pem").write_bytes(_pem(cert))
        _log.info(
            "certificate_issued",
            subject=cert.subject.rfc4514_string(),
            serial=f"{cert.serial_number:x}",
            not_after=cert.not_valid_after_utc.isoformat(),
        )

    # -- issuing ----------------------------------------------------------------------------

    def _issued(
        self, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey | None
    ) -> IssuedCertificate:
        self._record(cert)
        return IssuedCertificate(cert, key, (self.ca,), self.root)

    def issue_dealer(
        self,
        dealer_id: str,
        edge_id: str,
        public_key: ec.EllipticCurvePublicKey | None = None,
        now: datetime | None = None,
        lifetime: timedelta = DEALER_LIFETIME,
    ) -> IssuedCertificate:
        """A dealer edge's certificate; generates the P-256 key pair unless one is given."""
        key = None if public_key is not None else ec.generate_private_key(ec.SECP256R1())
        public = public_key or key.public_key()  # type: ignore[union-attr]
        if not isinstance(public.curve, ec.SECP256R1):
            raise PkiError("dealer keys are ECDSA P-256")
        cert = self._ca_key.certificate(
            issue_leaf(
                self.ca,
                self._ca_key.drafting_key,
                dealer_subject(dealer_id, edge_id),
                public,
                CertificatePurpose.DEALER,
                not_before=(now or datetime.now(UTC)) - _BACKDATE,
                lifetime=lifetime,
            )
        )
        return self._issued(cert, key)

    def issue_cloud(
        self,
        hosts: Sequence[str] = ("localhost", "127.0.0.1"),
        now: datetime | None = None,
        lifetime: timedelta = SERVER_LIFETIME,
    ) -> IssuedCertificate:
        """The cloud's TLS server certificate for ``hosts`` (DNS names or IP addresses)."""
        if not hosts:
            raise PkiError("a server certificate needs at least one host")
        names: list[x509.GeneralName] = []
        for host in hosts:
            try:
                names.append(x509.IPAddress(ipaddress.ip_address(host)))
            except ValueError:
                names.append(x509.DNSName(host))
        allowed = self._state.policy.extension().permitted_subtrees or []
        for name in names:
            if not _permitted(name, allowed):
                raise PkiError(f"host {name.value} is outside the CA's name constraints")
        key = ec.generate_private_key(ec.SECP256R1())
        cert = self._ca_key.certificate(
            issue_leaf(
                self.ca,
                self._ca_key.drafting_key,
                server_subject(hosts[0]),
                key.public_key(),
                CertificatePurpose.CLOUD_SERVER,
                not_before=(now or datetime.now(UTC)) - _BACKDATE,
                lifetime=lifetime,
                san=names,
            )
        )
        return self._issued(cert, key)

    def issue_ecu(
        self,
        vin: str,
        ecu_serial: str,
        signing_key: ed25519.Ed25519PublicKey,
        sealing_key: x25519.X25519PublicKey | bytes,
        *,
        now: datetime | None = None,
        lifetime: timedelta = ECU_LIFETIME,
    ) -> x509.Certificate:
        """Factory provisioning: bind VIN, ECU serial, Ed25519 signing and X25519 sealing keys."""
        sealing = (
            x25519.X25519PublicKey.from_public_bytes(sealing_key)
            if isinstance(sealing_key, bytes)
            else sealing_key
        )
        cert = self._ca_key.certificate(
            issue_leaf(
                self.ca,
                self._ca_key.drafting_key,
                ecu_subject(vin, ecu_serial),
                signing_key,
                CertificatePurpose.ECU_IDENTITY,
                not_before=(now or datetime.now(UTC)) - _BACKDATE,
                lifetime=lifetime,
                sealing_key=sealing,
            )
        )
        self._record(cert)
        return cert

    # -- revocation -------------------------------------------------------------------------

    def revoke(self, serial: int, now: datetime | None = None) -> None:
        """Put ``serial`` on the next CRL (call :meth:`publish_crl` to publish it)."""
        if (
            self.directory is not None
            and not (self.directory / "issued" / f"{serial:x}.pem").exists()
        ):
            raise PkiError(f"serial {serial:x} was not issued by this PKI", serial=f"{serial:x}")
        self._state.revoked.setdefault(serial, now or datetime.now(UTC))
        self._save()
        _log.info("certificate_revoked", serial=f"{serial:x}")

    @property
    def revoked(self) -> frozenset[int]:
        return frozenset(self._state.revoked)

    @property
    def crl(self) -> x509.CertificateRevocationList:
        if self._crl is None:
            raise PkiError("no CRL published yet")
        return self._crl

    def publish_crl(
        self, now: datetime | None = None, lifetime: timedelta = CRL_LIFETIME
    ) -> x509.CertificateRevocationList:
        """Sign a CRL of every revoked serial with a CRL number above the last one."""
        moment = now or datetime.now(UTC)
        number = self._state.crl_number + 1
        builder = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(self.ca.subject)
            .last_update(moment - _BACKDATE)
            .next_update(moment + lifetime)
            .add_extension(x509.CRLNumber(number), critical=False)
        )
        for serial, when in sorted(self._state.revoked.items()):
            builder = builder.add_revoked_certificate(
                x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(when).build()
            )
        # Signed and verified before any state changes: a refused key leaves the number unused.
        self._crl = self._ca_key.crl(builder.sign(self._ca_key.drafting_key, hashes.SHA256()))
        self._state.crl_number = number
        self._save()
        if self.directory is not None:
            (self.directory / "crl.pem").write_bytes(
                self._crl.public_bytes(serialization.Encoding.PEM)
            )
        return self._crl

    def verify(
        self,
        cert: x509.Certificate | bytes,
        purpose: CertificatePurpose,
        at: datetime | None = None,
    ) -> list[x509.Certificate]:
        """``verify_chain`` against this PKI's root, issuing CA and current CRL."""
        return verify_chain(cert, [self.ca], self.root, purpose, at or datetime.now(UTC), self._crl)


def _load_ca_key(directory: Path, ca_password: bytes) -> IssuingKey:
    """The issuing CA key: through the token ``ca-key.json`` names, else from ``ca-key.pem``."""
    uri = read_ca_key_reference(directory)
    if uri is not None:
        return IssuingKey.from_uri(uri)
    try:
        key_pem = (directory / CA_KEY_FILE).read_bytes()
    except OSError as exc:
        raise KeyLoadError(f"cannot read {directory / CA_KEY_FILE}: {exc.strerror}") from exc
    try:
        key = serialization.load_pem_private_key(key_pem, password=ca_password)
    except ValueError as exc:
        raise WrongKeyPassword("wrong password for the issuing CA key") from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise KeyLoadError("issuing CA key is not an EC key")
    return IssuingKey.from_private_key(key)


def _load_root_key(
    directory: Path, root: x509.Certificate, password: bytes
) -> ec.EllipticCurvePrivateKey:
    """The offline root key, decrypted with ``password`` and checked to be ``root``'s."""
    path = directory / "offline" / "root-key.pem"
    try:
        key_pem = path.read_bytes()
    except OSError as exc:
        raise KeyLoadError(f"cannot read {path}: {exc.strerror}", path=str(path)) from exc
    try:
        key = serialization.load_pem_private_key(key_pem, password=password)
    except (ValueError, TypeError) as exc:
        raise WrongKeyPassword("wrong password for the root key") from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.public_key() != root.public_key():
        raise KeyLoadError(f"{path} is not the key of {root.subject.rfc4514_string()}")
    return key


def _held_root_crl(path: Path, root: x509.Certificate) -> x509.CertificateRevocationList | None:
    """The root CRL already published in ``path`` (``None`` before the first), which must be
    this root's: the next one continues its list and its number."""
    if not path.exists():
        return None
    try:
        held = load_crl(path.read_bytes())
    except (OSError, CertificateFormatError) as exc:
        raise PkiError(f"{path} is not a readable CRL: {exc}", path=str(path)) from exc
    if held.issuer != root.subject or not held.is_signature_valid(root.public_key()):  # type: ignore[arg-type]
        raise PkiError(f"{path} is not signed by this PKI's root; move it away", path=str(path))
    return held


def sign_root_crl(
    directory: Path,
    root_password: bytes,
    revoke_ca: Sequence[int] = (),
    *,
    now: datetime | None = None,
    lifetime: timedelta = ROOT_CRL_LIFETIME,
) -> x509.CertificateRevocationList:
    """Sign ``DIR/root-crl.pem`` with the offline root key: every issuing CA the last root CRL
    listed, plus ``revoke_ca`` (serials), under the next cRLNumber.

    The root's own serial is refused (a root is withdrawn by re-pinning, not by its own CRL), as
    are a wrong password, a key that is not the root's and a ``root-crl.pem`` of another root;
    any refusal writes nothing. Without ``revoke_ca`` it re-signs the same list (before
    nextUpdate)."""
    moment = now or datetime.now(UTC)
    try:
        try:
            root = load_certificate((directory / "root.pem").read_bytes())
        except OSError as exc:
            raise PkiError(f"{directory} holds no root.pem: {exc.strerror}") from exc
        for serial in revoke_ca:
            if serial == root.serial_number or serial <= 0:
                raise PkiError(f"serial {serial:x} is not an issuing CA's", serial=f"{serial:x}")
        path = directory / ROOT_CRL_FILE
        held = _held_root_crl(path, root)
        key = _load_root_key(directory, root, root_password)
    except TrustError as exc:
        _log.warning("root_crl_refused", directory=str(directory), reason=exc.code)
        raise
    revoked = {r.serial_number: r.revocation_date_utc for r in held or ()}
    for serial in revoke_ca:
        revoked.setdefault(serial, moment)
    number = (crl_number(held) or 0) + 1 if held is not None else 1
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(root.subject)
        .last_update(moment - _BACKDATE)
        .next_update(moment + lifetime)
        .add_extension(x509.CRLNumber(number), critical=False)
    )
    for serial, when in sorted(revoked.items()):
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(when).build()
        )
    crl = builder.sign(key, hashes.SHA256())
    temporary = path.with_name(f".{ROOT_CRL_FILE}.tmp")
    temporary.write_bytes(crl.public_bytes(serialization.Encoding.PEM))
    os.replace(temporary, path)
    _log.info(
        "root_crl_signed",
        directory=str(directory),
        number=number,
        revoked_cas=[f"{s:x}" for s in sorted(revoked)],
        next_update=(moment + lifetime).isoformat(),
    )
    return crl


def _permitted(name: x509.GeneralName, allowed: Sequence[x509.GeneralName]) -> bool:
    return name_permitted(name, allowed, [])
