"""The issuing CA key inside a PKCS#11 token (SoftHSM2): certificates and CRLs signed there.

What a user relies on: a PKI whose ``ca-key.json`` names an HSM key issues dealer and ECU
certificates and CRLs that the cloud's and the car's chain verification accept, that the cloud's
TLS listener accepts (and refuses once revoked); a URI that does not resolve, a key that is not
the CA certificate's, or a token whose private object is another key is refused with nothing
written.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pkcs11
import pytest
from click.testing import Result
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, x25519
from pkcs11.util.ec import encode_named_curve_parameters
from typer.testing import CliRunner

from forecourt.cli import app
from forecourt.cloud.server import TlsFiles, serve_in_thread
from forecourt.trust import errors
from forecourt.trust.ca_key import CaKeyMismatch
from forecourt.trust.certificates import load_certificate, load_crl
from forecourt.trust.keys import P256_OID, generate_pkcs11_key
from forecourt.trust.pki import CertificatePurpose, OemPki, client_ssl_context, verify_chain
from tests.cloud.world import CloudWorld, build_world

from .conftest import SOFTHSM_MODULE, SoftHsmToken

ROOT_PASSWORD = b"root password for tests"
DEALER = CertificatePurpose.DEALER
REFUSED = (httpx.ConnectError, httpx.ReadError, httpx.RemoteProtocolError)


def _snapshot(directory: Path) -> dict[str, bytes]:
    if not directory.exists():
        return {}
    return {
        str(p.relative_to(directory)): p.read_bytes() for p in directory.rglob("*") if p.is_file()
    }


@pytest.fixture
def hsm_pki(softhsm_token: SoftHsmToken, tmp_path: Path) -> tuple[OemPki, str]:
    uri = softhsm_token.uri("oem-issuing-ca")
    generate_pkcs11_key(uri, "ecdsa-p256")
    created = OemPki.create(tmp_path / "pki", ROOT_PASSWORD, b"", ca_key_uri=uri)
    return created, uri


def test_hsm_ca_key_issues_dealer_and_ecu_certificates_the_chain_verification_accepts(
    hsm_pki: tuple[OemPki, str], tmp_path: Path
) -> None:
    _, uri = hsm_pki
    directory = tmp_path / "pki"
    assert not (directory / "ca-key.pem").exists()
    assert json.loads((directory / "ca-key.json").read_text()) == {"uri": uri}
    pki = OemPki.load(directory, b"")  # no password: the key is in the token
    now = datetime.now(UTC)

    dealer = pki.issue_dealer("D001", "EDGE-D001-01", now=now)
    assert verify_chain(dealer.cert, [pki.ca], pki.root, DEALER, now, pki.crl) == [
        dealer.cert,
        pki.ca,
        pki.root,
    ]
    ecu = pki.issue_ecu(
        "WF0XXXGCDX1234567",
        "TBX0001",
        ed25519.Ed25519PrivateKey.generate().public_key(),
        x25519.X25519PrivateKey.generate().public_key(),
        now=now,
    )
    verify_chain(ecu, [pki.ca], pki.root, CertificatePurpose.ECU_IDENTITY, now, pki.crl)
    ca_public = pki.ca.public_key()
    assert isinstance(ca_public, ec.EllipticCurvePublicKey)
    assert pki.crl.is_signature_valid(ca_public)
    # The signature really is the token's: the drafting key is not the CA's.
    dealer.cert.verify_directly_issued_by(pki.ca)
    assert (directory / "issued" / f"{dealer.cert.serial_number:x}.pem").exists()


def test_revocation_signed_in_the_token_is_enforced_and_survives_reload(
    hsm_pki: tuple[OemPki, str], tmp_path: Path
) -> None:
    pki = OemPki.load(tmp_path / "pki", b"")
    now = datetime.now(UTC)
    dealer = pki.issue_dealer("D001", "EDGE-R", now=now)
    number_before = json.loads((tmp_path / "pki" / "pki.json").read_text())["crl_number"]
    pki.revoke(dealer.cert.serial_number, now=now)
    pki.publish_crl(now)
    again = OemPki.load(tmp_path / "pki", b"")
    assert json.loads((tmp_path / "pki" / "pki.json").read_text())["crl_number"] == (
        number_before + 1
    )
    with pytest.raises(errors.CertificateRevoked):
        again.verify(dealer.cert, DEALER, now)
    with pytest.raises(errors.CertificateRevoked):
        verify_chain(dealer.cert, [again.ca], again.root, DEALER, now, again.crl)


@pytest.fixture
def world(sqlite_url: str) -> Iterator[CloudWorld]:
    built = build_world(sqlite_url, vehicles=1)
    yield built
    built.context.db.dispose()


def test_cloud_listener_accepts_a_dealer_certificate_signed_in_the_token_until_revoked(
    hsm_pki: tuple[OemPki, str], world: CloudWorld, tmp_path: Path
) -> None:
    pki = OemPki.load(tmp_path / "pki", b"")
    good = pki.issue_dealer("D001", "EDGE-GOOD")
    revoked = pki.issue_dealer("D001", "EDGE-REVOKED")
    pki.revoke(revoked.cert.serial_number)
    pki.publish_crl()
    server = pki.issue_cloud(("localhost", "127.0.0.1")).write_pem_bundle(
        tmp_path / "server", name="server", crl=pki.crl
    )
    files = TlsFiles(server.cert, server.key, server.ca, crl=tmp_path / "pki" / "crl.pem")

    def health(name: str, issued: object) -> int:
        paths = issued.write_pem_bundle(tmp_path / name, name="edge")  # type: ignore[attr-defined]
        context = client_ssl_context(paths.cert, paths.key, paths.ca)
        with httpx.Client(base_url=url, verify=context) as client:
            return client.get("/v1/health").status_code

    with serve_in_thread(world.app(), files, staff_without_certificate=True) as url:
        assert health("good", good) == 200
        with pytest.raises(REFUSED):
            health("revoked", revoked)


def test_a_token_key_that_is_not_the_ca_certificates_is_refused_and_nothing_written(
    hsm_pki: tuple[OemPki, str], softhsm_token: SoftHsmToken, tmp_path: Path
) -> None:
    directory = tmp_path / "pki"
    other = softhsm_token.uri("another-key")
    generate_pkcs11_key(other, "ecdsa-p256")
    (directory / "ca-key.json").write_text(json.dumps({"uri": other}))
    before = _snapshot(directory)
    with pytest.raises(CaKeyMismatch) as caught:
        OemPki.load(directory, b"")
    assert caught.value.code == "ca_key_mismatch"
    assert "another-key" in str(caught.value) and "4321" not in str(caught.value)
    assert _snapshot(directory) == before


def test_a_uri_that_does_not_resolve_is_refused_and_nothing_written(
    softhsm_token: SoftHsmToken, tmp_path: Path
) -> None:
    directory = tmp_path / "pki"
    with pytest.raises(errors.KeyLoadError, match="absent"):
        OemPki.create(directory, ROOT_PASSWORD, b"", ca_key_uri=softhsm_token.uri("absent"))
    assert not directory.exists()
    missing_pin = softhsm_token.uri("absent").replace("&pin-source=env:", "&x=")
    with pytest.raises(errors.KeyUriError):
        OemPki.create(directory, ROOT_PASSWORD, b"", ca_key_uri=missing_pin)
    assert not directory.exists()


def test_a_malformed_or_doubled_key_reference_is_refused(
    hsm_pki: tuple[OemPki, str], tmp_path: Path
) -> None:
    directory = tmp_path / "pki"
    (directory / "ca-key.json").write_text(json.dumps({"uri": "file:/tmp/ca-key.pem"}))
    with pytest.raises(errors.PkiError, match="pkcs11"):
        OemPki.load(directory, b"")
    (directory / "ca-key.json").write_text(json.dumps({"uri": hsm_pki[1]}))
    (directory / "ca-key.pem").write_bytes(b"left behind")
    with pytest.raises(errors.PkiError, match="both"):
        OemPki.load(directory, b"")


def _relabel(token: SoftHsmToken, object_class: object, old: str, new: str) -> None:
    lib = pkcs11.lib(SOFTHSM_MODULE)
    lib.reinitialize()
    with lib.get_token(token_label=token.label).open(user_pin="4321", rw=True) as session:
        key = session.get_key(object_class=object_class, label=old)
        key[pkcs11.Attribute.LABEL] = new


def test_a_token_whose_private_object_is_another_key_is_refused_before_issuing(
    hsm_pki: tuple[OemPki, str], softhsm_token: SoftHsmToken, tmp_path: Path
) -> None:
    # The public object still matches ca.pem; only a signature can tell the private key apart.
    generate_pkcs11_key(softhsm_token.uri("impostor"), "ecdsa-p256")
    private = pkcs11.ObjectClass.PRIVATE_KEY
    _relabel(softhsm_token, private, "oem-issuing-ca", "original")
    _relabel(softhsm_token, private, "impostor", "oem-issuing-ca")
    before = _snapshot(tmp_path / "pki")
    with pytest.raises(CaKeyMismatch, match="another private key"):
        OemPki.load(tmp_path / "pki", b"")
    assert _snapshot(tmp_path / "pki") == before


def _import_p256(token: SoftHsmToken, key: ec.EllipticCurvePrivateKey, label: str) -> None:
    """What an operator does with the HSM vendor's tool: put an existing key into the token."""
    params = encode_named_curve_parameters(P256_OID)
    point = key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    lib = pkcs11.lib(SOFTHSM_MODULE)
    lib.reinitialize()
    with lib.get_token(token_label=token.label).open(user_pin="4321", rw=True) as session:
        session.create_object({
            pkcs11.Attribute.CLASS: pkcs11.ObjectClass.PRIVATE_KEY,
            pkcs11.Attribute.KEY_TYPE: pkcs11.KeyType.EC,
            pkcs11.Attribute.EC_PARAMS: params,
            pkcs11.Attribute.VALUE: key.private_numbers().private_value.to_bytes(32, "big"),
            pkcs11.Attribute.LABEL: label,
            pkcs11.Attribute.TOKEN: True,
            pkcs11.Attribute.PRIVATE: True,
            pkcs11.Attribute.SENSITIVE: True,
            pkcs11.Attribute.SIGN: True,
        })  # fmt: skip
        session.create_object({
            pkcs11.Attribute.CLASS: pkcs11.ObjectClass.PUBLIC_KEY,
            pkcs11.Attribute.KEY_TYPE: pkcs11.KeyType.EC,
            pkcs11.Attribute.EC_PARAMS: params,
            pkcs11.Attribute.EC_POINT: bytes([0x04, len(point)]) + point,
            pkcs11.Attribute.LABEL: label,
            pkcs11.Attribute.TOKEN: True,
            pkcs11.Attribute.VERIFY: True,
        })  # fmt: skip


