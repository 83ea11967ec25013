"""OEM PKI: each certificate refusal with its typed reason, and real mutual-TLS handshakes."""

from __future__ import annotations

import ssl
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, x25519
from cryptography.hazmat.primitives.serialization import Encoding

from forecourt.trust import errors
from forecourt.trust.pki import (
    CertificatePurpose,
    NameConstraintsPolicy,
    OemPki,
    build_issuing_ca,
    build_root_ca,
    client_ssl_context,
    dealer_identity,
    dealer_subject,
    ecu_identity,
    issue_leaf,
    server_ssl_context,
    server_subject,
    verify_chain,
)

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
DEALER = CertificatePurpose.DEALER


@pytest.fixture(scope="module")
def pki() -> OemPki:
    return OemPki.ephemeral(NOW)


def _refused(
    error: type[errors.CertificateError],
    cert: x509.Certificate,
    chain: list[x509.Certificate],
    root: x509.Certificate,
    *,
    purpose: CertificatePurpose = DEALER,
    at: datetime = NOW,
    crl: x509.CertificateRevocationList | None = None,
) -> errors.CertificateError:
    with pytest.raises(errors.CertificateError) as caught:
        verify_chain(cert, chain, root, purpose, at, crl)
    assert type(caught.value) is error, caught.value
    return caught.value


def test_dealer_certificate_verifies_and_names_dealer_and_edge(pki: OemPki) -> None:
    issued = pki.issue_dealer("D001", "EDGE-D001-01", now=NOW)
    path = verify_chain(issued.cert, [pki.ca], pki.root, DEALER, NOW, pki.crl)
    assert path == [issued.cert, pki.ca, pki.root]
    identity = dealer_identity(issued.cert.public_bytes(Encoding.DER))
    assert (identity.dealer_id, identity.edge_id) == ("D001", "EDGE-D001-01")
    assert identity.serial == issued.cert.serial_number


def test_ecu_certificate_binds_vin_serial_signing_and_sealing_keys(pki: OemPki) -> None:
    signing = ed25519.Ed25519PrivateKey.generate().public_key()
    sealing = x25519.X25519PrivateKey.generate().public_key()
    cert = pki.issue_ecu("WF0XXXGCDX1234567", "TBX0001", signing, sealing, now=NOW)
    verify_chain(cert, [pki.ca], pki.root, CertificatePurpose.ECU_IDENTITY, NOW, pki.crl)
    identity = ecu_identity(cert)
    assert (identity.vin, identity.ecu_serial) == ("WF0XXXGCDX1234567", "TBX0001")
    assert identity.sealing_key == sealing.public_bytes_raw()
    assert identity.signing_key_raw == signing.public_bytes_raw()


@pytest.mark.parametrize(
    "at", [NOW - timedelta(days=1), NOW + timedelta(days=366)], ids=["not-yet-valid", "expired"]
)
def test_certificate_outside_its_validity_is_refused_as_expired(pki: OemPki, at: datetime) -> None:
    issued = pki.issue_dealer("D001", "EDGE-T", now=NOW)
    error = _refused(errors.CertificateExpired, issued.cert, [pki.ca], pki.root, at=at)
    assert error.nrc == 0x50


def test_revoked_dealer_certificate_is_refused_after_crl_publication() -> None:
    pki = OemPki.ephemeral(NOW)
    issued = pki.issue_dealer("D002", "EDGE-R", now=NOW)
    verify_chain(issued.cert, [pki.ca], pki.root, DEALER, NOW, pki.crl)
    pki.revoke(issued.cert.serial_number, now=NOW)
    crl = pki.publish_crl(NOW)
    error = _refused(errors.CertificateRevoked, issued.cert, [pki.ca], pki.root, crl=crl)
    assert error.nrc == 0x57


def test_crl_of_another_ca_or_out_of_date_is_refused(pki: OemPki) -> None:
    issued = pki.issue_dealer("D001", "EDGE-C", now=NOW)
    foreign = OemPki.ephemeral(NOW).crl
    _refused(errors.CrlInvalid, issued.cert, [pki.ca], pki.root, crl=foreign)
    stale = NOW + timedelta(days=8)
    _refused(errors.CrlInvalid, issued.cert, [pki.ca], pki.root, at=stale, crl=pki.crl)


def test_server_certificate_presented_as_dealer_is_refused_for_wrong_eku(pki: OemPki) -> None:
    server = pki.issue_cloud(now=NOW)
    error = _refused(errors.CertificatePurposeError, server.cert, [pki.ca], pki.root)
    assert error.nrc == 0x56


def test_dealer_certificate_is_not_an_ecu_identity(pki: OemPki) -> None:
    issued = pki.issue_dealer("D001", "EDGE-E", now=NOW)
    _refused(
        errors.CertificatePurposeError,
        issued.cert,
        [pki.ca],
        pki.root,
        purpose=CertificatePurpose.ECU_IDENTITY,
    )


