"""``forecourt ledger verify history``: a buyer checks a car's whole history with one command.

The history is a real one, served by the cloud test world after a handover, a service visit and a
change of owner; the tampered copies are what a seller could hand over instead. Each must exit 1
and say what is wrong; the genuine one exits 0 with a table that shows owners only as
commitments.
"""

from __future__ import annotations

import base64
import copy
import dataclasses
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from forecourt.cloud.server import serve_in_thread
from forecourt.core import LifecycleState, Vehicle
from forecourt.ledger.checkpoint import SoftwareNoteSigner, verifier_for
from forecourt.ledger.cli import app
from tests.cloud.conftest import Clients
from tests.cloud.world import build_world

ORIGIN = "forecourt.example/cloud-ledger"
runner = CliRunner()


@dataclass(frozen=True)
class Saved:
    """What the buyer holds: the history, the published key, and a later history of the car."""

    directory: Path
    vin: str
    other_vin: str
    dealer_id: str
    history: dict[str, Any]
    later: dict[str, Any]
    vkey: str


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Saved]:
    directory = tmp_path_factory.mktemp("history")
    world = build_world(f"sqlite:///{(directory / 'cloud.sqlite3').as_posix()}")
    signer = SoftwareNoteSigner.generate()
    world.config = dataclasses.replace(world.config, ledger_signer=signer)
    car: Vehicle = next(c for c in world.demo.vehicles if c.state is LifecycleState.AT_DEALER)
    other = next(c for c in world.demo.vehicles if c.vin != car.vin)
    vin = str(car.vin)
    assert car.dealer_id is not None
    try:
        with serve_in_thread(
            world.app(), world.tls_files(directory / "server"), staff_without_certificate=True
        ) as url:
            clients = Clients(world, url, directory / "clients")
            staff = clients.staff()
            for step in (
                {"to": "delivered", "owner_ref": "crm-first-owner"},
                {"to": "in_service"},
                {"to": "transferred", "owner_ref": "crm-second-owner"},
            ):
                if step["to"] == "delivered":
                    moved = staff.put(f"/v1/vehicles/{vin}/state", json={"state": "activated"})
                    assert moved.status_code == 200, moved.text
                changed = staff.post(f"/v1/vehicles/{vin}/lifecycle", json=step)
                assert changed.status_code == 200, changed.text
            visit = staff.post(
                f"/v1/vehicles/{vin}/service-visits", json={"dealer_id": car.dealer_id}
            )
            assert visit.status_code == 201, visit.text
            history = staff.get(f"/v1/vehicles/{vin}/history").json()
            staff.post(f"/v1/vehicles/{vin}/lifecycle", json={"to": "in_service"})
            later = staff.get(f"/v1/vehicles/{vin}/history").json()
            clients.close()
        yield Saved(
            directory,
            vin,
            str(other.vin),
            car.dealer_id,
            history,
            later,
            verifier_for(ORIGIN, signer).to_vkey(),
        )
    finally:
        world.context.db.dispose()


def _verify(
    saved: Saved, document: dict[str, Any], *, vin: str | None = None, vkey: str | None = None
) -> tuple[int, str]:
    history = saved.directory / "handed-over.json"
    history.write_text(json.dumps(document))
    key = saved.directory / "ledger.vkey"
    key.write_text(vkey or saved.vkey)
    args = ["verify", "history", str(history), "--key", str(key), "--vin", vin or saved.vin]
    result = runner.invoke(app, args, env={"COLUMNS": "160"})
    return result.exit_code, result.output