def test_an_existing_file_ca_key_moved_into_the_token_keeps_issuing_for_the_same_ca(
    softhsm_token: SoftHsmToken, tmp_path: Path
) -> None:
    directory = tmp_path / "pki"
    created = OemPki.create(directory, ROOT_PASSWORD, b"ca password")
    issued_before = created.issue_dealer("D001", "EDGE-OLD")
    pem = (directory / "ca-key.pem").read_bytes()
    key = serialization.load_pem_private_key(pem, password=b"ca password")
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    _import_p256(softhsm_token, key, "oem-issuing-ca")
    (directory / "ca-key.json").write_text(json.dumps({"uri": softhsm_token.uri("oem-issuing-ca")}))
    (directory / "ca-key.pem").rename(tmp_path / "ca-key.pem.offline")

    pki = OemPki.load(directory, b"")
    assert pki.ca == created.ca
    now = datetime.now(UTC)
    issued = pki.issue_dealer("D001", "EDGE-NEW", now=now)
    pki.revoke(issued_before.cert.serial_number, now=now)
    crl = pki.publish_crl(now)
    verify_chain(issued.cert, [pki.ca], pki.root, DEALER, now, crl)
    with pytest.raises(errors.CertificateRevoked):
        verify_chain(issued_before.cert, [pki.ca], pki.root, DEALER, now, crl)


