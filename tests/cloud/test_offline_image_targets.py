"""Image repository targets signed offline (Uptane), published, and served by a cloud that holds
no image targets key.

Keys are real encrypted files from ``cloud init-keys`` / ``cloud rotate-keys``; signing and
publication go through the CLI against SQLite and PostgreSQL; activations go over real mutual
TLS; bundles are checked by the car's verifier pinned at the roots v1 ``init-keys`` exported.
"""

from __future__ import annotations

import base64
import dataclasses
import json
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from structlog.testing import capture_logs
from typer.testing import CliRunner, Result

from forecourt.cli import app
from forecourt.cloud.app import build_context, create_app
from forecourt.cloud.catalog.service import put_package
from forecourt.cloud.cli import _exported_roots
from forecourt.cloud.cli import app as cloud_app
from forecourt.cloud.context import CloudContext
from forecourt.cloud.db import Database
from forecourt.cloud.keys import (
    OFFLINE_LISTING,
    PASSWORD_ENV,
    ROOT_PASSWORD_ENV,
    load_offline_image_targets,
    load_signing_keys,
)
from forecourt.cloud.packages.image_targets import (
    catalog_targets,
    image_name,
    publish_image_targets,
    sign_image_targets,
)
from forecourt.cloud.server import serve_in_thread
from forecourt.cloud.signing import ONLINE, BundleSigner, metadata_version_clock
from forecourt.core import ActivationPlan, LifecycleState, Vehicle, plan_activation
from forecourt.demo.data import DemoWorld, generate_world
from forecourt.store.registry import ImageTargetsRow
from forecourt.trust._sslib import CryptoSigner, Metadata, Root, Targets
from forecourt.trust.model import NonceFreshness
from forecourt.trust.verifier import CarTrustState, EcuTrustState, verify_bundle
from tests.cloud.conftest import Clients
from tests.cloud.world import NOW, CloudWorld, build_world, full_consent

ONLINE_PASSWORD, ROOT_PASSWORD = "online-role-keys-1", "offline-root-keys-2"
PASSWORDS: dict[str, str | None] = {PASSWORD_ENV: ONLINE_PASSWORD, ROOT_PASSWORD_ENV: ROOT_PASSWORD}
runner = CliRunner()


def _cli(*args: str, env: dict[str, str | None] | None = None) -> Result:
    return runner.invoke(app, ["cloud", *args], env=env if env is not None else PASSWORDS)


def _init(directory: Path, *flags: str) -> Path:
    result = _cli("init-keys", str(directory), *flags)
    assert result.exit_code == 0, result.output
    return directory


