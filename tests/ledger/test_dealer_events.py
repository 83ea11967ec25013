"""Dealer-level records (``"type": "dealer-event"``): one canonical encoding, car records unchanged,
tampering found in logs that mix both, shredding a person's salts leaves the tree valid."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from forecourt.ledger.audit import audit_store
from forecourt.ledger.cli import app
from forecourt.ledger.entry import (
    ActivityRecord,
    DealerEventKind,
    DealerEventRecord,
    EdgeCheckpointRecord,
    EventKind,
    NetworkEnvironment,
    commit,
    decode_record,
    open_commitment,
)
from forecourt.ledger.errors import EntryError, TamperError
from forecourt.ledger.export import write_export
from forecourt.ledger.log import TransparencyLog
from forecourt.ledger.repository import entry_leaf_hash
from forecourt.ledger.wire import b64e
from tests.ledger.helpers import fill, make_log

AT = datetime(2025, 3, 1, 9, 0, 5, tzinfo=UTC)
EVIDENCE = "ef" * 32
REVIEW_ID = "3f2b8c1e-9a4d-4e7b-8c2a-1d5e6f708192"


def operator_created(**changes: Any) -> DealerEventRecord:
    fields: dict[str, Any] = {
        "timestamp": AT,
        "kind": DealerEventKind.OPERATOR_CREATED,
        "dealer_id": "D-001",
        "edge_id": "edge-001",
        "evidence_hash": EVIDENCE,
        "role": "technician",
        "commitments": {"actor_id": "aa" * 32, "subject_id": "bb" * 32},
    }
    return DealerEventRecord(**{**fields, **changes})


def review_approved(**changes: Any) -> DealerEventRecord:
    fields: dict[str, Any] = {
        "kind": DealerEventKind.REVIEW_APPROVED,
        "role": None,
        "review_kind": "batch_activation",
        "review_id": REVIEW_ID,
    }
    return operator_created(**{**fields, **changes})


def test_dealer_event_has_one_canonical_encoding() -> None:
    assert operator_created().encode() == (
        b'{"commitments":{"actor_id":"' + b"aa" * 32 + b'","subject_id":"' + b"bb" * 32 + b'"},'
        b'"dealer_id":"D-001","edge_id":"edge-001","evidence_hash":"' + EVIDENCE.encode() + b'",'
        b'"kind":"operator-created","review_id":null,"review_kind":null,"role":"technician",'
        b'"timestamp":"2025-03-01T09:00:05.000000Z","type":"dealer-event","v":1}'
    )


@pytest.mark.parametrize("record", [operator_created(), review_approved()])
def test_dealer_event_round_trips_through_its_leaf_payload(record: DealerEventRecord) -> None:
    assert decode_record(record.encode()) == record


def test_timestamps_in_other_zones_encode_as_the_same_utc_instant() -> None:
    cet = AT.astimezone(timezone(timedelta(hours=1)))
    assert operator_created(timestamp=cet).encode() == operator_created().encode()


@pytest.mark.parametrize(
    "rewrite",
    [
        lambda d: json.dumps(d, sort_keys=True),  # spaces after separators
        lambda d: json.dumps(d, separators=(",", ":")),  # keys not sorted
        lambda d: json.dumps(
            {**d, "timestamp": "2025-03-01T10:00:05.000000+01:00"},
            sort_keys=True,
            separators=(",", ":"),
        ),
    ],
)
def test_a_non_canonical_dealer_event_payload_is_refused(rewrite: Any) -> None:
    d = operator_created().to_dict()
    with pytest.raises(EntryError, match="canonical"):
        decode_record(rewrite(d).encode())


def test_car_records_keep_their_exact_bytes() -> None:
    """Leaves written before dealer events existed must hash exactly as they did."""
    activity = ActivityRecord(
        timestamp=datetime(2025, 1, 1, 12, 0, 5, tzinfo=UTC),
        kind=EventKind.FEATURE_CHANGE,
        vin="WVWZZZ1JZXW000001",
        dealer_id="D-001",
        edge_id="edge-001",
        network=NetworkEnvironment.OFFLINE,
        response_status="ok",
        features=("nav",),
        package_versions={"maps-eu": "2025.1"},
        evidence_hashes=("ab" * 32,),
        commitments={"operator_id": "cd" * 32},
    )
    assert activity.encode() == (
        b'{"commitments":{"operator_id":"' + b"cd" * 32 + b'"},"dealer_id":"D-001",'
        b'"edge_id":"edge-001","evidence_hashes":["' + b"ab" * 32 + b'"],"features":["nav"],'
        b'"kind":"feature-change","network":"offline","package_versions":{"maps-eu":"2025.1"},'
        b'"response_status":"ok","timestamp":"2025-01-01T12:00:05.000000Z","type":"activity",'
        b'"v":1,"vin":"WVWZZZ1JZXW000001"}'
    )
    assert decode_record(activity.encode()) == activity
    checkpoint = EdgeCheckpointRecord("o", "n")
    assert checkpoint.encode() == b'{"note":"n","origin":"o","type":"edge-checkpoint","v":1}'


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"review_id": None}, "must name the review"),
        ({"review_kind": None}, "must name the review"),
        ({"kind": DealerEventKind.OPERATOR_LOCKED}, "names no review"),
        ({"role": "dealer_admin"}, "carries no role"),
        ({"evidence_hash": "EF" * 32}, "evidence hash"),
        ({"commitments": {"operator_id": "aa" * 32}}, "commitment 'operator_id'"),
        ({"commitments": {"actor_id": "alice"}}, "commitment 'actor_id'"),
        ({"dealer_id": ""}, "dealer_id"),
        ({"review_kind": "Batch Activation"}, "review kind"),
        ({"timestamp": datetime(2025, 3, 1, 9, 0, 5)}, "timezone-aware"),
        ({"kind": "review-approved"}, "kind"),
    ],
)
def test_a_dealer_event_that_breaks_its_schema_is_refused(
    changes: dict[str, Any], reason: str
) -> None:
    with pytest.raises(EntryError, match=reason):
        review_approved(**changes)


def test_car_records_may_not_commit_to_dealer_event_fields() -> None:
    with pytest.raises(EntryError, match="actor_id"):
        ActivityRecord(
            timestamp=AT, kind=EventKind.ACTIVATION, vin="WVWZZZ1JZXW000001", dealer_id="D-001",
            edge_id="edge-001", network=NetworkEnvironment.ONLINE, response_status="ok",
            commitments={"actor_id": "aa" * 32},
        )  # fmt: skip


@pytest.mark.parametrize(
    "payload",
    [
        {"type": "dealer-event", "v": 1},  # fields missing
        {**operator_created().to_dict(), "kind": "operator-promoted"},
        {**operator_created().to_dict(), "commitments": ["aa"]},
        {**operator_created().to_dict(), "vin": "WVWZZZ1JZXW000001"},  # a field too many
    ],
)
def test_a_malformed_dealer_event_payload_is_refused(payload: dict[str, Any]) -> None:
    with pytest.raises(EntryError):
        decode_record(json.dumps(payload, sort_keys=True, separators=(",", ":")).encode())


# -- in a log ------------------------------------------------------------------------------------


def append_dealer_event(log: TransparencyLog, record: DealerEventRecord, actor: str) -> int:
    """Append ``record`` with ``actor`` and a subject committed, salts apart (as the edge does)."""
    commitments, salts = commit({"actor_id": actor, "subject_id": f"subject-of-{actor}"})
    full = DealerEventRecord(
        **{**{f: getattr(record, f) for f in record.__slots__}, "commitments": commitments}
    )
    with Session(log.store.engine) as s, s.begin():
        [index] = log.store.append_in(s, [full.encode()])
        log.store.save_salts(s, index, salts)
    return index


def mixed_log(url: str) -> TransparencyLog:
    """Car records 0-5, dealer events 6-9, car records 10-15, dealer events 16-19; 2 checkpoints."""
    log = make_log(url)
    fill(log, 6)
    for i in range(4):
        append_dealer_event(log, review_approved() if i % 2 else operator_created(), f"op-{i}")
    log.issue_checkpoint()
    fill(log, 6)
    for i in range(4):
        append_dealer_event(log, operator_created(), f"admin-{i}")
    log.issue_checkpoint()
    return log


def test_a_log_mixing_car_and_dealer_records_audits_clean(db_url: str) -> None:
    log = mixed_log(db_url)
    report = audit_store(log.store, log.verifier)
    assert (report.size, report.verified_size) == (20, 20)
    types = [decode_record(e.payload).to_dict()["type"] for e in log.store.entries(0, 20)]
    assert types.count("dealer-event") == 8 and types.count("activity") == 12


@pytest.mark.parametrize("index", [7, 12, 17])
def test_an_altered_entry_in_a_mixed_log_is_named_even_with_its_leaf_hash_recomputed(
    db_url: str, index: int
) -> None:
    log = mixed_log(db_url)
    forged = review_approved(dealer_id="D-999").encode()
    with log.store.engine.begin() as conn:
        conn.execute(
            text("UPDATE ledger_entries SET payload = :p, leaf_hash = :h WHERE idx = :i"),
            {"p": forged, "h": entry_leaf_hash(index, forged), "i": index},
        )
    with pytest.raises(TamperError) as info:
        audit_store(log.store, log.verifier)
    assert info.value.index <= index < (info.value.range_end or index + 1)


def test_shredding_a_dealer_events_salts_keeps_the_tree_and_its_audit(db_url: str) -> None:
    log = mixed_log(db_url)
    record = decode_record(log.store.entries(6, 7)[0].payload)
    assert isinstance(record, DealerEventRecord)
    salts = log.store.salts(6)
    assert open_commitment(record, "actor_id", "op-0", salts["actor_id"])
    root = log.store.root()
    assert log.store.shred(6) == 2
    assert log.store.salts(6) == {}
    assert log.store.root() == root
    assert decode_record(log.store.entries(6, 7)[0].payload) == record
    assert audit_store(log.store, log.verifier).verified_size == 20


def test_verify_log_accepts_an_export_with_dealer_events_and_names_an_altered_one(
    tmp_path: Path,
) -> None:
    log = mixed_log(f"sqlite:///{tmp_path / 'edge.sqlite3'}")
    key = tmp_path / "log.vkey"
    key.write_text(log.verifier.to_vkey())
    export = tmp_path / "log.jsonl"
    with export.open("w") as f:
        write_export(log.store, log.origin, f)
    runner = CliRunner()
    ok = runner.invoke(app, ["verify", "log", str(export), "--key", str(key)])
    assert ok.exit_code == 0, ok.output
    assert "20 entries" in ok.output
    lines = export.read_text().splitlines()
    entry = json.loads(lines[1 + 8])
    entry["payload"] = b64e(review_approved(review_id="forged-review").encode())
    lines[1 + 8] = json.dumps(entry)
    export.write_text("\n".join(lines) + "\n")
    bad = runner.invoke(app, ["verify", "log", str(export), "--key", str(key)])
    assert bad.exit_code == 1
    assert "first bad index: 8" in bad.output