def test_certificate_from_a_foreign_pki_is_untrusted(pki: OemPki) -> None:
    foreign = OemPki.ephemeral(NOW)
    issued = foreign.issue_dealer("D001", "EDGE-X", now=NOW)
    _refused(errors.UntrustedCertificate, issued.cert, [foreign.ca], pki.root)


def test_foreign_leaf_with_same_issuer_name_fails_the_signature_check(pki: OemPki) -> None:
    issued = OemPki.ephemeral(NOW).issue_dealer("D001", "EDGE-X", now=NOW)
    error = _refused(errors.CertificateSignatureInvalid, issued.cert, [pki.ca], pki.root)
    assert error.nrc == 0x51


def test_chain_with_the_wrong_issuer_is_untrusted(pki: OemPki) -> None:
    issued = pki.issue_dealer("D001", "EDGE-W", now=NOW)
    _refused(errors.UntrustedCertificate, issued.cert, [pki.root], pki.root)


def _hierarchy(
    policy: NameConstraintsPolicy | None = NameConstraintsPolicy(),
) -> tuple[x509.Certificate, x509.Certificate, ec.EllipticCurvePrivateKey]:
    root_key = ec.generate_private_key(ec.SECP256R1())
    root = build_root_ca(root_key, "Test Root", NOW - timedelta(days=1), NOW + timedelta(days=9))
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = build_issuing_ca(
        root,
        root_key,
        ca_key.public_key(),
        "Test Issuing CA",
        not_before=NOW - timedelta(days=1),
        not_after=NOW + timedelta(days=9),
        constraints=policy,
    )
    return root, ca, ca_key


def test_issuing_ca_with_path_length_zero_cannot_issue_a_sub_ca() -> None:
    root, ca, ca_key = _hierarchy()
    sub_key = ec.generate_private_key(ec.SECP256R1())
    sub = build_issuing_ca(
        ca,
        ca_key,
        sub_key.public_key(),
        "Rogue Sub CA",
        not_before=NOW - timedelta(days=1),
        not_after=NOW + timedelta(days=9),
        constraints=None,
    )
    leaf = issue_leaf(
        sub,
        sub_key,
        dealer_subject("D001", "EDGE-P"),
        ec.generate_private_key(ec.SECP256R1()).public_key(),
        DEALER,
        not_before=NOW - timedelta(hours=1),
        lifetime=timedelta(days=1),
    )
    error = _refused(errors.CertificateConstraintViolated, leaf, [sub, ca], root)
    assert "allows 0 CA" in str(error)


def test_server_name_outside_the_name_constraints_is_refused() -> None:
    root, ca, ca_key = _hierarchy()
    leaf = issue_leaf(
        ca,
        ca_key,
        server_subject("bank.example"),
        ec.generate_private_key(ec.SECP256R1()).public_key(),
        CertificatePurpose.CLOUD_SERVER,
        not_before=NOW - timedelta(hours=1),
        lifetime=timedelta(days=1),
        san=[x509.DNSName("bank.example")],
    )
    error = _refused(
        errors.CertificateConstraintViolated,
        leaf,
        [ca],
        root,
        purpose=CertificatePurpose.CLOUD_SERVER,
    )
    assert "bank.example" in str(error)


def test_subject_outside_the_directory_name_subtrees_is_refused() -> None:
    root, ca, ca_key = _hierarchy()
    subject = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "EDGE-Z")])
    leaf = issue_leaf(
        ca,
        ca_key,
        subject,
        ec.generate_private_key(ec.SECP256R1()).public_key(),
        DEALER,
        not_before=NOW - timedelta(hours=1),
        lifetime=timedelta(days=1),
    )
    _refused(errors.CertificateConstraintViolated, leaf, [ca], root)


def test_pki_refuses_to_issue_a_server_certificate_outside_its_constraints(pki: OemPki) -> None:
    with pytest.raises(errors.PkiError):
        pki.issue_cloud(["bank.example"], now=NOW)


def test_garbage_certificate_bytes_are_a_format_error(pki: OemPki) -> None:
    error = _refused(errors.CertificateFormatError, b"\x30\x03junk", [pki.ca], pki.root)  # type: ignore[arg-type]
    assert error.nrc == 0x54


