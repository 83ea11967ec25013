"""``forecourt bundle inspect`` prints the bundle and VERIFIED / REFUSED with the reason."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog
from typer.testing import CliRunner

from forecourt.cli import app
from forecourt.trust.canonical import canonical_bytes

from .world import NOW, make_world

AT = ["--at", NOW.strftime("%Y-%m-%dT%H:%M:%S")]


@pytest.fixture(autouse=True)
def _reset_logging() -> Iterator[None]:
    """The CLI configures structlog on the runner's captured stderr; undo it after each test."""
    yield
    structlog.reset_defaults()


def _write(tmp_path: Path) -> tuple[Path, Path, Path]:
    world = make_world()
    bundle = tmp_path / "bundle.json"
    bundle.write_bytes(world.bundle())
    director = tmp_path / "director-root.json"
    director.write_bytes(canonical_bytes(world.director.root.to_dict()))
    image = tmp_path / "image-root.json"
    image.write_bytes(canonical_bytes(world.images.root.to_dict()))
    return bundle, director, image


def test_inspect_prints_bundle_and_verified(tmp_path: Path) -> None:
    bundle, director, image = _write(tmp_path)
    result = CliRunner(env={"COLUMNS": "200"}).invoke(
        app,
        [
            "bundle",
            "inspect",
            str(bundle),
            "--root",
            str(director),
            "--image-root",
            str(image),
            *AT,
        ],
    )
    assert result.exit_code == 0, result.output
    assert "TBX0001" in result.output and "connected_services" in result.output
    assert "VERIFIED" in result.output


def test_inspect_against_wrong_root_says_refused_with_reason(tmp_path: Path) -> None:
    bundle, _director, image = _write(tmp_path)
    result = CliRunner(env={"COLUMNS": "200"}).invoke(
        app,
        ["bundle", "inspect", str(bundle), "--root", str(image), "--image-root", str(image), *AT],
    )
    assert result.exit_code == 1
    assert "REFUSED" in result.output and "signature_threshold_not_met" in result.output


PKI_ENV = {
    "COLUMNS": "200",
    "FORECOURT_PKI_ROOT_PASSWORD": "root-secret",
    "FORECOURT_PKI_CA_PASSWORD": "ca-secret",
}


def test_pki_commands_issue_show_verified_then_revoked(tmp_path: Path) -> None:
    runner = CliRunner(env=PKI_ENV)
    pki_dir = str(tmp_path / "pki")
    assert runner.invoke(app, ["pki", "init", pki_dir]).exit_code == 0
    issued = runner.invoke(app, ["pki", "issue-dealer", pki_dir, "--dealer", "D1", "--edge", "E1"])
    assert issued.exit_code == 0, issued.output
    found = re.search(r"^serial ([0-9a-f]+)$", issued.output, re.MULTILINE)
    assert found is not None, issued.output
    serial = found.group(1)
    bundle = tmp_path / "pki" / "dealers" / "D1-E1"
    show = [
        "pki",
        "show",
        str(bundle / "tls-cert.pem"),
        "--root",
        str(bundle / "ca.pem"),
        "--chain",
        str(tmp_path / "pki" / "ca.pem"),
        "--crl",
        str(tmp_path / "pki" / "crl.pem"),
    ]
    shown = runner.invoke(app, show)
    assert shown.exit_code == 0, shown.output
    assert "UID=D1" in shown.output and "clientAuth" in shown.output and "VERIFIED" in shown.output
    assert runner.invoke(app, ["pki", "revoke", pki_dir, serial]).exit_code == 0
    refused = runner.invoke(app, show)
    assert refused.exit_code == 1
    assert "REFUSED" in refused.output and "certificate_revoked" in refused.output


def test_pki_issue_cloud_outside_constraints_fails_and_wrong_password_is_named(
    tmp_path: Path,
) -> None:
    runner = CliRunner(env=PKI_ENV)
    pki_dir = str(tmp_path / "pki")
    assert runner.invoke(app, ["pki", "init", pki_dir]).exit_code == 0
    ok = runner.invoke(app, ["pki", "issue-cloud", pki_dir])
    assert ok.exit_code == 0, ok.output
    assert (tmp_path / "pki" / "cloud" / "tls-key.pem").exists()
    outside = runner.invoke(app, ["pki", "issue-cloud", pki_dir, "--host", "bank.example"])
    assert outside.exit_code == 2 and "pki_error" in outside.output
    wrong = runner.invoke(app, ["pki", "crl", pki_dir, "--ca-password", "nope"])
    assert wrong.exit_code == 2 and "key_wrong_password" in wrong.output