def _cloud_cli(*args: str) -> Result:
    # No FORECOURT_PKI_CA_PASSWORD and no input: an HSM-held key must not ask for a password.
    return CliRunner().invoke(app, ["cloud", *args], env={"FORECOURT_PKI_CA_PASSWORD": None})


def test_cloud_cli_issues_and_revokes_dealer_certificates_with_the_token_key(
    hsm_pki: tuple[OemPki, str], world: CloudWorld, sqlite_url: str, tmp_path: Path
) -> None:
    pki_dir = str(tmp_path / "pki")
    issued = _cloud_cli(
        "dealer-cert", "DE-MUC-01", "edge-1", "--out", str(tmp_path / "edge"),
        "--pki", pki_dir, "--database-url", sqlite_url,
    )  # fmt: skip
    assert issued.exit_code == 0, issued.output
    cert = load_certificate((tmp_path / "edge" / "edge-cert.pem").read_bytes())
    pki = OemPki.load(tmp_path / "pki", b"")
    now = datetime.now(UTC)
    verify_chain(cert, [pki.ca], pki.root, DEALER, now, pki.crl)

    revoked = _cloud_cli(
        "revoke-dealer-cert", f"{cert.serial_number:x}", "--pki", pki_dir,
        "--database-url", sqlite_url,
    )  # fmt: skip
    assert revoked.exit_code == 0, revoked.output
    crl = load_crl((tmp_path / "pki" / "crl.pem").read_bytes())
    with pytest.raises(errors.CertificateRevoked):
        verify_chain(cert, [pki.ca], pki.root, DEALER, now, crl)