def test_pki_directory_round_trip_keeps_root_key_offline_and_revocations(tmp_path: Path) -> None:
    created = OemPki.create(tmp_path / "pki", b"root-pass", b"ca-pass", now=NOW)
    issued = created.issue_dealer("D001", "EDGE-1", now=NOW)
    loaded = OemPki.load(tmp_path / "pki", b"ca-pass")
    assert loaded.root == created.root
    loaded.revoke(issued.cert.serial_number, now=NOW)
    loaded.publish_crl(NOW)
    again = OemPki.load(tmp_path / "pki", b"ca-pass")
    assert issued.cert.serial_number in again.revoked
    with pytest.raises(errors.CertificateRevoked):
        again.verify(issued.cert, DEALER, NOW)
    assert b"ENCRYPTED" in (tmp_path / "pki" / "offline" / "root-key.pem").read_bytes()
    assert (tmp_path / "pki" / "offline" / "root-key.pem").stat().st_mode & 0o077 == 0
    with pytest.raises(errors.WrongKeyPassword):
        OemPki.load(tmp_path / "pki", b"wrong")


# -- mutual TLS over in-memory BIOs: the real OpenSSL handshake, no sockets or threads ----------


def _handshake(server_ctx: ssl.SSLContext, client_ctx: ssl.SSLContext) -> ssl.SSLObject:
    c_in, c_out, s_in, s_out = (ssl.MemoryBIO() for _ in range(4))
    client = client_ctx.wrap_bio(c_in, c_out, server_hostname="localhost")
    server = server_ctx.wrap_bio(s_in, s_out, server_side=True)
    done = {"client": False, "server": False}
    for _ in range(20):
        for name, side in (("client", client), ("server", server)):
            if not done[name]:
                try:
                    side.do_handshake()
                    done[name] = True
                except ssl.SSLWantReadError:
                    pass
        s_in.write(c_out.read())
        c_in.write(s_out.read())
        if all(done.values()):
            # TLS 1.3: the server checks the client certificate after the client finishes;
            # one application byte makes any server-side refusal visible.
            client.write(b"x")
            s_in.write(c_out.read())
            assert server.read(1) == b"x"
            return server
    raise AssertionError("handshake did not finish")


@pytest.fixture(scope="module")
def tls_world(tmp_path_factory: pytest.TempPathFactory) -> tuple[OemPki, ssl.SSLContext, Path]:
    pki = OemPki.ephemeral(datetime.now(UTC))
    revoked = pki.issue_dealer("D009", "EDGE-REVOKED")
    pki.revoke(revoked.cert.serial_number)
    pki.publish_crl()
    base = tmp_path_factory.mktemp("tls")
    server = pki.issue_cloud().write_pem_bundle(base / "cloud", crl=pki.crl)
    assert server.crl is not None
    context = server_ssl_context(server.cert, server.key, server.ca, crl=server.crl)
    revoked.write_pem_bundle(base / "revoked")
    return pki, context, base


def test_tls_handshake_accepts_dealer_certificate_and_reveals_identity(
    tls_world: tuple[OemPki, ssl.SSLContext, Path],
) -> None:
    pki, server_ctx, base = tls_world
    paths = pki.issue_dealer("D001", "EDGE-TLS").write_pem_bundle(base / "dealer")
    server = _handshake(server_ctx, client_ssl_context(paths.cert, paths.key, paths.ca))
    peer = server.getpeercert(binary_form=True)
    assert peer is not None
    assert dealer_identity(peer).dealer_id == "D001"
    assert server.version() in {"TLSv1.2", "TLSv1.3"}


def test_tls_handshake_refuses_revoked_dealer_certificate(
    tls_world: tuple[OemPki, ssl.SSLContext, Path],
) -> None:
    _pki, server_ctx, base = tls_world
    paths = base / "revoked"
    client = client_ssl_context(paths / "tls-cert.pem", paths / "tls-key.pem", paths / "ca.pem")
    with pytest.raises(ssl.SSLError, match="revoked"):
        _handshake(server_ctx, client)


def test_tls_handshake_refuses_dealer_certificate_of_a_foreign_pki(
    tls_world: tuple[OemPki, ssl.SSLContext, Path],
) -> None:
    pki, server_ctx, base = tls_world
    foreign = OemPki.ephemeral(datetime.now(UTC)).issue_dealer("D001", "EDGE-F")
    paths = foreign.write_pem_bundle(base / "foreign")
    ca = pki.root.public_bytes(Encoding.PEM)
    client = client_ssl_context(paths.cert, paths.key, ca)
    with pytest.raises(ssl.SSLError):
        _handshake(server_ctx, client)


def test_tls_client_refuses_a_server_outside_the_oem_root(
    tls_world: tuple[OemPki, ssl.SSLContext, Path],
) -> None:
    pki, server_ctx, base = tls_world
    paths = pki.issue_dealer("D001", "EDGE-S").write_pem_bundle(base / "dealer-s")
    foreign_root = OemPki.ephemeral(datetime.now(UTC)).root.public_bytes(Encoding.PEM)
    with pytest.raises(ssl.SSLCertVerificationError):
        _handshake(server_ctx, client_ssl_context(paths.cert, paths.key, foreign_root))
