"""Consent on the tablet (per market profile, append-only withdrawal) and the auditor's proofs."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from forecourt.core import Market
from forecourt.demo.data import generate_world
from forecourt.edge.app import create_app
from forecourt.edge.workflow.consent import SUBJECT_KEY_FILE, SubjectKey, SubjectKeyError
from forecourt.ledger.entry import ActivityRecord, EventKind, decode_record
from forecourt.ledger.merkle import InclusionProof
from forecourt.ledger.repository import entry_leaf_hash
from forecourt.store.edge import EdgeConsentRecord, EdgeOutboxMessage
from tests.edge.app.conftest import Console
from tests.edge.app.world import ConsoleWorld
from tests.edge.workflow.fakes import VIN

pytestmark = pytest.mark.anyio


def _consent(**overrides: object) -> dict[str, object]:
    body: dict[str, object] = {
        "vin": VIN,
        "subject_ref": "contract-4711",
        "notice_version": "eu-2025.1",
        "language": "de",
        "answers": {"location": True, "audio_voice": False},
        "cross_border": False,
    }
    body.update(overrides)
    return body


def _rows(world: ConsoleWorld) -> list[EdgeConsentRecord]:
    with world.env.sessions() as s:
        return list(
            s.execute(select(EdgeConsentRecord).order_by(EdgeConsentRecord.recorded_at)).scalars()
        )


async def test_consent_rows_name_the_notice_version_and_a_withdrawal_is_a_new_row(
    console: Console,
) -> None:
    world = console.world
    await console.login(world.technician)
    granted = await console.post("/api/v1/consent", _consent())
    assert granted.status_code == 201, granted.text
    assert len(granted.json()["record_ids"]) == 3  # location, audio, cross-border
    withdrawn = await console.post(
        "/api/v1/consent", _consent(subject_ref="", answers={"location": False}, cross_border=None)
    )
    assert withdrawn.status_code == 201
    rows = _rows(world)
    assert len(rows) == 4  # nothing edited: the withdrawal is appended
    assert {r.notice_version for r in rows} == {"eu-2025.1"}
    assert {r.subject_sha256 for r in rows} == {rows[0].subject_sha256}
    assert "contract-4711" not in {r.subject_sha256 for r in rows}
    location = [r.decision for r in rows if r.purpose == "location"]
    assert location == ["granted", "denied"]
    view = withdrawn.json()
    assert (
        next(c for c in view["categories"] if c["category"] == "location")["decision"] == "denied"
    )
    with world.env.sessions() as s:
        messages = s.execute(select(EdgeOutboxMessage.event_type)).scalars().all()
    assert sum("consent.recorded" in m for m in messages) >= 2


async def test_a_stale_notice_or_a_notice_only_answer_is_refused_and_records_nothing(
    console: Console,
) -> None:
    await console.login(console.world.technician)
    stale = await console.post("/api/v1/consent", _consent(notice_version="eu-2024.9"))
    assert stale.status_code == 422 and stale.json()["code"] == "consent_invalid"
    assert stale.json()["current_notice_version"] == "eu-2025.1"
    notice_only = await console.post(
        "/api/v1/consent", _consent(answers={"vehicle_diagnostics": False})
    )
    assert notice_only.status_code == 422
    no_subject = await console.post("/api/v1/consent", _consent(subject_ref=""))
    assert no_subject.status_code == 422
    assert _rows(console.world) == []


async def test_the_eu_page_offers_its_languages_and_asks_biometrics_on_its_own(
    console: Console,
) -> None:
    await console.login(console.world.technician)
    view = (await console.get(f"/api/v1/consent/{VIN}", lang="de")).json()
    assert view["languages"] == ["en", "de", "fr", "es", "it"] and view["translated"]
    location = next(c for c in view["categories"] if c["category"] == "location")
    assert location["title"] == "Standort" and location["mode"] == "opt_in"
    assert [c["category"] for c in view["categories"] if c["separate_consent"]] == ["biometrics"]
    french = (await console.get(f"/api/v1/consent/{VIN}", lang="fr")).json()
    assert not french["translated"]  # English fallback, and the page says so
    page = await console.get("/consent", vin=VIN, lang="de")
    assert 'lang="de"' in page.text and "Standort" in page.text


async def test_global_privacy_control_records_every_opt_out_category_as_denied(
    world: ConsoleWorld,
) -> None:
    us = dataclasses.replace(world.services, profile=generate_world(vehicles=0).profile(Market.US))
    transport = httpx.ASGITransport(app=create_app(us))
    async with httpx.AsyncClient(transport=transport, base_url="http://console.test") as client:
        console = Console(client, world)
        await console.login(world.technician)
        response = await client.post(
            "/api/v1/consent",
            json=_consent(notice_version="us-2025.1", language="en-US", answers={"location": True}),
            headers={**console.headers(), "sec-gpc": "1"},
        )
    assert response.status_code == 201
    decisions = {r.purpose: (r.decision, r.mechanism) for r in _rows(world)}
    assert decisions["location"] == ("denied", "opt_out")
    assert decisions["contact_data"] == ("denied", "opt_out")
    assert all(r.method.startswith("console+gpc") for r in _rows(world))


async def test_the_auditor_gets_entries_with_proofs_that_verify_against_the_checkpoint(
    console: Console,
) -> None:
    world = console.world
    await console.login(world.technician)
    workflow_id = (
        await console.post("/api/v1/activations", {"vin": VIN, "features": ["CONNECT"]})
    ).json()["workflow_id"]
    world.activation.wait(workflow_id)
    await console.login(world.auditor)
    view = (await console.get("/api/v1/ledger/entries", newest=100)).json()
    checkpoint = view["checkpoint"]
    assert checkpoint["signature_valid"] and checkpoint["tree_size"] == len(view["entries"]) >= 7
    root = base64.b64decode(checkpoint["root_hash"])
    for entry in view["entries"]:
        payload = base64.b64decode(entry["payload"])
        proof = entry["proof"]
        InclusionProof(
            entry["index"], proof["tree_size"], tuple(base64.b64decode(h) for h in proof["hashes"])
        ).verify(entry_leaf_hash(entry["index"], payload), root)
        assert entry["record"]["vin"] == VIN
    one = await console.get("/api/v1/ledger/entries/0")
    assert one.json()["index"] == 0
    missing = await console.get("/api/v1/ledger/entries/9999")
    assert missing.status_code == 404 and missing.json()["code"] == "ledger_entry_not_found"
    page = await console.get("/audit")
    assert page.status_code == 200 and 'data-root="' in page.text


async def test_each_consent_answer_is_a_consent_change_ledger_entry_naming_notice_and_categories(
    console: Console,
) -> None:
    world = console.world
    await console.login(world.technician)
    before = world.env.log.store.size()
    assert (await console.post("/api/v1/consent", _consent())).status_code == 201
    withdrawn = await console.post(
        "/api/v1/consent", _consent(subject_ref="", answers={"location": False}, cross_border=None)
    )
    assert withdrawn.status_code == 201
    entries = world.env.log.store.entries(before, world.env.log.store.size())
    records = [decode_record(e.payload) for e in entries]
    changes = [r for r in records if getattr(r, "kind", None) is EventKind.CONSENT_CHANGE]
    assert len(changes) == 2  # the grant and the withdrawal, one entry each
    grant, withdrawal = changes
    assert isinstance(grant, ActivityRecord) and isinstance(withdrawal, ActivityRecord)
    assert grant.vin == VIN
    assert grant.package_versions == {
        "notice:" + world.app.state.console.settings.notice_id: "eu-2025.1"
    }
    assert set(grant.features) == {"location=granted", "audio_voice=denied", "cross_border=denied"}
    assert withdrawal.features == ("location=denied",)
    assert set(grant.commitments) == {"operator_id", "customer_id"}
    stored = _rows(world)[0].subject_sha256
    for entry in entries:  # neither the reference nor its pseudonym is readable in a leaf
        assert b"contract-4711" not in entry.payload and stored.encode() not in entry.payload


async def test_customer_reference_is_kept_as_a_keyed_pseudonym_not_a_plain_sha256(
    console: Console, tmp_path: Path
) -> None:
    world = console.world
    await console.login(world.technician)
    assert (await console.post("/api/v1/consent", _consent())).status_code == 201
    stored = {r.subject_sha256 for r in _rows(world)}
    assert stored.isdisjoint({hashlib.sha256(b"contract-4711").hexdigest()})
    key_file = tmp_path / SUBJECT_KEY_FILE
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert stored == {SubjectKey.load_or_create(tmp_path).pseudonym("contract-4711")}


def test_subject_key_survives_a_restart_and_a_readable_key_file_is_refused(tmp_path: Path) -> None:
    first = SubjectKey.load_or_create(tmp_path)
    assert SubjectKey.load_or_create(tmp_path).pseudonym("c-1") == first.pseudonym("c-1")
    (tmp_path / SUBJECT_KEY_FILE).chmod(0o644)
    with pytest.raises(SubjectKeyError):
        SubjectKey.load_or_create(tmp_path)
