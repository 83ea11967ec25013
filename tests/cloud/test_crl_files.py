"""The CRLs ``cloud serve`` reads per request: parsed once per publication, never rolled back,
and the root's CRL of issuing CAs applied to every dealer request, not only at the handshake.
"""

from __future__ import annotations

import dataclasses
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from structlog.testing import capture_logs

from forecourt.cloud.auth import authenticate_dealer
from forecourt.cloud.crl_files import CrlFile
from forecourt.cloud.problems import CloudProblem, ProblemCode
from forecourt.trust.crl_reload import ROOT_CRL_FILE, crl_number
from forecourt.trust.oem_pki import OemPki, sign_root_crl
from tests.cloud.world import CloudWorld, build_world

ROOT_PASSWORD = b"root-secret"


@pytest.fixture
def pki(tmp_path: Path) -> OemPki:
    return OemPki.create(tmp_path / "pki", ROOT_PASSWORD, b"ca-secret")


def _dir(pki: OemPki) -> Path:
    assert pki.directory is not None
    return pki.directory


def _rewrite(path: Path, data: bytes) -> None:
    """Publish as the ceremonies do: a new file moved into place (a new inode)."""
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_bytes(data)
    os.replace(temporary, path)


def test_an_unchanged_file_is_not_parsed_again_and_a_new_publication_is_taken(
    pki: OemPki,
) -> None:
    crl_file = CrlFile(_dir(pki) / "crl.pem")
    first = crl_file()
    assert first is not None
    assert crl_file() is first  # same object: nothing read but a stat

    pki.revoke(pki.issue_dealer("D1", "E1").cert.serial_number)
    pki.publish_crl()
    newer = crl_file()
    assert newer is not None and newer is not first
    assert crl_number(newer) == (crl_number(first) or 0) + 1
    assert len(list(newer)) == 1


def test_an_older_or_unreadable_issuing_crl_is_refused_logged_and_the_held_one_stays(
    pki: OemPki,
) -> None:
    path = _dir(pki) / "crl.pem"
    old = path.read_bytes()
    pki.revoke(pki.issue_dealer("D1", "E1").cert.serial_number)
    pki.publish_crl()
    crl_file = CrlFile(path)
    held = crl_file()
    assert held is not None and len(list(held)) == 1

    with capture_logs() as events:
        _rewrite(path, old)  # a rollback would un-revoke D1
        assert crl_file() is held
        _rewrite(path, b"-----BEGIN X509 CRL-----\ngarbage\n-----END X509 CRL-----\n")
        assert crl_file() is held
        assert crl_file() is held  # refused once per file version, not per request
    reasons = [e["reason"] for e in events if e["event"] == "crl_file_refused"]
    assert reasons == ["not_newer", "unreadable"]


def test_a_root_crl_must_be_signed_by_the_root_current_and_newer(pki: OemPki) -> None:
    directory = _dir(pki)
    path = directory / ROOT_CRL_FILE
    crl_file = CrlFile(path, roots=[pki.root])
    assert crl_file() is None  # none published: nothing to apply

    sign_root_crl(directory, ROOT_PASSWORD, [pki.ca.serial_number])
    held = crl_file()
    assert held is not None and [r.serial_number for r in held] == [pki.ca.serial_number]

    forger = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC)
    forged = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(pki.root.subject)
        .last_update(now)
        .next_update(now + timedelta(days=30))
        .add_extension(x509.CRLNumber(99), critical=False)
        .sign(forger, hashes.SHA256())
    )
    with capture_logs() as events:
        _rewrite(path, forged.public_bytes(serialization.Encoding.PEM))  # would un-revoke the CA
        assert crl_file() is held
    assert [e["reason"] for e in events if e["event"] == "crl_file_refused"] == ["refused"]


def test_a_dealer_of_an_issuing_ca_the_root_revoked_is_refused_on_every_request(
    pki: OemPki, sqlite_url: str
) -> None:
    world: CloudWorld = build_world(sqlite_url)
    try:
        dealer = pki.issue_dealer("D1", "edge-d1")
        pem = dealer.cert.public_bytes(serialization.Encoding.PEM).decode()
        crl_file = CrlFile(_dir(pki) / "crl.pem")
        root_crl_file = CrlFile(_dir(pki) / ROOT_CRL_FILE, roots=[pki.root])
        config = dataclasses.replace(
            world.config,
            oem_root=pki.root,
            oem_intermediates=(pki.ca,),
            crl=crl_file,
            root_crl=root_crl_file,
        )
        context = dataclasses.replace(world.context, config=config)  # a cache for this PKI
        now = datetime.now(UTC)
        with pytest.raises(CloudProblem) as unknown:
            authenticate_dealer(context, [pem], now)  # verified; D1 is not in this registry
        assert unknown.value.code is ProblemCode.DEALER_UNKNOWN

        sign_root_crl(_dir(pki), ROOT_PASSWORD, [pki.ca.serial_number])
        with pytest.raises(CloudProblem) as revoked:
            authenticate_dealer(context, [pem], now)  # the remembered verdict does not stand
        assert revoked.value.code is ProblemCode.CLIENT_CERTIFICATE_REVOKED
    finally:
        world.context.db.dispose()
