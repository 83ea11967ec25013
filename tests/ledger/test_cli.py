"""``forecourt ledger verify`` works from files alone and names the first bad index."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from forecourt.ledger.cli import app
from forecourt.ledger.export import write_export
from forecourt.ledger.log import TransparencyLog
from forecourt.ledger.wire import b64e, consistency_to_json, inclusion_to_json
from tests.ledger.helpers import fill, make_log

runner = CliRunner()


def _files(tmp_path: Path) -> tuple[TransparencyLog, Path, Path]:
    log = make_log(f"sqlite:///{tmp_path / 'edge.sqlite3'}")
    fill(log, 10)
    (tmp_path / "cp10.note").write_text(log.issue_checkpoint().render())
    fill(log, 7)
    (tmp_path / "cp17.note").write_text(log.issue_checkpoint().render())
    key = tmp_path / "log.vkey"
    key.write_text(log.verifier.to_vkey())
    export = tmp_path / "log.jsonl"
    with export.open("w") as f:
        write_export(log.store, log.origin, f)
    return log, key, export


def test_inclusion_and_consistency_verify_from_files(tmp_path: Path) -> None:
    log, key, _ = _files(tmp_path)
    proof = inclusion_to_json(log.store.inclusion_proof(3, 17))
    proof["payload"] = b64e(log.store.entries(3, 4)[0].payload)
    (tmp_path / "inc.json").write_text(json.dumps(proof))
    ok = runner.invoke(
        app,
        [
            "verify",
            "inclusion",
            str(tmp_path / "inc.json"),
            "--checkpoint",
            str(tmp_path / "cp17.note"),
            "--key",
            str(key),
        ],
    )
    assert ok.exit_code == 0, ok.output
    proof["payload"] = b64e(b"forged")
    (tmp_path / "inc.json").write_text(json.dumps(proof))
    bad = runner.invoke(
        app,
        [
            "verify",
            "inclusion",
            str(tmp_path / "inc.json"),
            "--checkpoint",
            str(tmp_path / "cp17.note"),
            "--key",
            str(key),
        ],
    )
    assert bad.exit_code == 1
    (tmp_path / "cons.json").write_text(
        json.dumps(consistency_to_json(log.store.consistency_proof(10, 17)))
    )
    args = [
        "verify",
        "consistency",
        str(tmp_path / "cp10.note"),
        str(tmp_path / "cp17.note"),
        "--proof",
        str(tmp_path / "cons.json"),
        "--key",
        str(key),
    ]
    assert runner.invoke(app, args).exit_code == 0


def test_verify_log_passes_an_intact_export_and_names_an_altered_entry(tmp_path: Path) -> None:
    _, key, export = _files(tmp_path)
    ok = runner.invoke(app, ["verify", "log", str(export), "--key", str(key)])
    assert ok.exit_code == 0, ok.output
    assert "17 entries" in ok.output
    lines = export.read_text().splitlines()
    entry = json.loads(lines[1 + 12])
    entry["payload"] = b64e(b'{"v":1}')
    lines[1 + 12] = json.dumps(entry)
    export.write_text("\n".join(lines) + "\n")
    bad = runner.invoke(app, ["verify", "log", str(export), "--key", str(key)])
    assert bad.exit_code == 1
    assert "first bad index: 12" in bad.output


def test_verify_log_names_a_deleted_entry(tmp_path: Path) -> None:
    _, key, export = _files(tmp_path)
    lines = export.read_text().splitlines()
    del lines[1 + 4]
    export.write_text("\n".join(lines) + "\n")
    bad = runner.invoke(app, ["verify", "log", str(export), "--key", str(key)])
    assert bad.exit_code == 1
    assert "first bad index: 4" in bad.output


def test_verify_log_reports_entries_no_checkpoint_covers(tmp_path: Path) -> None:
    log, key, _ = _files(tmp_path)
    fill(log, 3)
    export = tmp_path / "later.jsonl"
    with export.open("w") as f:
        write_export(log.store, log.origin, f)
    result = runner.invoke(app, ["verify", "log", str(export), "--key", str(key)])
    assert result.exit_code == 2
    assert "entries [17, 20) are covered by no signed checkpoint" in result.output
    allowed = runner.invoke(
        app, ["verify", "log", str(export), "--key", str(key), "--allow-unanchored"]
    )
    assert allowed.exit_code == 0
