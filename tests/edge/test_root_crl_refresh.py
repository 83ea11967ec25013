"""The edge keeps the root's CRL of revoked issuing CAs it carries to cars, when it proves itself.

``root-crl.pem`` beside the dealer's ``crl.pem`` is replaced by the cloud's root CRL only if the
pinned OEM root signed it, it is current and newer than the one held; the car connector's reader
(:func:`forecourt.edge.wiring.dealer_crl` with ``root-crl.pem``) is what a car session delivers.
A cloud with no root CRL (none ever published) changes nothing and logs no refusal.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from structlog.testing import capture_logs
from typer.testing import CliRunner

from forecourt.cli import app as cli
from forecourt.cloud.app import create_app
from forecourt.cloud.crl_files import CrlFile
from forecourt.cloud.server import TlsFiles, serve_in_thread
from forecourt.edge.cloud_client import FakeCloudClient
from forecourt.edge.crl import CrlOutcome, CrlRefresher, RefusalReason
from forecourt.edge.wiring import EdgeSettings, build_edge, dealer_crl
from forecourt.ledger.checkpoint import SoftwareNoteSigner, verifier_for
from forecourt.trust.certificates import load_crl
from forecourt.trust.crl_reload import ROOT_CRL_FILE, crl_number
from forecourt.trust.oem_pki import OemPki, sign_root_crl
from tests.cloud.world import CloudWorld, build_world

DEALER = "DE-MUC-01"
ROOT_PASSWORD = b"root-secret"


@pytest.fixture
def pki(tmp_path: Path) -> OemPki:
    return OemPki.create(tmp_path / "pki", ROOT_PASSWORD, b"ca-secret")


def _dir(pki: OemPki) -> Path:
    assert pki.directory is not None
    return pki.directory


def _settings(
    directory: Path, pki: OemPki, cloud_url: str = "https://cloud.invalid"
) -> EdgeSettings:
    paths = pki.issue_dealer(DEALER, "edge-01").write_pem_bundle(
        directory / "tls", name="edge", crl=pki.crl
    )
    return EdgeSettings(
        data_dir=directory / "edge",
        dealer_id=DEALER,
        edge_id="edge-01",
        cloud_url=cloud_url,
        tls_cert=paths.cert,
        tls_key=paths.key,
        tls_ca=paths.ca,
        car_addresses=("127.0.0.1",),  # never contacted: no car session here
        cloud_ledger_vkey=verifier_for("cloud.test/log", SoftwareNoteSigner.generate()).to_vkey(),
    )


def _refresher(settings: EdgeSettings, pki: OemPki, cloud: FakeCloudClient) -> CrlRefresher:
    return CrlRefresher(
        cloud,
        settings.tls_cert.with_name(ROOT_CRL_FILE),
        pki.root,
        lambda: datetime.now(UTC),
        fetch=cloud.fetch_root_crl,
        optional=True,
    )


def _delivered(settings: EdgeSettings) -> bytes | None:
    return dealer_crl(settings, ROOT_CRL_FILE)()


def _der(crl: x509.CertificateRevocationList) -> bytes:
    return crl.public_bytes(Encoding.DER)


def test_a_root_crl_revoking_the_ca_is_taken_and_delivered_to_the_next_car(
    tmp_path: Path, pki: OemPki
) -> None:
    settings = _settings(tmp_path, pki)
    revoked = sign_root_crl(_dir(pki), ROOT_PASSWORD, [pki.ca.serial_number])
    cloud = FakeCloudClient(root_crl=_der(revoked))
    assert _delivered(settings) is None
    refresh = _refresher(settings, pki, cloud).refresh()
    assert refresh.outcome is CrlOutcome.UPDATED and refresh.held_number == 1
    delivered = _delivered(settings)
    assert delivered is not None and load_crl(delivered) == revoked
    again = _refresher(settings, pki, cloud).refresh()
    assert again.outcome is CrlOutcome.UNCHANGED


def _forged(pki: OemPki) -> bytes:
    now = datetime.now(UTC)
    return _der(
        x509.CertificateRevocationListBuilder()
        .issuer_name(pki.root.subject)
        .last_update(now)
        .next_update(now + timedelta(days=9))
        .add_extension(x509.CRLNumber(99), critical=False)
        .sign(ec.generate_private_key(ec.SECP256R1()), hashes.SHA256())
    )


def test_a_forged_older_or_expired_root_crl_is_refused_and_the_held_one_kept(
    tmp_path: Path, pki: OemPki
) -> None:
    settings = _settings(tmp_path, pki)
    older = sign_root_crl(_dir(pki), ROOT_PASSWORD, [0xA1])
    held = sign_root_crl(_dir(pki), ROOT_PASSWORD, [pki.ca.serial_number])
    assert _refresher(settings, pki, FakeCloudClient(root_crl=_der(held))).refresh().outcome is (
        CrlOutcome.UPDATED
    )
    expired = sign_root_crl(
        _dir(pki),
        ROOT_PASSWORD,
        now=datetime.now(UTC) - timedelta(days=30),
        lifetime=timedelta(days=1),
    )
    cases = [
        (_forged(pki), RefusalReason.BAD_SIGNATURE),
        (_der(older), RefusalReason.NOT_NEWER),
        (_der(expired), RefusalReason.EXPIRED),
        (_der(pki.crl), RefusalReason.FOREIGN_ISSUER),  # the issuing CA's CRL is no root CRL
    ]
    for served, reason in cases:
        with capture_logs() as events:
            refresh = _refresher(settings, pki, FakeCloudClient(root_crl=served)).refresh()
        assert (refresh.outcome, refresh.reason) == (CrlOutcome.REFUSED, reason)
        assert [e["reason"] for e in events if e["event"] == "crl_refresh_refused"] == [
            reason.value
        ]
        assert _delivered(settings) == held.public_bytes(Encoding.PEM)


def test_a_cloud_without_a_root_crl_changes_nothing_and_logs_no_refusal(
    tmp_path: Path, pki: OemPki
) -> None:
    settings = _settings(tmp_path, pki)
    with capture_logs() as events:
        refresh = _refresher(settings, pki, FakeCloudClient(root_crl=None)).refresh()
    assert refresh.outcome is CrlOutcome.UNCHANGED
    assert not [e for e in events if e["log_level"] == "warning"]
    assert _delivered(settings) is None


# -- with the real cloud over mutual TLS ----------------------------------------------------------


@pytest.fixture
def world(sqlite_url: str) -> Iterator[CloudWorld]:
    built = build_world(sqlite_url)
    yield built
    built.context.db.dispose()


def test_the_edge_fetches_the_root_crl_from_the_cloud_with_the_issuing_cas(
    world: CloudWorld, pki: OemPki, tmp_path: Path
) -> None:
    root_crl_path = _dir(pki) / ROOT_CRL_FILE

    def root_crl() -> x509.CertificateRevocationList | None:
        return load_crl(root_crl_path.read_bytes()) if root_crl_path.exists() else None

    server = pki.issue_cloud(("localhost", "127.0.0.1")).write_pem_bundle(
        tmp_path / "server", name="server"
    )
    files = TlsFiles(server.cert, server.key, server.ca, crl=_dir(pki) / "crl.pem")
    config = dataclasses.replace(world.config, crl=lambda: pki.crl, root_crl=root_crl)
    app = create_app(config, dataclasses.replace(world.context, config=config))
    with serve_in_thread(app, files, staff_without_certificate=True) as url:
        edge = build_edge(_settings(tmp_path, pki, cloud_url=url))
        try:
            quiet = edge.refresh_crl()  # no root CRL in the cloud yet: nothing to carry
            assert quiet is not None and _delivered(edge.settings) is None
            sign_root_crl(_dir(pki), ROOT_PASSWORD, [0xA1])  # another CA revoked
            assert edge.refresh_crl() is not None
            delivered = _delivered(edge.settings)
            assert delivered is not None and crl_number(load_crl(delivered)) == 1
            assert edge.root_crl is not None
            assert edge.root_crl.refresh().outcome is CrlOutcome.UNCHANGED  # 304 by ETag
        finally:
            edge.close()


def test_the_refresh_crl_command_takes_the_root_crl_too(
    world: CloudWorld, pki: OemPki, tmp_path: Path
) -> None:
    server = pki.issue_cloud(("localhost", "127.0.0.1")).write_pem_bundle(
        tmp_path / "server", name="server"
    )
    files = TlsFiles(server.cert, server.key, server.ca, crl=_dir(pki) / "crl.pem")
    sign_root_crl(_dir(pki), ROOT_PASSWORD, [0xA1])
    config = dataclasses.replace(
        world.config,
        crl=lambda: pki.crl,
        root_crl=CrlFile(_dir(pki) / ROOT_CRL_FILE, roots=[pki.root]),
    )
    app = create_app(config, dataclasses.replace(world.context, config=config))
    with serve_in_thread(app, files, staff_without_certificate=True) as url:
        settings = _settings(tmp_path, pki, cloud_url=url)
        command = [
            "edge", "refresh-crl", "--dealer-id", DEALER, "--cloud-url", url,
            "--tls-dir", str(settings.tls_cert.parent), "--data-dir", str(settings.data_dir),
        ]  # fmt: skip
        result = CliRunner().invoke(cli, command)
        assert result.exit_code == 0, result.output
        assert str(settings.tls_cert.parent / ROOT_CRL_FILE) in result.output
        delivered = _delivered(settings)
        assert delivered is not None and crl_number(load_crl(delivered)) == 1

        again = CliRunner().invoke(cli, command)  # nothing newer: both unchanged
        assert again.exit_code == 0, again.output
        assert again.output.count("unchanged") == 2, again.output
        assert _delivered(settings) == delivered