def test_a_genuine_history_verifies_and_shows_what_happened_when(saved: Saved) -> None:
    exit_code, output = _verify(saved, saved.history)

    assert exit_code == 0, output
    records = saved.history["records"]
    assert len(records) == 6
    assert f"OK: 6 records of {saved.vin}" in output
    body = [line for line in output.splitlines() if line.startswith("│")]  # header: ┃
    assert [row.split("│")[1].strip() for row in body] == [str(r["index"]) for r in records]
    events = [(row.split("│")[3].strip(), row.split("│")[4].strip()) for row in body]
    assert events == [
        ("lifecycle-change", "activated"),
        ("ownership-change", "delivered"),
        ("lifecycle-change", "in_service"),
        ("ownership-change", "transferred"),
        ("revocation", "owner-changed"),
        ("lifecycle-change", "service-visit"),
    ]
    assert all(row.split("│")[5].strip() == saved.dealer_id for row in body)
    # Owners appear as the first characters of their commitments, never as themselves.
    owners = [r["record"]["commitments"].get("owner_ref") for r in records]
    transfer_owner = owners[3]
    assert transfer_owner is not None and f"{transfer_owner[:16]}…" in output
    assert "crm-first-owner" not in output and "crm-second-owner" not in output


def _edited(document: dict[str, Any]) -> dict[str, Any]:
    """The seller rewrites the transfer as a mere lifecycle change."""
    payload = base64.b64decode(document["records"][3]["payload"])
    document["records"][3]["payload"] = base64.b64encode(
        payload.replace(b'"ownership-change"', b'"lifecycle-change"')
    ).decode()
    return document


def _duplicated(document: dict[str, Any]) -> dict[str, Any]:
    """The service visit listed twice: a second visit that never happened."""
    document["records"].insert(3, copy.deepcopy(document["records"][2]))
    return document


def _reordered(document: dict[str, Any]) -> dict[str, Any]:
    document["records"][0], document["records"][1] = document["records"][1], document["records"][0]
    return document


Tamper = Callable[[dict[str, Any]], dict[str, Any]]


@pytest.mark.parametrize(
    ("tamper", "reason"),
    [
        pytest.param(
            _edited, "inclusion proof for leaf {3} does not lead to the root", id="record-edited"
        ),
        pytest.param(_duplicated, "record {2} is listed twice", id="record-duplicated"),
        pytest.param(
            _reordered,
            "record {0} is listed after record {1} (not in time order)",
            id="records-reordered",
        ),
    ],
)
def test_a_tampered_history_exits_1_naming_the_failure(
    saved: Saved, tamper: Tamper, reason: str
) -> None:
    exit_code, output = _verify(saved, tamper(copy.deepcopy(saved.history)))

    indices = [record["index"] for record in saved.history["records"]]
    assert exit_code == 1, output
    assert output.startswith("FAILED: ") and reason.format(*indices) in output, output
    assert "History of" not in output


def test_records_proved_against_another_checkpoint_exit_1(saved: Saved) -> None:
    mixed = {**saved.history, "checkpoint": saved.later["checkpoint"]}
    assert saved.later["checkpoint"] != saved.history["checkpoint"]

    exit_code, output = _verify(saved, mixed)

    first = saved.history["records"][0]
    size = saved.later["records"][0]["tree_size"]
    assert exit_code == 1, output
    assert f"record {first['index']} is proved at size {first['tree_size']}" in output
    assert f"the checkpoint is of size {size}" in output


def test_a_history_under_another_key_exits_1(saved: Saved) -> None:
    stranger = verifier_for(ORIGIN, SoftwareNoteSigner.generate()).to_vkey()

    exit_code, output = _verify(saved, saved.history, vkey=stranger)

    assert exit_code == 1, output
    assert f"FAILED: no valid signature by {ORIGIN!r} on the checkpoint" in output, output


def test_another_cars_history_exits_1(saved: Saved) -> None:
    exit_code, output = _verify(saved, saved.history, vin=saved.other_vin)

    first = saved.history["records"][0]["index"]
    assert exit_code == 1, output
    assert f"FAILED: record {first} is not about {saved.other_vin}" in output


def test_a_file_that_is_no_history_exits_1(saved: Saved) -> None:
    exit_code, output = _verify(saved, {"vin": saved.vin})

    assert exit_code == 1, output
    assert "a history has a 'checkpoint' note and a 'records' list" in output
