"""The edge replaces the CRL it carries to cars with the cloud's, only when the CRL proves itself.

The refresh is driven directly (no background loop, no sleeps): against the in-memory cloud for
each refusal, and against the real cloud over mutual TLS for the route, the edge's start, its
background step and ``forecourt edge refresh-crl``. The car connector's reader
(:func:`forecourt.edge.wiring.dealer_crl`) is what a car session delivers; each test reads the
file through it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, MutableMapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from structlog.testing import capture_logs
from typer.testing import CliRunner

from forecourt.cli import app as cli
from forecourt.cloud.app import create_app
from forecourt.cloud.server import serve_in_thread
from forecourt.edge.cloud_client import (
    CloudUnreachable,
    FakeCloudClient,
    HttpCloudClient,
    MutualTls,
)
from forecourt.edge.crl import CrlOutcome, CrlRefresher, RefusalReason
from forecourt.edge.wiring import EdgeSettings, build_edge, dealer_crl, issuing_ca
from forecourt.ledger.checkpoint import SoftwareNoteSigner, verifier_for
from forecourt.trust.crl_reload import crl_etag, crl_number
from forecourt.trust.oem_pki import OemPki
from tests.cloud.world import NOW, CloudWorld, build_world, edge_name

DEALER = "DE-MUC-01"


def _settings(
    directory: Path, pki: OemPki, *, cloud_url: str = "https://cloud.invalid"
) -> EdgeSettings:
    """An edge's settings over a dealer bundle holding ``pki``'s current CRL as crl.pem."""
    paths = pki.issue_dealer(DEALER, edge_name(DEALER), now=NOW).write_pem_bundle(
        directory / "tls", name="edge", crl=pki.crl
    )
    return EdgeSettings(
        data_dir=directory,
        dealer_id=DEALER,
        edge_id=edge_name(DEALER),
        cloud_url=cloud_url,
        tls_cert=paths.cert,
        tls_key=paths.key,
        tls_ca=paths.ca,
        car_addresses=("127.0.0.1",),  # never contacted: no car session here
        cloud_ledger_vkey=verifier_for("cloud.test/log", SoftwareNoteSigner.generate()).to_vkey(),
        clock=lambda: NOW,
    )


def _held(settings: EdgeSettings) -> x509.CertificateRevocationList:
    delivered = dealer_crl(settings)()
    assert delivered is not None
    return x509.load_pem_x509_crl(delivered)


def _der(crl: x509.CertificateRevocationList) -> bytes:
    return crl.public_bytes(Encoding.DER)


def _revoke_one(pki: OemPki, now: datetime = NOW) -> tuple[int, x509.CertificateRevocationList]:
    serial = pki.issue_dealer(DEALER, edge_name(DEALER), now=NOW).cert.serial_number
    pki.revoke(serial, now=NOW)
    return serial, pki.publish_crl(now)


@pytest.fixture
def pki() -> OemPki:
    return OemPki.ephemeral(now=NOW)


@pytest.fixture
def settings(tmp_path: Path, pki: OemPki) -> EdgeSettings:
    return _settings(tmp_path, pki)


def _refresher(settings: EdgeSettings, cloud: FakeCloudClient) -> CrlRefresher:
    return CrlRefresher(
        cloud, settings.tls_cert.parent / "crl.pem", issuing_ca(settings), settings.clock
    )


# -- with the in-memory cloud ---------------------------------------------------------------------


def test_a_newer_crl_replaces_the_held_one_and_the_next_car_session_delivers_it(
    settings: EdgeSettings, pki: OemPki
) -> None:
    serial, newer = _revoke_one(pki)
    cloud = FakeCloudClient(crl=_der(newer))
    refresh = _refresher(settings, cloud).refresh()
    assert (refresh.outcome, refresh.previous_number, refresh.held_number) == (
        CrlOutcome.UPDATED, 1, 2,
    )  # fmt: skip
    held = _held(settings)
    assert _der(held) == _der(newer)
    assert held.get_revoked_certificate_by_serial_number(serial) is not None
    crl_file = settings.tls_cert.parent / "crl.pem"
    assert [p.name for p in crl_file.parent.iterdir() if p.name.startswith(".")] == []
    assert crl_file.stat().st_mode & 0o777 == 0o644


def test_the_same_crl_is_not_fetched_again_the_etag_of_the_held_one_is_sent(
    settings: EdgeSettings, pki: OemPki
) -> None:
    cloud = FakeCloudClient(crl=_der(pki.crl))
    before = (settings.tls_cert.parent / "crl.pem").stat().st_mtime_ns
    refresh = _refresher(settings, cloud).refresh()
    assert refresh.outcome is CrlOutcome.UNCHANGED and refresh.held_number == 1
    assert (settings.tls_cert.parent / "crl.pem").stat().st_mtime_ns == before
    assert crl_etag(_der(_held(settings))) == crl_etag(_der(pki.crl))


def _refused(
    settings: EdgeSettings, served: bytes, reason: RefusalReason
) -> list[MutableMapping[str, Any]]:
    """Refresh from a cloud serving ``served``: refused for ``reason``, the file untouched."""
    crl_file = settings.tls_cert.parent / "crl.pem"
    before = crl_file.read_bytes()
    with capture_logs() as events:
        refresh = _refresher(settings, FakeCloudClient(crl=served)).refresh()
    assert (refresh.outcome, refresh.reason) == (CrlOutcome.REFUSED, reason), refresh
    assert crl_file.read_bytes() == before
    logged = [e for e in events if e["event"] == "crl_refresh_refused"]
    assert [e["reason"] for e in logged] == [reason.value]
    return logged


def test_an_older_crl_is_refused_so_a_rollback_cannot_unrevoke(
    settings: EdgeSettings, pki: OemPki
) -> None:
    old = pki.crl
    _revoke_one(pki)
    (settings.tls_cert.parent / "crl.pem").write_bytes(pki.crl.public_bytes(Encoding.PEM))
    [event] = _refused(settings, _der(old), RefusalReason.NOT_NEWER)
    assert event["held_number"] == 2


def test_an_expired_crl_is_refused_and_the_held_one_kept(
    settings: EdgeSettings, pki: OemPki
) -> None:
    _, expired = _revoke_one(pki, now=NOW - timedelta(days=30))  # newer number, nextUpdate past
    _refused(settings, _der(expired), RefusalReason.EXPIRED)


def _forged(issuer: x509.Name, key: ec.EllipticCurvePrivateKey, number: int) -> bytes:
    return (
        x509.CertificateRevocationListBuilder()
        .issuer_name(issuer)
        .last_update(NOW)
        .next_update(NOW + timedelta(days=7))
        .add_extension(x509.CRLNumber(number), critical=False)
        .sign(key, hashes.SHA256())
        .public_bytes(Encoding.DER)
    )


def test_a_crl_in_the_issuing_cas_name_but_not_signed_by_it_is_refused(
    settings: EdgeSettings, pki: OemPki
) -> None:
    forged = _forged(pki.ca.subject, ec.generate_private_key(ec.SECP256R1()), 99)
    _refused(settings, forged, RefusalReason.BAD_SIGNATURE)


def test_a_crl_of_another_issuer_is_refused(settings: EdgeSettings) -> None:
    other = x509.Name.from_rfc4514_string("CN=Another CA,O=Elsewhere")
    _refused(
        settings,
        _forged(other, ec.generate_private_key(ec.SECP256R1()), 99),
        RefusalReason.FOREIGN_ISSUER,
    )


def test_bytes_that_are_no_crl_are_refused(settings: EdgeSettings) -> None:
    _refused(settings, b"<html>gateway timeout</html>", RefusalReason.MALFORMED)


def test_a_cloud_without_a_crl_leaves_the_held_one(settings: EdgeSettings) -> None:
    crl_file = settings.tls_cert.parent / "crl.pem"
    before = crl_file.read_bytes()
    refresh = _refresher(settings, FakeCloudClient(crl=None)).refresh()
    assert (refresh.outcome, refresh.reason) == (CrlOutcome.REFUSED, RefusalReason.CLOUD_REFUSED)
    assert "crl_unavailable" in refresh.detail
    assert crl_file.read_bytes() == before


def test_an_edge_without_a_crl_file_takes_the_clouds(tmp_path: Path, pki: OemPki) -> None:
    settings = _settings(tmp_path, pki)
    (settings.tls_cert.parent / "crl.pem").unlink()
    assert dealer_crl(settings)() is None
    refresh = _refresher(settings, FakeCloudClient(crl=_der(pki.crl))).refresh()
    assert (refresh.outcome, refresh.previous_number, refresh.held_number) == (
        CrlOutcome.UPDATED, None, 1,
    )  # fmt: skip
    assert _der(_held(settings)) == _der(pki.crl)


def test_an_unreachable_cloud_raises_and_leaves_the_held_crl(settings: EdgeSettings) -> None:
    before = (settings.tls_cert.parent / "crl.pem").read_bytes()
    with pytest.raises(CloudUnreachable):
        _refresher(settings, FakeCloudClient(online=False)).refresh()
    assert (settings.tls_cert.parent / "crl.pem").read_bytes() == before


# -- with the real cloud over mutual TLS ----------------------------------------------------------


@pytest.fixture
def world(sqlite_url: str) -> Iterator[CloudWorld]:
    built = build_world(sqlite_url)
    yield built
    built.context.db.dispose()


@pytest.fixture
def cloud_url(world: CloudWorld, tmp_path: Path) -> Iterator[str]:
    files = world.tls_files(tmp_path / "server")
    with serve_in_thread(world.app(), files, staff_without_certificate=True) as url:
        yield url


def test_the_http_client_fetches_the_der_crl_and_sends_if_none_match(
    world: CloudWorld, cloud_url: str, tmp_path: Path
) -> None:
    settings = _settings(tmp_path, world.pki, cloud_url=cloud_url)
    client = HttpCloudClient(
        cloud_url, tls=MutualTls(settings.tls_cert, settings.tls_key, settings.tls_ca)
    )
    try:
        fetched = client.fetch_crl()
        assert fetched == _der(world.pki.crl)
        assert client.fetch_crl(crl_etag(fetched)) is None
    finally:
        client.close()


def test_the_edge_refreshes_its_crl_at_start_and_in_its_background_step(
    world: CloudWorld, cloud_url: str, tmp_path: Path
) -> None:
    settings = _settings(tmp_path, world.pki, cloud_url=cloud_url)
    first, _ = _revoke_one(world.pki)  # published after the edge's bundle was written
    edge = build_edge(settings)
    try:
        edge.start(background=False)
        assert _held(settings).get_revoked_certificate_by_serial_number(first) is not None
        assert crl_number(_held(settings)) == 2
        second, _ = _revoke_one(world.pki)
        refresh = edge.refresh_crl()
        assert refresh is not None and refresh.outcome is CrlOutcome.UPDATED
        assert _held(settings).get_revoked_certificate_by_serial_number(second) is not None
        again = edge.refresh_crl()
        assert again is not None and again.outcome is CrlOutcome.UNCHANGED
    finally:
        edge.close()


def _cli(settings: EdgeSettings, url: str) -> tuple[int, str]:
    result = CliRunner().invoke(
        cli,
        [
            "edge", "refresh-crl", "--dealer-id", DEALER, "--cloud-url", url,
            "--tls-dir", str(settings.tls_cert.parent), "--data-dir", str(settings.data_dir),
        ],
    )  # fmt: skip
    return result.exit_code, result.output


def test_refresh_crl_command_prints_what_changed(
    world: CloudWorld, cloud_url: str, tmp_path: Path
) -> None:
    settings = _settings(tmp_path, world.pki, cloud_url=cloud_url)
    _revoke_one(world.pki)
    code, out = _cli(settings, cloud_url)
    assert code == 0, out
    assert "CRL updated: number 1 -> 2" in out
    code, out = _cli(settings, cloud_url)
    assert code == 0, out
    assert "CRL unchanged: number 2" in out


def test_refresh_crl_command_exits_3_when_the_cloud_has_no_crl(
    world: CloudWorld, tmp_path: Path
) -> None:
    config = dataclasses.replace(world.config, crl=lambda: None)
    context = dataclasses.replace(world.context, config=config)
    files = world.tls_files(tmp_path / "server")
    with serve_in_thread(create_app(config, context), files, staff_without_certificate=True) as url:
        settings = _settings(tmp_path, world.pki, cloud_url=url)
        before = (settings.tls_cert.parent / "crl.pem").read_bytes()
        code, out = _cli(settings, url)
    assert code == 3, out
    assert "cloud_refused" in out and "crl_unavailable" in out
    assert (settings.tls_cert.parent / "crl.pem").read_bytes() == before


def test_refresh_crl_command_exits_5_when_the_cloud_is_unreachable(
    world: CloudWorld, tmp_path: Path
) -> None:
    settings = _settings(tmp_path, world.pki)
    code, out = _cli(settings, "https://127.0.0.1:9")
    assert code == 5, out