def test_cloud_cli_refuses_a_wrong_token_key_with_exit_2_and_writes_nothing(
    hsm_pki: tuple[OemPki, str],
    softhsm_token: SoftHsmToken,
    world: CloudWorld,
    sqlite_url: str,
    tmp_path: Path,
) -> None:
    directory = tmp_path / "pki"
    generate_pkcs11_key(softhsm_token.uri("another-key"), "ecdsa-p256")
    (directory / "ca-key.json").write_text(json.dumps({"uri": softhsm_token.uri("another-key")}))
    before = _snapshot(directory)
    for args in (
        ("dealer-cert", "DE-MUC-01", "edge-1", "--out", str(tmp_path / "edge")),
        ("revoke-dealer-cert", "1234"),
    ):
        result = _cloud_cli(*args, "--pki", str(directory), "--database-url", sqlite_url)
        assert result.exit_code == 2, result.output
        assert "ca_key_mismatch" in result.output
    (directory / "ca-key.json").write_text(json.dumps({"uri": softhsm_token.uri("absent")}))
    result = _cloud_cli("revoke-dealer-cert", "1234", "--pki", str(directory),
                        "--database-url", sqlite_url)  # fmt: skip
    assert result.exit_code == 2 and "key_load_failed" in result.output
    assert not (tmp_path / "edge").exists()
    before["ca-key.json"] = (directory / "ca-key.json").read_bytes()
    assert _snapshot(directory) == before


def test_pki_commands_with_the_ca_key_in_a_token_never_ask_for_a_ca_password(
    softhsm_token: SoftHsmToken, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FORECOURT_PKI_CA_PASSWORD", raising=False)
    monkeypatch.setenv("FORECOURT_PKI_ROOT_PASSWORD", ROOT_PASSWORD.decode())
    uri = softhsm_token.uri("oem-issuing-ca")
    generate_pkcs11_key(uri, "ecdsa-p256")
    pki_dir = tmp_path / "pki"
    runner = CliRunner()

    # no input is given: a prompt for a CA password would abort the command
    init = runner.invoke(app, ["pki", "init", str(pki_dir), "--ca-key", uri], input="")
    assert init.exit_code == 0, init.output
    assert json.loads((pki_dir / "ca-key.json").read_text())["uri"] == uri
    assert not (pki_dir / "ca-key.pem").exists()
    dealer = runner.invoke(
        app, ["pki", "issue-dealer", str(pki_dir), "--dealer", "D1", "--edge", "E1"], input=""
    )
    assert dealer.exit_code == 0, dealer.output
    assert runner.invoke(app, ["pki", "crl", str(pki_dir)], input="").exit_code == 0
    cert = load_certificate((pki_dir / "dealers" / "D1-E1" / "tls-cert.pem").read_bytes())
    pki = OemPki.load(pki_dir, b"")
    verify_chain(cert, [pki.ca], pki.root, DEALER, datetime.now(UTC), pki.crl)


def test_pki_commands_with_a_file_ca_key_still_ask_for_its_password(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FORECOURT_PKI_CA_PASSWORD", raising=False)
    monkeypatch.setenv("FORECOURT_PKI_ROOT_PASSWORD", ROOT_PASSWORD.decode())
    pki_dir = tmp_path / "pki"
    runner = CliRunner()
    init = runner.invoke(app, ["pki", "init", str(pki_dir)], input="ca secret\nca secret\n")
    assert init.exit_code == 0, init.output
    assert (pki_dir / "ca-key.pem").exists()
    unasked = runner.invoke(app, ["pki", "crl", str(pki_dir)], input="")
    assert unasked.exit_code != 0  # the prompt found no answer
    wrong = runner.invoke(app, ["pki", "crl", str(pki_dir)], input="not it\n")
    assert wrong.exit_code == 2
    right = runner.invoke(app, ["pki", "crl", str(pki_dir)], input="ca secret\n")
    assert right.exit_code == 0, right.output
