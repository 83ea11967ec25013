"""``cloud rotate-keys --renew-root``: a root about to expire renewed without changing a key.

Keys are real encrypted files from ``cloud init-keys``; bundles are signed as ``cloud serve``
signs them and checked by the car's verifier at a time after the old root expired.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from forecourt.cloud.cli import app as cloud_app
from forecourt.cloud.signing import BundleSigner
from forecourt.demo.data import DemoWorld
from forecourt.trust import errors
from forecourt.trust.model import NonceFreshness
from forecourt.trust.verifier import verify_bundle
from tests.cloud.test_key_rotation import (  # noqa: F401 - keys_dir and demo are fixtures
    ONLINE_PASSWORD,
    PASSWORD_ENV,
    PASSWORDS,
    ROOT_PASSWORD,
    ROOT_PASSWORD_ENV,
    Car,
    _car,
    _chain_versions,
    _cli,
    _root,
    _rotate,
    _serving_signer,
    _snapshot,
    demo,
    keys_dir,
    runner,
)
from tests.cloud.world import NOW
from tests.trust.world import assert_refused, tamper

LATER = NOW + timedelta(days=3)  # after a one-day root has expired


def _sign_at(signer: BundleSigner, car: Car, nonce: str, now: datetime) -> bytes:
    features = {code for target in car.plan.targets for code in target.features}
    return signer.sign(
        car.plan,
        car.vehicle,
        freshness=NonceFreshness(nonce),
        activation_counter=1,
        feature_until=dict.fromkeys(features),
        feature_requires={},
        consent={},
        now=now,
        expires=now + timedelta(minutes=5),
    )


def _without_version_and_expiry(path: Path) -> dict[str, Any]:
    signed = json.loads(path.read_bytes())["signed"]
    return {k: v for k, v in signed.items() if k not in ("version", "expires")}


@pytest.fixture
def short_lived_keys(tmp_path: Path) -> Path:
    """A deployment whose roots expire tomorrow."""
    directory = tmp_path / "short"
    result = _cli("init-keys", str(directory), "--root-days", "1")
    assert result.exit_code == 0, result.output
    return directory


def test_a_renewed_root_keeps_every_key_and_a_car_pinned_at_v1_accepts_it_after_v1_expired(
    short_lived_keys: Path,
    demo: DemoWorld,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    keys = short_lived_keys
    monkeypatch.setenv(PASSWORD_ENV, ONLINE_PASSWORD)  # what cloud serve runs with
    car = _car(demo, keys, frozenset({"n-before", "n-after"}))
    assert_refused(
        _sign_at(_serving_signer(keys), car, "n-before", LATER),
        car.state,
        errors.MetadataExpired,
        LATER,
    )
    listings = {
        p: p.read_bytes() for p in (keys / "keys.json", keys / "offline" / "root-keys.json")
    }
    key_files = sorted(keys.rglob("*.pem"))

    renewed = _rotate(keys, "--repository", "both", "--renew-root", "--root-expires", "400")

    assert renewed.exit_code == 0, renewed.output
    assert "same keys" in renewed.output
    for repo in ("director", "image"):
        v1, v2 = keys / f"{repo}-root.json", keys / f"{repo}-root.2.json"
        assert _without_version_and_expiry(v2) == _without_version_and_expiry(v1)
        assert _root(v2).signed.version == 2
        assert _root(v2).signed.expires >= NOW + timedelta(days=399)
        assert set(_root(v2).signatures) == set(_root(v1).signed.roles["root"].keyids)
    assert {p: p.read_bytes() for p in listings} == listings  # no listing changed
    assert sorted(keys.rglob("*.pem")) == key_files  # and no key was made

    bundle = _sign_at(_serving_signer(keys), car, "n-after", LATER)
    assert _chain_versions(bundle, "director") == [2]
    assert _chain_versions(bundle, "image") == [2]
    state = verify_bundle(bundle, car.state, LATER).next_state(car.state)
    assert state.director_root == (keys / "director-root.2.json").read_bytes()
    assert state.image_root == (keys / "image-root.2.json").read_bytes()


def test_renewing_a_threshold_2_root_needs_both_root_keys_and_a_car_checks_both(
    keys_dir: Path,  # noqa: F811
    demo: DemoWorld,  # noqa: F811
) -> None:
    car = _car(demo, keys_dir, frozenset({"n-1"}))
    raised = _rotate(keys_dir, "--repository", "director", "--roles", "root", "--threshold", "2")
    assert raised.exit_code == 0, raised.output

    renewed = _rotate(keys_dir, "--repository", "director", "--renew-root", "--root-expires", "400")

    assert renewed.exit_code == 0, renewed.output
    assert not (keys_dir / "image-root.2.json").exists()
    v2, v3 = _root(keys_dir / "director-root.2.json"), _root(keys_dir / "director-root.3.json")
    assert v3.signed.roles["root"].threshold == 2
    assert set(v3.signatures) == set(v2.signed.roles["root"].keyids)
    bundle = _sign_at(_serving_signer(keys_dir), car, "n-1", NOW)
    assert _chain_versions(bundle, "director") == [2, 3]
    state = verify_bundle(bundle, car.state, NOW).next_state(car.state)
    assert state.director_root == (keys_dir / "director-root.3.json").read_bytes()

    def one_root_signature_on_v3(obj: Any) -> None:
        v3_doc = obj["director"]["root"][1]
        v3_doc["signatures"] = v3_doc["signatures"][:1]

    refusal = assert_refused(
        tamper(bundle, one_root_signature_on_v3), car.state, errors.RootRotationInvalid, NOW
    )
    assert refusal.nrc == 0x35

    # with one of the two root keys only, the ceremony refuses to renew
    listing = keys_dir / "offline" / "root-keys.json"
    root_uris = json.loads(listing.read_text())
    root_uris["director"] = root_uris["director"][:1]
    listing.write_text(json.dumps(root_uris))
    before = _snapshot(keys_dir)
    short = _rotate(keys_dir, "--repository", "director", "--renew-root", "--root-expires", "400")
    assert short.exit_code == 2
    assert "1 of them among the 2 root v3 lists: not the current root keys" in short.output
    assert _snapshot(keys_dir) == before


@dataclass(frozen=True)
class RenewalRefusal:
    args: tuple[str, ...]
    message: str
    env: dict[str, str | None] | None = None
    prepare: str = ""


RENEWAL_REFUSALS = {
    "root keys moved away": RenewalRefusal(
        ("--repository", "director"),
        "the current root keys are needed to renew: cannot read",
        prepare="move-offline",
    ),
    "a root key file missing": RenewalRefusal(
        ("--repository", "image"),
        "image root keys unavailable",
        prepare="drop-image-root-key",
    ),
    "wrong root password": RenewalRefusal(
        ("--repository", "both"),
        "director root keys unavailable",
        env={**PASSWORDS, ROOT_PASSWORD_ENV: "not-it"},
    ),
    "expiry not extended": RenewalRefusal(
        ("--repository", "director", "--root-expires", "30"),
        "a renewal must extend it",
    ),
    "a key change asked for": RenewalRefusal(
        ("--repository", "director", "--roles", "targets", "--threshold", "2"),
        "--renew-root keeps every key: drop --roles, --threshold",
    ),
    "history tampered": RenewalRefusal(
        ("--repository", "director"),
        "the exported roots do not verify",
        prepare="tamper-v1",
    ),
}


@pytest.fixture(params=sorted(RENEWAL_REFUSALS))
def renewal_refusal(request: pytest.FixtureRequest) -> RenewalRefusal:
    return RENEWAL_REFUSALS[request.param]


def test_a_refused_renewal_exits_2_says_why_logs_it_and_changes_nothing(
    keys_dir: Path,  # noqa: F811
    tmp_path: Path,
    renewal_refusal: RenewalRefusal,
) -> None:
    if renewal_refusal.prepare == "move-offline":
        (keys_dir / "offline").rename(tmp_path / "usb-stick")
    elif renewal_refusal.prepare == "drop-image-root-key":
        (keys_dir / "offline" / "image-root.pem").rename(tmp_path / "image-root.pem")
    elif renewal_refusal.prepare == "tamper-v1":
        v1 = json.loads((keys_dir / "director-root.json").read_bytes())
        v1["signed"]["expires"] = "2099-01-01T00:00:00Z"
        (keys_dir / "director-root.json").write_text(json.dumps(v1))
    before = _snapshot(tmp_path)

    with capture_logs() as events:
        result = runner.invoke(
            cloud_app,
            ["rotate-keys", str(keys_dir), "--renew-root", *renewal_refusal.args],
            env=renewal_refusal.env if renewal_refusal.env is not None else PASSWORDS,
        )

    assert result.exit_code == 2, result.output
    assert "error: " in result.output and renewal_refusal.message in result.output
    assert _snapshot(tmp_path) == before
    logged = [e for e in events if e["event"] == "rotate_keys_refused"]
    assert len(logged) == 1 and renewal_refusal.message in logged[0]["reason"]
    assert ROOT_PASSWORD not in str(events)
