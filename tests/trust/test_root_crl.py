"""The root CRL: an offline ceremony revokes an issuing CA, and ``verify_chain`` refuses every
certificate that CA issued; a root CRL that is forged, older or expired changes nothing."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import structlog
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from structlog.testing import capture_logs
from typer.testing import CliRunner

from forecourt.cli import app
from forecourt.trust import errors
from forecourt.trust.certificates import CertificatePurpose, load_crl
from forecourt.trust.chain import verify_chain
from forecourt.trust.crl_reload import ROOT_CRL_FILE, crl_number
from forecourt.trust.oem_pki import OemPki, sign_root_crl

ROOT_PASSWORD = b"root-secret"
DEALER = CertificatePurpose.DEALER


@pytest.fixture(autouse=True)
def _reset_logging() -> Iterator[None]:
    """The CLI configures structlog on the runner's captured stderr; undo it after each test."""
    yield
    structlog.reset_defaults()


@pytest.fixture
def pki(tmp_path: Path) -> OemPki:
    return OemPki.create(tmp_path / "pki", ROOT_PASSWORD, b"ca-secret")


def _dir(pki: OemPki) -> Path:
    assert pki.directory is not None
    return pki.directory


def _verify(
    pki: OemPki, cert: x509.Certificate, root_crl: x509.CertificateRevocationList | None
) -> list[x509.Certificate]:
    return verify_chain(
        cert, [pki.ca], pki.root, DEALER, datetime.now(UTC), pki.crl, root_crl=root_crl
    )


def test_a_revoked_issuing_ca_refuses_its_dealer_certificate_naming_the_ca(pki: OemPki) -> None:
    dealer = pki.issue_dealer("D1", "E1")
    assert _verify(pki, dealer.cert, None)[1] == pki.ca  # no root CRL: as before
    unrelated = sign_root_crl(_dir(pki), ROOT_PASSWORD, [pki.ca.serial_number + 1])
    assert _verify(pki, dealer.cert, unrelated)[1] == pki.ca  # another CA revoked: still fine
    root_crl = sign_root_crl(_dir(pki), ROOT_PASSWORD, [pki.ca.serial_number])
    with pytest.raises(errors.CertificateRevoked) as caught:
        _verify(pki, dealer.cert, root_crl)
    assert "Forecourt OEM Issuing CA" in str(caught.value)
    assert caught.value.nrc == 0x57


def test_the_ceremony_keeps_every_revoked_ca_and_raises_the_number(pki: OemPki) -> None:
    first = sign_root_crl(_dir(pki), ROOT_PASSWORD, [0xA1])
    second = sign_root_crl(_dir(pki), ROOT_PASSWORD, [0xB2])
    again = sign_root_crl(_dir(pki), ROOT_PASSWORD)
    assert [crl_number(c) for c in (first, second, again)] == [1, 2, 3]
    assert {r.serial_number for r in again} == {0xA1, 0xB2}
    assert again.is_signature_valid(pki.root.public_key())  # type: ignore[arg-type]
    assert again.next_update_utc is not None
    assert again.next_update_utc - again.last_update_utc > timedelta(days=360)
    on_disk = load_crl((_dir(pki) / ROOT_CRL_FILE).read_bytes())
    assert crl_number(on_disk) == 3


@pytest.mark.parametrize(
    ("password", "serials", "error"),
    [
        (b"wrong", [0xA1], errors.WrongKeyPassword),
        (ROOT_PASSWORD, ["root"], errors.PkiError),
    ],
    ids=["wrong_password", "root_serial"],
)
def test_a_refused_ceremony_writes_nothing(
    pki: OemPki, password: bytes, serials: list[object], error: type[Exception]
) -> None:
    held = sign_root_crl(_dir(pki), ROOT_PASSWORD, [0x99])
    before = (_dir(pki) / ROOT_CRL_FILE).read_bytes()
    wanted = [pki.root.serial_number if s == "root" else s for s in serials]
    with capture_logs() as events, pytest.raises(error):
        sign_root_crl(_dir(pki), password, wanted)  # type: ignore[arg-type]
    assert (_dir(pki) / ROOT_CRL_FILE).read_bytes() == before
    assert crl_number(held) == 1
    assert [e["event"] for e in events] == ["root_crl_refused"]
    assert all(ROOT_PASSWORD.decode() not in str(e) for e in events)


