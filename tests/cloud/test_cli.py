"""``forecourt cloud`` commands: feed import report and exit code, tokens, dealer certificates."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from forecourt.cli import app
from forecourt.core import to_json
from forecourt.demo.data import generate_world
from forecourt.trust.certificates import dealer_identity, load_certificate
from forecourt.trust.oem_pki import OemPki
from tests.cloud.world import NOW, CloudWorld, build_world

runner = CliRunner()


def _report(output: str) -> dict[str, object]:
    """The JSON report, after whatever the migrations and logs printed before it."""
    return json.loads(output[output.index("{\n") :])  # type: ignore[no-any-return]


def test_import_vehicles_reports_rows_and_exits_1_on_a_bad_row(
    tmp_path: Path, sqlite_url: str
) -> None:
    cars = [to_json(c) for c in generate_world(seed=5, vehicles=2, reference_time=NOW).vehicles]
    for car in cars:
        car.update({"dealer_id": None})  # type: ignore[union-attr]
    feed = tmp_path / "feed.json"
    feed.write_text(json.dumps(cars))
    ok = runner.invoke(app, ["cloud", "import-vehicles", str(feed), "--database-url", sqlite_url])
    assert ok.exit_code == 0, ok.output
    assert _report(ok.output)["created"] == 2
    feed.write_text(json.dumps([*cars, {"vin": "nope"}]))
    bad = runner.invoke(app, ["cloud", "import-vehicles", str(feed), "--database-url", sqlite_url])
    assert bad.exit_code == 1
    assert _report(bad.output)["unchanged"] == 2


def test_token_and_dealer_certificate_commands(tmp_path: Path, sqlite_url: str) -> None:
    world: CloudWorld = build_world(sqlite_url, vehicles=1)
    world.context.db.dispose()
    token = runner.invoke(
        app, ["cloud", "token", "ops", "--scope", "read", "--database-url", sqlite_url]
    )
    assert token.exit_code == 0 and token.output.splitlines()[-1].startswith("fct_")
    OemPki.create(tmp_path / "pki", b"root-password", b"ca-password", now=NOW)
    issued = runner.invoke(
        app,
        [
            "cloud",
            "dealer-cert",
            "DE-MUC-01",
            "edge-1",
            "--out",
            str(tmp_path / "edge"),
            "--pki",
            str(tmp_path / "pki"),
            "--database-url",
            sqlite_url,
        ],
        env={"FORECOURT_PKI_CA_PASSWORD": "ca-password"},
    )
    assert issued.exit_code == 0, issued.output
    cert = load_certificate((tmp_path / "edge" / "edge-cert.pem").read_bytes())
    assert dealer_identity(cert).dealer_id == "DE-MUC-01"
    unknown = runner.invoke(
        app,
        [
            "cloud",
            "dealer-cert",
            "XX-NONE-01",
            "edge-1",
            "--out",
            str(tmp_path / "x"),
            "--pki",
            str(tmp_path / "pki"),
            "--database-url",
            sqlite_url,
        ],
        env={"FORECOURT_PKI_CA_PASSWORD": "ca-password"},
    )
    assert unknown.exit_code == 1 and "dealer_unknown" in unknown.output


def test_serve_refuses_several_workers_on_sqlite(tmp_path: Path, sqlite_url: str) -> None:
    # One writer at a time: worker processes would queue on SQLite's lock, so this is refused
    # before anything is read, issued or bound.
    (tmp_path / "pki").mkdir()
    (tmp_path / "keys.json").write_text("{}")
    result = runner.invoke(
        app,
        ["cloud", "serve", "--pki", str(tmp_path / "pki"), "--keys", str(tmp_path / "keys.json"),
         "--tls-dir", str(tmp_path / "tls"), "--database-url", sqlite_url, "--workers", "2"],
    )  # fmt: skip
    assert result.exit_code == 2
    assert "--workers above 1 needs PostgreSQL" in result.output
    assert not (tmp_path / "tls").exists()
