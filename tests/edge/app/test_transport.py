"""``edge serve`` exposes the console over HTTPS, or plain HTTP on loopback only."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from forecourt.cli import app
from forecourt.edge.app.transport import (
    InsecureBindRefused,
    TlsMaterialMissing,
    console_transport,
)


def test_a_lan_address_without_tls_is_refused() -> None:
    with pytest.raises(InsecureBindRefused):
        console_transport("192.168.10.5", 8443)
    with pytest.raises(InsecureBindRefused):
        console_transport("0.0.0.0", 8443)


def test_plain_http_on_the_lan_only_when_asked_for_explicitly() -> None:
    transport = console_transport("192.168.10.5", 8080, insecure_http=True)
    assert (transport.tls, transport.url) == (False, "http://192.168.10.5:8080")


def test_loopback_may_serve_plain_http() -> None:
    assert console_transport("127.0.0.1", 8080).url == "http://127.0.0.1:8080"
    assert console_transport("::1", 8080).url == "http://[::1]:8080"


def test_with_a_certificate_and_key_the_console_is_https(tmp_path: Path) -> None:
    cert, key = tmp_path / "console.pem", tmp_path / "console-key.pem"
    cert.write_text("cert")
    key.write_text("key")
    transport = console_transport("192.168.10.5", 8443, tls_cert=cert, tls_key=key)
    assert (transport.tls, transport.url) == (True, "https://192.168.10.5:8443")


def test_a_certificate_without_its_key_or_a_missing_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(TlsMaterialMissing):
        console_transport("192.168.10.5", 8443, tls_cert=tmp_path / "c.pem")
    with pytest.raises(TlsMaterialMissing):
        console_transport(
            "192.168.10.5", 8443, tls_cert=tmp_path / "c.pem", tls_key=tmp_path / "k.pem"
        )


def test_edge_serve_on_a_lan_address_without_tls_exits_before_starting(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app,
        [
            "edge", "serve", "--dealer-id", "dealer-a", "--car", "127.0.0.1",
            "--cloud-ledger-vkey", "x", "--data-dir", str(tmp_path), "--host", "10.1.2.3",
        ],
    )  # fmt: skip
    assert result.exit_code == 2
    assert "refusing plain HTTP on 10.1.2.3" in result.output
    assert not (tmp_path / "edge.sqlite3").exists()  # nothing was started
