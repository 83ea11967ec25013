"""The OEM PKI as a directory an operator keeps: create once, load to issue, revoke, publish CRLs.

Layout of ``DIR``::

    root.pem              OEM root certificate (pinned in cars, given to the cloud and edges)
    offline/root-key.pem  root private key, PKCS#8 encrypted with the root password — move it to
                          offline storage after ``init``; nothing here loads it again
    ca.pem, ca-key.pem    issuing CA certificate and its key (encrypted with the CA password)
    pki.json              name-constraint policy, revoked serials, CRL number
    issued/<serial>.pem   every certificate issued, by hexadecimal serial
    crl.pem               the issuing CA's latest CRL

Without a directory (:meth:`OemPki.ephemeral`) the same object lives in memory, for tests and
the demo world.
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
from forecourt.trust.errors import KeyLoadError, PkiError, WrongKeyPassword
from forecourt.trust.tls import PemBundlePaths, write_pem_bundle

_log = get_logger("trust.pki")

__all__ = ["IssuedCertificate", "OemPki"]

ROOT_LIFETIME = timedelta(days=20 * 365)
CA_LIFETIME = timedelta(days=5 * 365)
DEALER_LIFETIME = timedelta(days=365)
SERVER_LIFETIME = timedelta(days=90)
ECU_LIFETIME = timedelta(days=25 * 365)
CRL_LIFETIME = timedelta(days=7)
_BACKDATE = timedelta(minutes=5)


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
        ca_key: ec.EllipticCurvePrivateKey,
        state: _State,
        *,
        directory: Path | None,
        crl: x509.CertificateRevocationList | None = None,
    ) -> None:
        self.root = root
        self.ca = ca
        self._ca_key = ca_key
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
        cls, now: datetime, policy: NameConstraintsPolicy
    ) -> tuple[OemPki, ec.EllipticCurvePrivateKey]:
        root_key = ec.generate_private_key(ec.SECP256R1())
        ca_key = ec.generate_private_key(ec.SECP256R1())
        start = now - _BACKDATE
        root = build_root_ca(root_key, "Forecourt OEM Root CA", start, start + ROOT_LIFETIME)
        ca = build_issuing_ca(
            root,
            root_key,
            ca_key.public_key(),
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
        now: datetime | None = None,
        policy: NameConstraintsPolicy | None = None,
    ) -> OemPki:
        """Create the whole PKI in ``directory`` (which must not hold one already)."""
        if (directory / "root.pem").exists():
            raise PkiError(f"{directory} already holds a PKI", directory=str(directory))
        if not root_password or not ca_password or root_password == ca_password:
            raise PkiError("root and CA passwords must be given and differ")
        moment = now or datetime.now(UTC)
        pki, root_key = cls._build(moment, policy or NameConstraintsPolicy())
        pki.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        _write_private(
            directory / "offline" / "root-key.pem", _encrypted_pem(root_key, root_password)
        )
        (directory / "root.pem").write_bytes(_pem(pki.root))
        (directory / "ca.pem").write_bytes(_pem(pki.ca))
        _write_private(directory / "ca-key.pem", _encrypted_pem(pki._ca_key, ca_password))
        pki.publish_crl(moment)
        _log.info(
            "pki_created", directory=str(directory), root_serial=f"{pki.root.serial_number:x}"
        )
        return pki

    @classmethod
    def load(cls, directory: Path, ca_password: bytes) -> OemPki:
        """Load the issuing side (never the root key)."""
        try:
            root = load_certificate((directory / "root.pem").read_bytes())
            ca = load_certificate((directory / "ca.pem").read_bytes())
            key_pem = (directory / "ca-key.pem").read_bytes()
            state = _State.from_json(json.loads((directory / "pki.json").read_text()))
            crl_path = directory / "crl.pem"
            crl = load_crl(crl_path.read_bytes()) if crl_path.exists() else None
        except (OSError, KeyError, ValueError) as exc:
            raise PkiError(f"{directory} does not hold a readable PKI: {exc}") from exc
        try:
            key = serialization.load_pem_private_key(key_pem, password=ca_password)
        except ValueError as exc:
            raise WrongKeyPassword("wrong password for the issuing CA key") from exc
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise KeyLoadError("issuing CA key is not an EC key")
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
        cert = issue_leaf(
            self.ca,
            self._ca_key,
            dealer_subject(dealer_id, edge_id),
            public,
            CertificatePurpose.DEALER,
            not_before=(now or datetime.now(UTC)) - _BACKDATE,
            lifetime=lifetime,
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
        cert = issue_leaf(
            self.ca,
            self._ca_key,
            server_subject(hosts[0]),
            key.public_key(),
            CertificatePurpose.CLOUD_SERVER,
            not_before=(now or datetime.now(UTC)) - _BACKDATE,
            lifetime=lifetime,
            san=names,
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
        cert = issue_leaf(
            self.ca,
            self._ca_key,
            ecu_subject(vin, ecu_serial),
            signing_key,
            CertificatePurpose.ECU_IDENTITY,
            not_before=(now or datetime.now(UTC)) - _BACKDATE,
            lifetime=lifetime,
            sealing_key=sealing,
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
        self._state.crl_number += 1
        builder = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(self.ca.subject)
            .last_update(moment - _BACKDATE)
            .next_update(moment + lifetime)
            .add_extension(x509.CRLNumber(self._state.crl_number), critical=False)
        )
        for serial, when in sorted(self._state.revoked.items()):
            builder = builder.add_revoked_certificate(
                x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(when).build()
            )
        self._crl = builder.sign(self._ca_key, hashes.SHA256())
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


def _permitted(name: x509.GeneralName, allowed: Sequence[x509.GeneralName]) -> bool:
    return name_permitted(name, allowed, [])
