"""``cloud rotate-keys``: the offline ceremony, and cars pinned at root v1 following it.

Keys are real encrypted files written by ``cloud init-keys``; the serving side is built the way
``cloud serve`` builds it (``load_signing_keys`` over the exported root history), bundles are
signed by :class:`BundleSigner` and verified by the car's pure verifier.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import typer
from structlog.testing import capture_logs
from typer.testing import CliRunner, Result

from forecourt.cli import app
from forecourt.cloud.cli import _exported_roots
from forecourt.cloud.cli import app as cloud_app
from forecourt.cloud.keys import (
    PASSWORD_ENV,
    ROOT_PASSWORD_ENV,
    RootHistoryError,
    load_root_history,
    load_signing_keys,
)
from forecourt.cloud.signing import BundleSigner
from forecourt.core import ActivationPlan, LifecycleState, Vehicle, plan_activation
from forecourt.demo.data import DemoWorld, generate_world
from forecourt.trust import errors
from forecourt.trust._sslib import Metadata, Root
from forecourt.trust.canonical import canonical_bytes, metadata_from_bytes
from forecourt.trust.model import NonceFreshness
from forecourt.trust.verifier import CarTrustState, EcuTrustState, verify_bundle
from tests.cloud.world import NOW, full_consent
from tests.trust.world import assert_refused, tamper

ONLINE_PASSWORD, ROOT_PASSWORD = "online-role-keys-1", "offline-root-keys-2"
PASSWORDS = {PASSWORD_ENV: ONLINE_PASSWORD, ROOT_PASSWORD_ENV: ROOT_PASSWORD}
runner = CliRunner()


def _cli(*args: str, env: dict[str, str | None] | None = None) -> Result:
    return runner.invoke(app, ["cloud", *args], env=env if env is not None else PASSWORDS)


def _rotate(keys_dir: Path, *args: str, env: dict[str, str | None] | None = None) -> Result:
    return _cli("rotate-keys", str(keys_dir), *args, env=env)


@pytest.fixture
def keys_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory = tmp_path / "keys"
    result = _cli("init-keys", str(directory))
    assert result.exit_code == 0, result.output
    monkeypatch.setenv(PASSWORD_ENV, ONLINE_PASSWORD)  # what cloud serve runs with
    monkeypatch.delenv(ROOT_PASSWORD_ENV, raising=False)
    return directory


@pytest.fixture(scope="module")
def demo() -> DemoWorld:
    return generate_world(seed=7, vehicles=12, reference_time=NOW)


@dataclass
class Car:
    """A demo car at its dealer, its trust state as pinned at the factory from ``keys_dir``."""

    vehicle: Vehicle
    plan: ActivationPlan
    state: CarTrustState


def _car(demo: DemoWorld, keys_dir: Path, nonces: frozenset[str]) -> Car:
    for vehicle in demo.vehicles:
        if vehicle.state is not LifecycleState.AT_DEALER:
            continue
        profile = demo.profile(vehicle.market)
        bought = tuple(
            sorted(
                e.feature_code
                for e in demo.entitlements
                if e.vin == vehicle.vin and e.is_active_at(NOW) and e.source.value != "standard"
            )
        )
        plan = plan_activation(
            vehicle,
            catalog=demo.catalog,
            entitlements=demo.entitlements,
            profile=profile,
            requested=bought,
            consent=full_consent(profile.notice_version),
            now=NOW,
        )
        if bought and isinstance(plan, ActivationPlan):
            state = CarTrustState(
                vin=str(vehicle.vin),
                director_root=(keys_dir / "director-root.json").read_bytes(),
                image_root=(keys_dir / "image-root.json").read_bytes(),
                ecus=tuple(
                    EcuTrustState(e.serial, e.hardware_number, e.role.value) for e in vehicle.ecus
                ),
                factory_options=vehicle.option_codes,
                issued_nonces=nonces,
            )
            return Car(vehicle, plan, state)
    raise AssertionError("the demo world has no activatable car")


def _serving_signer(keys_dir: Path) -> BundleSigner:
    """The signer a ``cloud serve`` replica started now would build (no root key loaded)."""
    return BundleSigner(load_signing_keys(keys_dir / "keys.json", _exported_roots(keys_dir)))


def _sign(signer: BundleSigner, car: Car, nonce: str, counter: int) -> bytes:
    features = {code for target in car.plan.targets for code in target.features}
    return signer.sign(
        car.plan,
        car.vehicle,
        freshness=NonceFreshness(nonce),
        activation_counter=counter,
        feature_until=dict.fromkeys(features),
        feature_requires={},
        consent={},
        now=NOW,
        expires=NOW + timedelta(minutes=5),
    )


def _snapshot(directory: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(directory)): p.read_bytes()
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


def _root(path: Path) -> Metadata[Root]:
    return metadata_from_bytes(path.read_bytes(), str(path))  # as cloud serve reads it


def _chain_versions(bundle: bytes, repository: str) -> list[int]:
    return [r["signed"]["version"] for r in json.loads(bundle, strict=False)[repository]["root"]]


def test_after_rotating_director_targets_a_car_pinned_at_v1_verifies_and_holds_root_v2(
    keys_dir: Path, demo: DemoWorld
) -> None:
    car = _car(demo, keys_dir, frozenset({"n-stale", "n-after"}))
    stale_replica = _serving_signer(keys_dir)  # started before the rotation, not restarted

    rotated = _rotate(keys_dir, "--repository", "director", "--roles", "targets")

    assert rotated.exit_code == 0, rotated.output
    assert (keys_dir / "director-targets.pem").exists()  # never overwritten
    listing = json.loads((keys_dir / "keys.json").read_text())
    assert listing["director"]["targets"].startswith(f"file:{keys_dir}/director-targets.v2.pem")
    v2 = _root(keys_dir / "director-root.2.json")
    v1 = _root(keys_dir / "director-root.json")
    assert v1.signed.version == 1 and v2.signed.version == 2
    assert v2.signed.roles["targets"].keyids != v1.signed.roles["targets"].keyids
    assert v2.signed.roles["timestamp"].keyids == v1.signed.roles["timestamp"].keyids
    assert not (keys_dir / "image-root.2.json").exists()

    after = _sign(_serving_signer(keys_dir), car, "n-after", 2)
    assert _chain_versions(after, "director") == [2]
    assert _chain_versions(after, "image") == []
    verified = verify_bundle(after, car.state, NOW)
    state = verified.next_state(car.state)
    assert state.director_root == (keys_dir / "director-root.2.json").read_bytes()
    assert state.image_root == car.state.image_root

    # Signed later by the rotated-out targets key: a car still at v1 takes it, one that saw v2
    # refuses it.
    stale = _sign(stale_replica, car, "n-stale", 3)
    verify_bundle(stale, car.state, NOW)
    refusal = assert_refused(stale, state, errors.SignatureThresholdNotMet, NOW)
    assert refusal.code == "signature_threshold_not_met" and refusal.nrc == 0x35
    assert "director targets" in str(refusal)


def test_root_rotated_with_threshold_2_is_walked_from_v1_and_needs_both_new_root_keys(
    keys_dir: Path, demo: DemoWorld
) -> None:
    car = _car(demo, keys_dir, frozenset({"n-1"}))

    rotated = _rotate(keys_dir, "--repository", "both", "--roles", "root", "--threshold", "2")

    assert rotated.exit_code == 0, rotated.output
    root_listing = json.loads((keys_dir / "offline" / "root-keys.json").read_text())
    for repo in ("director", "image"):
        v1, v2 = _root(keys_dir / f"{repo}-root.json"), _root(keys_dir / f"{repo}-root.2.json")
        assert v2.signed.roles["root"].threshold == 2
        new_keys = set(v2.signed.roles["root"].keyids)
        assert len(new_keys) == 2 and not new_keys & set(v1.signed.roles["root"].keyids)
        # signed by the old root key and both new ones (TUF 5.3.4)
        assert set(v2.signatures) == new_keys | set(v1.signed.roles["root"].keyids)
        assert len(root_listing[repo]) == 2
        assert (keys_dir / "offline" / f"{repo}-root.pem").exists()
        assert (keys_dir / "offline" / f"{repo}-root.v2.1.pem").exists()
    # the online roles did not change: keys.json is untouched
    assert not list(keys_dir.glob("director-t*.v2*.pem"))

    bundle = _sign(_serving_signer(keys_dir), car, "n-1", 1)
    state = verify_bundle(bundle, car.state, NOW).next_state(car.state)
    assert state.director_root == (keys_dir / "director-root.2.json").read_bytes()
    assert state.image_root == (keys_dir / "image-root.2.json").read_bytes()

    v1_keys = set(_root(keys_dir / "director-root.json").signed.roles["root"].keyids)
    v2_keys = sorted(_root(keys_dir / "director-root.2.json").signed.roles["root"].keyids)

    def keep_one_new_root_signature(obj: Any) -> None:
        root = obj["director"]["root"][0]
        root["signatures"] = [
            s for s in root["signatures"] if s["keyid"] in v1_keys or s["keyid"] == v2_keys[0]
        ]

    refusal = assert_refused(
        tamper(bundle, keep_one_new_root_signature), car.state, errors.RootRotationInvalid, NOW
    )
    assert "new keys" in str(refusal) and refusal.nrc == 0x35


def test_a_root_v2_signed_only_by_the_new_root_keys_is_refused_by_car_serve_and_ceremony(
    keys_dir: Path, demo: DemoWorld
) -> None:
    car = _car(demo, keys_dir, frozenset({"n-1"}))
    assert _rotate(keys_dir, "--repository", "director", "--roles", "root").exit_code == 0
    bundle = _sign(_serving_signer(keys_dir), car, "n-1", 1)
    old_keys = set(_root(keys_dir / "director-root.json").signed.roles["root"].keyids)

    def only_new_root_keys(obj: Any) -> None:
        root = obj["director"]["root"][0]
        root["signatures"] = [s for s in root["signatures"] if s["keyid"] not in old_keys]

    refusal = assert_refused(
        tamper(bundle, only_new_root_keys), car.state, errors.RootRotationInvalid, NOW
    )
    assert "old keys" in str(refusal) and refusal.code == "root_rotation_invalid"

    # The same v2 on disk: serve refuses to start with it, the ceremony refuses to extend it.
    exported = json.loads((keys_dir / "director-root.2.json").read_bytes())
    only_new_root_keys({"director": {"root": [exported]}})
    (keys_dir / "director-root.2.json").write_bytes(canonical_bytes(exported))
    with pytest.raises(RootHistoryError, match="director root history does not verify"):
        load_root_history(keys_dir)
    with pytest.raises(typer.Exit):
        _exported_roots(keys_dir)
    before = _snapshot(keys_dir)
    again = _rotate(keys_dir, "--repository", "director", "--roles", "targets")
    assert again.exit_code == 2
    assert "the exported roots do not verify" in again.output
    assert _snapshot(keys_dir) == before


def test_threshold_2_targets_metadata_with_one_signature_is_refused(
    keys_dir: Path, demo: DemoWorld
) -> None:
    car = _car(demo, keys_dir, frozenset({"n-1"}))
    rotated = _rotate(
        keys_dir, "--repository", "director", "--roles", "targets", "--threshold", "2"
    )
    assert rotated.exit_code == 0, rotated.output
    listing = json.loads((keys_dir / "keys.json").read_text())
    assert len(listing["director"]["targets"]) == 2
    assert _root(keys_dir / "director-root.2.json").signed.roles["targets"].threshold == 2

    bundle = _sign(_serving_signer(keys_dir), car, "n-1", 1)
    assert len(json.loads(bundle)["director"]["targets"]["signatures"]) == 2
    verify_bundle(bundle, car.state, NOW)

    def drop_one(obj: Any) -> None:
        obj["director"]["targets"]["signatures"] = obj["director"]["targets"]["signatures"][:1]

    refusal = assert_refused(
        tamper(bundle, drop_one), car.state, errors.SignatureThresholdNotMet, NOW
    )
    assert refusal.detail == {"signed": 1, "threshold": 2}


def test_a_second_rotation_builds_on_the_first_and_serve_ships_the_whole_chain(
    keys_dir: Path, demo: DemoWorld
) -> None:
    car = _car(demo, keys_dir, frozenset({"n-1"}))
    assert _rotate(keys_dir, "--repository", "director", "--roles", "root,targets").exit_code == 0
    second = _rotate(keys_dir, "--repository", "director", "--roles", "snapshot,timestamp")
    assert second.exit_code == 0, second.output
    assert (keys_dir / "director-snapshot.v3.pem").exists()

    signer = _serving_signer(keys_dir)
    assert signer.root_bytes()["director"] == (keys_dir / "director-root.3.json").read_bytes()
    bundle = _sign(signer, car, "n-1", 1)
    assert _chain_versions(bundle, "director") == [2, 3]
    state = verify_bundle(bundle, car.state, NOW).next_state(car.state)
    assert state.director_root == (keys_dir / "director-root.3.json").read_bytes()


@dataclass(frozen=True)
class Refusal:
    args: tuple[str, ...]
    message: str
    env: dict[str, str | None] | None = None
    prepare: str = ""


REFUSALS = {
    "wrong root password": Refusal(
        ("--repository", "director", "--roles", "targets"),
        "director root keys unavailable",
        env={**PASSWORDS, ROOT_PASSWORD_ENV: "not-the-root-password"},
    ),
    "root keys absent": Refusal(
        ("--repository", "image", "--roles", "root"),
        "root-keys.json",
        prepare="move-offline",
    ),
    "no online password": Refusal(
        ("--repository", "director", "--roles", "targets"),
        f"set {PASSWORD_ENV}",
        env={PASSWORD_ENV: None, ROOT_PASSWORD_ENV: ROOT_PASSWORD},
    ),
    "unknown role": Refusal(
        ("--repository", "director", "--roles", "targets,bogus"),
        "unknown role bogus",
    ),
    "unknown repository": Refusal(
        ("--repository", "gallery", "--roles", "targets"),
        "unknown repository in gallery",
    ),
    "threshold below 1": Refusal(
        ("--repository", "director", "--roles", "targets", "--threshold", "0"),
        "threshold 0 is below 1",
    ),
    "threshold above the keys": Refusal(
        ("--repository", "both", "--roles", "root", "--threshold", "3", "--key-count", "2"),
        "threshold 3 for director root is larger than its 2 key(s)",
    ),
    "root days below 1": Refusal(
        ("--repository", "director", "--roles", "targets", "--root-days", "0"),
        "--root-days 0 is below 1",
    ),
    "exported root does not verify": Refusal(
        ("--repository", "image", "--roles", "targets"),
        "the exported roots do not verify",
        prepare="tamper-v1",
    ),
    "a new key file would overwrite one": Refusal(
        ("--repository", "director", "--roles", "targets"),
        "director-targets.v2.pem exists; rotation never overwrites a file",
        prepare="squat",
    ),
    "online keys not the root's": Refusal(
        ("--repository", "image", "--roles", "snapshot"),
        "keys.json does not match image root v1",
        prepare="swap-online",
    ),
}


@pytest.fixture(params=sorted(REFUSALS))
def refusal(request: pytest.FixtureRequest) -> Iterator[Refusal]:
    yield REFUSALS[request.param]


def test_a_refused_ceremony_exits_2_says_why_logs_it_and_changes_nothing(
    keys_dir: Path, tmp_path: Path, refusal: Refusal
) -> None:
    if refusal.prepare == "move-offline":
        (keys_dir / "offline").rename(tmp_path / "usb-stick")
    elif refusal.prepare == "tamper-v1":
        v1 = json.loads((keys_dir / "image-root.json").read_bytes())
        v1["signed"]["expires"] = "2099-01-01T00:00:00Z"
        (keys_dir / "image-root.json").write_bytes(canonical_bytes(v1))
    elif refusal.prepare == "squat":
        (keys_dir / "director-targets.v2.pem").write_bytes(b"someone else's file")
    elif refusal.prepare == "swap-online":
        listing = json.loads((keys_dir / "keys.json").read_text())
        listing["image"]["snapshot"] = listing["director"]["snapshot"]
        (keys_dir / "keys.json").write_text(json.dumps(listing))
    before = _snapshot(tmp_path)

    with capture_logs() as events:  # the cloud group itself: the top level configures logging
        result = runner.invoke(
            cloud_app,
            ["rotate-keys", str(keys_dir), *refusal.args],
            env=refusal.env if refusal.env is not None else PASSWORDS,
        )

    assert result.exit_code == 2, result.output
    assert "error: " in result.output and refusal.message in result.output
    assert _snapshot(tmp_path) == before
    logged = [e for e in events if e["event"] == "rotate_keys_refused"]
    assert len(logged) == 1 and refusal.message in logged[0]["reason"]
    assert ROOT_PASSWORD not in str(events) and ONLINE_PASSWORD not in str(events)


def test_rotate_keys_help_names_its_options() -> None:
    result = runner.invoke(app, ["cloud", "rotate-keys", "--help"])
    assert result.exit_code == 0, result.output
    for option in ("--repository", "--roles", "--threshold", "--root-days", "--root-keys"):
        assert option in result.output
