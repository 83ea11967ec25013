"""``forecourt ledger verify history`` with the car's activation in it.

A buyer's history from the cloud test world: the car activated at its dealer (logged by the
ledger follower after the handover), handed over, sold on. The command shows the activation first,
with its date, dealer and the features it enabled, and exits 0; a copy whose activation claims a
feature it never had exits 1 naming the record.
"""

from __future__ import annotations

import base64
import copy
import dataclasses
import itertools
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from forecourt.cloud.activations.ledger import ActivationLedgerFollower
from forecourt.cloud.server import serve_in_thread
from forecourt.ledger.checkpoint import SoftwareNoteSigner, verifier_for
from forecourt.ledger.cli import app
from forecourt.ledger.repository import MerkleLogStore
from tests.cloud.conftest import Clients
from tests.cloud.world import NOW, build_world

ORIGIN = "forecourt.example/cloud-ledger"
runner = CliRunner()


@dataclass(frozen=True)
class Saved:
    directory: Path
    vin: str
    dealer_id: str
    features: tuple[str, ...]
    history: dict[str, Any]
    vkey: str


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Saved]:
    directory = tmp_path_factory.mktemp("history-activations")
    world = build_world(f"sqlite:///{(directory / 'cloud.sqlite3').as_posix()}")
    signer = SoftwareNoteSigner.generate()
    moments = itertools.count()
    world.config = dataclasses.replace(
        world.config,
        ledger_signer=signer,
        clock=lambda: NOW + timedelta(minutes=next(moments)),
    )
    world.context.config = world.config
    car, features = world.activatable()
    vin, dealer_id = str(car.vin), car.dealer_id or ""
    store = MerkleLogStore(world.context.db.engine)
    follower = ActivationLedgerFollower(world.context.db, store)
    try:
        with serve_in_thread(
            world.app(), world.tls_files(directory / "server"), staff_without_certificate=True
        ) as url:
            clients = Clients(world, url, directory / "clients")
            edge, staff = clients.dealer(dealer_id), clients.staff()
            body = world.request(car, features)
            assert edge.post("/v1/activations", json=body).status_code == 201
            report = f"/v1/activations/{body['request_id']}/report"
            assert edge.post(report, json={"outcome": "applied"}).status_code == 200
            for step in (
                {"to": "delivered", "owner_ref": "crm-first-owner"},
                {"to": "transferred", "owner_ref": "crm-second-owner"},
            ):
                changed = staff.post(f"/v1/vehicles/{vin}/lifecycle", json=step)
                assert changed.status_code == 200, changed.text
                if step["to"] == "delivered":
                    assert follower.step().count == 1
            history = staff.get(f"/v1/vehicles/{vin}/history").json()
            clients.close()
        yield Saved(
            directory,
            vin,
            dealer_id,
            tuple(features),
            history,
            verifier_for(ORIGIN, signer).to_vkey(),
        )
    finally:
        store.close()
        world.context.db.dispose()


def _verify(saved: Saved, document: dict[str, Any]) -> tuple[int, str]:
    history = saved.directory / "handed-over.json"
    history.write_text(json.dumps(document))
    key = saved.directory / "ledger.vkey"
    key.write_text(saved.vkey)
    args = ["verify", "history", str(history), "--key", str(key), "--vin", saved.vin]
    result = runner.invoke(app, args, env={"COLUMNS": "400"})
    return result.exit_code, result.output


def test_the_activation_is_shown_first_with_its_date_dealer_and_features(saved: Saved) -> None:
    exit_code, output = _verify(saved, saved.history)

    assert exit_code == 0, output
    body = [line.split("│") for line in output.splitlines() if line.startswith("│")]
    assert [row[3].strip() for row in body] == [
        "activation",
        "ownership-change",
        "ownership-change",
        "revocation",
    ][: len(body)]
    activation = body[0]
    stamp = saved.history["records"][0]["record"]["timestamp"]
    assert activation[2].strip() == stamp[:16].replace("T", " ")
    assert activation[2].strip() < body[1][2].strip()  # authorised before the handover
    assert activation[4].strip() == "applied" and activation[5].strip() == saved.dealer_id
    assert activation[6].strip() == "-"  # the operator is committed, not an owner
    shown = [f.strip() for f in activation[7].split(",")]
    assert shown == saved.history["records"][0]["record"]["features"]
    assert set(saved.features) <= set(shown)  # what the dealer asked for, and standard ones
    # Logged after the handover, listed before it: the index says when it was logged.
    assert int(activation[1]) > int(body[1][1])
    assert f"OK: {len(body)} records of {saved.vin}" in output


def test_an_activation_claiming_a_feature_it_never_had_exits_1(saved: Saved) -> None:
    tampered = copy.deepcopy(saved.history)
    item = tampered["records"][0]
    record = json.loads(base64.b64decode(item["payload"]))
    assert record["kind"] == "activation"
    record["features"] = sorted([*record["features"], "AUTOPILOT"])
    item["payload"] = base64.b64encode(
        json.dumps(record, sort_keys=True, separators=(",", ":")).encode()
    ).decode()

    exit_code, output = _verify(saved, tampered)

    assert exit_code == 1, output
    assert output.startswith("FAILED: ")
    assert f"inclusion proof for leaf {item['index']} does not lead to the root" in output
    assert "History of" not in output