@pytest.fixture
def keys_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A deployment whose image targets key was put offline at ``init-keys``; the test process
    then runs as ``cloud serve`` does (online password only)."""
    directory = _init(tmp_path / "keys", "--offline-image-targets")
    monkeypatch.setenv(PASSWORD_ENV, ONLINE_PASSWORD)
    monkeypatch.delenv(ROOT_PASSWORD_ENV, raising=False)
    return directory


def _image_root(keys_dir: Path) -> Root:
    return _exported_roots(keys_dir)["image"][-1].signed


def _published_count(db_url: str) -> int:
    db = Database(db_url, run_migrations=False)
    try:
        with db.sessions() as session:
            return session.scalar(select(func.count()).select_from(ImageTargetsRow)) or 0
    finally:
        db.dispose()


def _sign_images(
    keys_dir: Path, db_url: str, out: Path, *extra: str, env: dict[str, str | None] | None = None
) -> Result:
    return _cli(
        "sign-images",
        "--keys",
        str(keys_dir),
        "--database-url",
        db_url,
        "--out",
        str(out),
        *extra,
        env=env,
    )


def _publish(keys_dir: Path, db_url: str, file: Path) -> Result:
    return _cli(
        "publish-image-targets",
        str(file),
        "--keys",
        str(keys_dir / "keys.json"),
        "--database-url",
        db_url,
    )


def _sign_and_publish(keys_dir: Path, db_url: str, out: Path) -> bytes:
    signed = _sign_images(keys_dir, db_url, out)
    assert signed.exit_code == 0, signed.output
    published = _publish(keys_dir, db_url, out)
    assert published.exit_code == 0, published.output
    return out.read_bytes()


def _car_state(keys_dir: Path, car: Vehicle, nonce: str) -> CarTrustState:
    """The car as the factory left it: pinned at the roots v1 ``init-keys`` exported."""
    return CarTrustState(
        vin=str(car.vin),
        director_root=(keys_dir / "director-root.json").read_bytes(),
        image_root=(keys_dir / "image-root.json").read_bytes(),
        ecus=tuple(EcuTrustState(e.serial, e.hardware_number, e.role.value) for e in car.ecus),
        factory_options=car.option_codes,
        issued_nonces=frozenset({nonce}),
    )


def _plan(demo: DemoWorld, car: Vehicle, features: tuple[str, ...]) -> ActivationPlan:
    profile = demo.profile(car.market)
    plan = plan_activation(
        car,
        catalog=demo.catalog,
        entitlements=demo.entitlements,
        profile=profile,
        requested=features,
        consent=full_consent(profile.notice_version),
        now=NOW,
    )
    assert isinstance(plan, ActivationPlan)
    return plan


def _activatable(demo: DemoWorld) -> tuple[Vehicle, ActivationPlan]:
    """A car at its dealer whose bought features plan and install at least one package."""
    for car in demo.vehicles:
        if car.state is not LifecycleState.AT_DEALER:
            continue
        bought = tuple(
            sorted(
                e.feature_code
                for e in demo.entitlements
                if e.vin == car.vin and e.is_active_at(NOW) and e.source.value != "standard"
            )
        )
        try:
            plan = _plan(demo, car, bought)
        except AssertionError:
            continue
        if bought and any(t.packages for t in plan.targets):
            return car, plan
    raise AssertionError("the demo world has no car that installs a package")


def _sign(signer: BundleSigner, plan: ActivationPlan, car: Vehicle, nonce: str) -> bytes:
    features = {code for target in plan.targets for code in target.features}
    return signer.sign(
        plan,
        car,
        freshness=NonceFreshness(nonce),
        activation_counter=1,
        feature_until=dict.fromkeys(features),
        feature_requires={},
        consent={},
        now=NOW,
        expires=NOW + timedelta(minutes=5),
    )


def _reasons(response: Any) -> list[dict[str, Any]]:
    reasons: list[dict[str, Any]] = response.json()["reasons"]
    return reasons


@dataclasses.dataclass
class OfflineCloud:
    """A seeded cloud whose signing keys come from ``keys_dir`` (no image targets key),
    served over mutual TLS."""

    world: CloudWorld
    context: CloudContext
    clients: Clients
    db_url: str


@pytest.fixture
def offline_cloud(db_url: str, keys_dir: Path, tmp_path: Path) -> Iterator[OfflineCloud]:
    world = build_world(db_url)
    signing = load_signing_keys(keys_dir / "keys.json", _exported_roots(keys_dir))
    config = dataclasses.replace(world.config, signing=signing)
    context = build_context(config)
    files = world.tls_files(tmp_path / "server")
    with serve_in_thread(create_app(config, context), files) as url:
        clients = Clients(world, url, tmp_path / "clients")
        yield OfflineCloud(world, context, clients, db_url)
        clients.close()
    context.db.dispose()
    world.context.db.dispose()


def test_a_cloud_without_the_image_targets_key_authorises_with_published_targets(
    offline_cloud: OfflineCloud, keys_dir: Path, tmp_path: Path
) -> None:
    listing = json.loads((keys_dir / "keys.json").read_text())
    assert "targets" not in listing["image"]
    assert not offline_cloud.context.signer.holds_image_targets_key
    world = offline_cloud.world
    car, features = world.activatable()
    edge = offline_cloud.clients.dealer(car.dealer_id or "")

    before = edge.post("/v1/activations", json=world.request(car, features))
    assert before.status_code == 422, before.text
    assert {r["code"] for r in _reasons(before)} == {"image_not_published"}

    published = _sign_and_publish(keys_dir, offline_cloud.db_url, tmp_path / "image-targets.json")
    body = world.request(car, features)
    response = edge.post("/v1/activations", json=body)

    assert response.status_code == 201, response.text
    bundle = base64.b64decode(response.json()["bundle"])
    verified = verify_bundle(bundle, _car_state(keys_dir, car, body["nonce"]), NOW)
    assert set(features) <= {g.feature for ecu in verified.ecus for g in ecu.features}
    assert any(ecu.images for ecu in verified.ecus)
    assert json.loads(bundle)["image"]["targets"] == json.loads(published)


def test_signed_image_targets_lead_the_clock_that_online_replicas_still_sign_with(
    offline_cloud: OfflineCloud, keys_dir: Path, tmp_path: Path
) -> None:
    # A replica that has not restarted yet signs image targets online with the millisecond
    # clock: the offline version stays above anything it can issue in the next 24 hours.
    before = metadata_version_clock()
    signed = _sign_images(keys_dir, offline_cloud.db_url, tmp_path / "lead.json")
    assert signed.exit_code == 0, signed.output
    version = json.loads((tmp_path / "lead.json").read_bytes())["signed"]["version"]
    assert version >= before + 24 * 3_600_000
    plain = _sign_images(
        keys_dir, offline_cloud.db_url, tmp_path / "plain.json", "--version-lead", "0"
    )
    assert plain.exit_code == 0, plain.output
    assert json.loads((tmp_path / "plain.json").read_bytes())["signed"]["version"] < version


def test_a_plan_needing_an_unpublished_package_is_refused_with_image_not_published(
    offline_cloud: OfflineCloud, keys_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = offline_cloud.world
    car, features = world.activatable()
    plan = _plan(world.demo, car, features)
    needed = {
        image_name(package, target.hardware_number)
        for target in plan.targets
        for package in target.packages
    }
    assert needed, "the plan installs no package"
    root = _image_root(keys_dir)
    monkeypatch.setenv(ROOT_PASSWORD_ENV, ROOT_PASSWORD)  # the offline signing station
    role = load_offline_image_targets(keys_dir / "offline", root)
    targets = {n: t for n, t in catalog_targets(world.demo.catalog).items() if n not in needed}
    data = sign_image_targets(targets, role.signers, version=7, expires=NOW + timedelta(days=9))
    with offline_cloud.context.db.transaction() as session:
        publish_image_targets(session, data, root, now=NOW, by="test")

    response = offline_cloud.clients.dealer(car.dealer_id or "").post(
        "/v1/activations", json=world.request(car, features)
    )

    assert response.status_code == 422, response.text
    reasons = _reasons(response)
    assert {r["code"] for r in reasons} == {"image_not_published"}
    assert {n for n in needed if any(n in r["message"] for r in reasons)} == needed


def test_with_nothing_published_the_demo_cloud_signs_image_targets_online(
    world: CloudWorld, clients: Clients
) -> None:
    assert world.context.signer.image_state() == ONLINE
    car, features = world.activatable()
    body = world.request(car, features)

    response = clients.dealer(car.dealer_id or "").post("/v1/activations", json=body)

    assert response.status_code == 201, response.text
    roots = world.context.signer.root_bytes()
    state = CarTrustState(
        vin=str(car.vin),
        director_root=roots["director"],
        image_root=roots["image"],
        ecus=tuple(EcuTrustState(e.serial, e.hardware_number, e.role.value) for e in car.ecus),
        factory_options=car.option_codes,
        issued_nonces=frozenset({body["nonce"]}),
    )
    verify_bundle(base64.b64decode(response.json()["bundle"]), state, NOW)


# -- publication refusals ------------------------------------------------------------------


def _resigned(data: bytes, mutate: Callable[[Metadata[Targets]], None], signer: Any) -> bytes:
    md = Metadata[Targets].from_bytes(data)
    mutate(md)
    md.signatures.clear()
    md.sign(signer)
    return json.dumps(md.to_dict()).encode()


REFUSALS: dict[str, tuple[str, str]] = {
    "wrong_key": ("0 valid signature(s)", "a key image root v1 does not list"),
    "expired": ("expired at", "expired"),
    "older_version": ("not above the published", "rollback"),
    "same_version": ("not above the published", "replay"),
}


@pytest.mark.parametrize("kind", sorted(REFUSALS))
def test_publication_refuses_wrong_key_expired_and_older_metadata_and_stores_nothing(
    kind: str, db_url: str, keys_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    Database(db_url).dispose()  # a migrated registry
    demo = generate_world(seed=7, vehicles=4, reference_time=NOW)
    db = Database(db_url, run_migrations=False)
    with db.transaction() as session:
        for package in demo.catalog.packages:
            put_package(session, package)
    db.dispose()
    first = _sign_and_publish(keys_dir, db_url, tmp_path / "v1.json")
    version = json.loads(first)["signed"]["version"]
    monkeypatch.setenv(ROOT_PASSWORD_ENV, ROOT_PASSWORD)
    offline_key = load_offline_image_targets(keys_dir / "offline", _image_root(keys_dir)).signers[0]

    def bump(md: Metadata[Targets]) -> None:
        md.signed.version = version + 1

    def expire(md: Metadata[Targets]) -> None:
        md.signed.version = version + 1
        md.signed.expires = NOW - timedelta(minutes=1)

    def older(md: Metadata[Targets]) -> None:
        md.signed.version = version - 1

    forged = {
        "wrong_key": lambda: _resigned(first, bump, CryptoSigner.generate_ed25519()),
        "expired": lambda: _resigned(first, expire, offline_key),
        "older_version": lambda: _resigned(first, older, offline_key),
        "same_version": lambda: first,
    }[kind]()
    file = tmp_path / f"{kind}.json"
    file.write_bytes(forged)
    expected, _why = REFUSALS[kind]

    with capture_logs() as logs:  # the cloud group itself: the top level configures logging
        result = runner.invoke(
            cloud_app,
            ["publish-image-targets", str(file), "--keys", str(keys_dir), "--database-url", db_url],
        )

    assert result.exit_code == 2, result.output
    assert "error:" in result.output and expected in result.output
    assert _published_count(db_url) == 1
    refused = [e for e in logs if e["event"] == "image_targets_refused"]
    assert len(refused) == 1 and expected in refused[0]["reason"]
    assert ROOT_PASSWORD not in str(logs) and ONLINE_PASSWORD not in str(logs)


def test_sign_images_refuses_without_offline_keys_or_their_password(
    db_url: str, tmp_path: Path
) -> None:
    Database(db_url).dispose()
    online = _init(tmp_path / "online-keys")  # image targets key in keys.json, as before
    offline = _init(tmp_path / "offline-keys", "--offline-image-targets")
    out = tmp_path / "image-targets.json"

    not_offline = _sign_images(online, db_url, out)
    no_password = _sign_images(
        offline, db_url, out, env={PASSWORD_ENV: ONLINE_PASSWORD, ROOT_PASSWORD_ENV: None}
    )
    empty_catalog = _sign_images(offline, db_url, out)
    bad_days = _sign_images(offline, db_url, out, "--days", "0")

    assert not_offline.exit_code == 2
    assert f"{OFFLINE_LISTING} lists no image targets key" in not_offline.output
    assert no_password.exit_code == 2
    assert "image targets keys unavailable" in no_password.output
    assert empty_catalog.exit_code == 2
    assert "the catalog holds no packages" in empty_catalog.output
    assert bad_days.exit_code == 2 and "--days 0 is below 1" in bad_days.output
    assert not out.exists()


# -- moving an existing deployment's image targets offline -----------------------------------


def test_rotate_keys_moves_image_targets_offline_and_a_car_pinned_at_v1_follows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    keys_dir = _init(tmp_path / "keys")
    old_listing = json.loads((keys_dir / "keys.json").read_text())
    assert "targets" in old_listing["image"]
    misuse = _cli(
        "rotate-keys",
        str(keys_dir),
        "--repository",
        "director",
        "--roles",
        "targets",
        "--offline-targets",
    )
    assert misuse.exit_code == 2 and "--repository image --roles targets" in misuse.output

    rotated = _cli(
        "rotate-keys",
        str(keys_dir),
        "--repository",
        "image",
        "--roles",
        "targets",
        "--offline-targets",
    )

    assert rotated.exit_code == 0, rotated.output
    listing = json.loads((keys_dir / "keys.json").read_text())
    assert "targets" not in listing["image"]
    assert listing["director"] == old_listing["director"]
    offline = json.loads((keys_dir / "offline" / OFFLINE_LISTING).read_text())
    assert f"password-env={ROOT_PASSWORD_ENV}" in offline["image"]["targets"]
    v2 = Metadata[Root].from_bytes((keys_dir / "image-root.2.json").read_bytes()).signed
    assert len(v2.roles["targets"].keyids) == 1

    db_url = f"sqlite:///{tmp_path / 'cloud.sqlite3'}"
    demo = generate_world(seed=7, vehicles=12, reference_time=NOW)
    db = Database(db_url)
    with db.transaction() as session:
        for package in demo.catalog.packages:
            put_package(session, package)
    first = json.loads(_sign_and_publish(keys_dir, db_url, tmp_path / "v1.json"))

    monkeypatch.setenv(PASSWORD_ENV, ONLINE_PASSWORD)  # a serving process, two workers
    monkeypatch.delenv(ROOT_PASSWORD_ENV, raising=False)
    workers = [
        BundleSigner(load_signing_keys(keys_dir / "keys.json", _exported_roots(keys_dir)), db)
        for _ in range(2)
    ]
    car, plan = _activatable(demo)
    for worker in workers:
        assert not worker.holds_image_targets_key
        bundle = _sign(worker, plan, car, "n1")
        verify_bundle(bundle, _car_state(keys_dir, car, "n1"), NOW)
        assert json.loads(bundle)["image"]["targets"] == first

    second = json.loads(_sign_and_publish(keys_dir, db_url, tmp_path / "v2.json"))
    assert second["signed"]["version"] > first["signed"]["version"]
    for worker in workers:
        bundle = _sign(worker, plan, car, "n2")
        assert json.loads(bundle)["image"]["targets"] == second
        verify_bundle(bundle, _car_state(keys_dir, car, "n2"), NOW)
    db.dispose()