def test_a_root_crl_file_of_another_root_is_refused_before_the_key_is_used(
    pki: OemPki, tmp_path: Path
) -> None:
    other = OemPki.create(tmp_path / "other", ROOT_PASSWORD, b"ca-secret")
    sign_root_crl(_dir(other), ROOT_PASSWORD, [0x1])
    foreign = (_dir(other) / ROOT_CRL_FILE).read_bytes()
    (_dir(pki) / ROOT_CRL_FILE).write_bytes(foreign)
    with pytest.raises(errors.PkiError, match="not signed by this PKI's root"):
        sign_root_crl(_dir(pki), ROOT_PASSWORD, [0x2])
    assert (_dir(pki) / ROOT_CRL_FILE).read_bytes() == foreign


def _forged(
    pki: OemPki, serial: int, *, now: datetime, next_update: datetime
) -> x509.CertificateRevocationList:
    return (
        x509.CertificateRevocationListBuilder()
        .issuer_name(pki.root.subject)
        .last_update(now)
        .next_update(next_update)
        .add_extension(x509.CRLNumber(9), critical=False)
        .add_revoked_certificate(
            x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(now).build()
        )
        .sign(ec.generate_private_key(ec.SECP256R1()), hashes.SHA256())
    )


def test_a_root_crl_signed_by_another_key_or_expired_is_refused_by_verify_chain(
    pki: OemPki,
) -> None:
    dealer = pki.issue_dealer("D1", "E1")
    now = datetime.now(UTC)
    forged = _forged(pki, pki.ca.serial_number, now=now, next_update=now + timedelta(days=1))
    with pytest.raises(errors.CrlInvalid, match="not signed by"):
        _verify(pki, dealer.cert, forged)
    expired = sign_root_crl(
        _dir(pki), ROOT_PASSWORD, now=now - timedelta(days=30), lifetime=timedelta(days=1)
    )
    with pytest.raises(errors.CrlInvalid, match="not current"):
        _verify(pki, dealer.cert, expired)


def test_pki_root_crl_command_revokes_the_issuing_ca_and_pki_show_refuses(
    pki: OemPki,
) -> None:
    runner = CliRunner(env={"COLUMNS": "200", "FORECOURT_PKI_ROOT_PASSWORD": "root-secret"})
    directory = _dir(pki)
    dealer = pki.issue_dealer("D1", "E1").write_pem_bundle(directory / "d1", crl=pki.crl)
    bad = runner.invoke(app, ["pki", "root-crl", str(directory), "--revoke-ca", "xyz"])
    assert bad.exit_code == 2 and "hexadecimal" in bad.output
    assert not (directory / ROOT_CRL_FILE).exists()
    serial = f"{pki.ca.serial_number:x}"
    done = runner.invoke(app, ["pki", "root-crl", str(directory), "--revoke-ca", serial])
    assert done.exit_code == 0, done.output
    assert "number 1" in done.output and serial in done.output
    show = [
        "pki",
        "show",
        str(dealer.cert),
        "--root",
        str(directory / "root.pem"),
        "--chain",
        str(directory / "ca.pem"),
        "--crl",
        str(directory / "crl.pem"),
    ]
    assert runner.invoke(app, show).exit_code == 0
    refused = runner.invoke(app, [*show, "--root-crl", str(directory / ROOT_CRL_FILE)])
    assert refused.exit_code == 1
    assert "certificate_revoked" in refused.output and "Issuing CA" in refused.output
