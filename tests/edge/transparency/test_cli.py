"""``forecourt edge transparency-report`` over a seeded edge data directory."""

from __future__ import annotations

import io
import json
from pathlib import Path

from pypdf import PdfReader
from typer.testing import CliRunner

from forecourt.cli import app
from forecourt.core import Market, to_json
from forecourt.demo.data import generate_world
from tests.edge.operators.conftest import DEALER
from tests.edge.transparency.conftest import VINS, Seeded


def profile_file(directory: Path) -> Path:
    path = directory / "profile.json"
    profile = generate_world(vehicles=0).profile(Market.EU)
    path.write_text(json.dumps({"version": 7, "profile": to_json(profile)}), encoding="utf-8")
    return path


def run(seeded: Seeded, *args: str) -> tuple[int, str]:
    base = ["edge", "transparency-report", "--dealer-id", DEALER, "--data-dir"]
    result = CliRunner().invoke(app, [*base, str(seeded.tmp_path), *args])
    return result.exit_code, result.output


def test_writes_the_json_report_of_the_period_asked_for(seeded: Seeded, tmp_path: Path) -> None:
    out = tmp_path / "q1.json"
    code, output = run(
        seeded, "--from", "2025-01-01", "--to", "2025-04-01", "--format", "json",
        "--out", str(out), "--profile", str(profile_file(tmp_path)),
    )  # fmt: skip
    assert code == 0, output
    doc = json.loads(out.read_text(encoding="utf-8"))
    assert doc["activations"]["totals"]["done"] == 6
    assert doc["compliance_profile"]["version"] == 7
    # the data directory holds no ledger key here: the newest checkpoint is used, flagged
    assert doc["ledger_checkpoint"]["covers_period_end"] is False
    assert not any(vin in out.read_text(encoding="utf-8") for vin in VINS)


def test_writes_a_pdf(seeded: Seeded, tmp_path: Path) -> None:
    out = tmp_path / "q1.pdf"
    code, output = run(
        seeded, "--from", "2025-01-01", "--to", "2025-04-01", "--format", "pdf",
        "--out", str(out), "--profile", str(profile_file(tmp_path)),
    )  # fmt: skip
    assert code == 0, output
    data = out.read_bytes()
    assert data.startswith(b"%PDF-")
    assert len(PdfReader(io.BytesIO(data)).pages) == 3


def test_without_dates_the_last_full_quarter_is_reported(seeded: Seeded, tmp_path: Path) -> None:
    out = tmp_path / "last.json"
    code, output = run(
        seeded, "--format", "json", "--out", str(out), "--profile", str(profile_file(tmp_path))
    )
    assert code == 0, output
    period = json.loads(out.read_text(encoding="utf-8"))["period"]
    assert period["start"][5:] in {"01-01", "04-01", "07-01", "10-01"}
    assert period["end_exclusive"][5:] in {"01-01", "04-01", "07-01", "10-01"}


def test_bad_input_exits_2_naming_the_problem_and_writes_nothing(
    seeded: Seeded, tmp_path: Path
) -> None:
    out = tmp_path / "never.html"
    profile = str(profile_file(tmp_path))
    cases = [
        (("--from", "2025-04-01", "--to", "2025-01-01"), "on or before it starts"),
        (("--from", "2025-01-01"), "give both --from and --to"),
        (("--from", "2025-01-01", "--to", "2025-04-01", "--format", "csv"), "--format must be"),
    ]
    for args, message in cases:
        code, output = run(seeded, *args, "--out", str(out), "--profile", profile)
        assert code == 2, output
        assert message in output
    bad_profile = tmp_path / "bad.json"
    bad_profile.write_text('{"version": 1}', encoding="utf-8")
    code, output = run(seeded, "--out", str(out), "--profile", str(bad_profile))
    assert code == 2 and "no 'profile' object" in output
    assert not out.exists()
    assert list(tmp_path.glob(".never.html*")) == []


def test_a_directory_without_an_edge_database_is_refused(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    result = CliRunner().invoke(
        app,
        [
            "edge", "transparency-report", "--dealer-id", DEALER, "--data-dir", str(empty),
            "--out", str(tmp_path / "r.html"), "--profile", str(profile_file(tmp_path)),
        ],
    )  # fmt: skip
    assert result.exit_code == 2
    assert "no edge database" in result.output
    assert not (empty / "edge.sqlite3").exists()  # nothing created by asking
