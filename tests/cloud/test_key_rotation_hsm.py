"""``cloud rotate-keys --hsm-key ROLE=URI``: a role moved onto a key that already sits in an HSM.

The token is a real SoftHSM2 token (one per test, ``tests/trust/conftest.py``); the key is made
inside it before the ceremony, as an HSM operator would. The serving side is built as
``cloud serve`` builds it, so the bundle below is signed inside the token.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import pkcs11
import pytest
from pkcs11.util.ec import encode_named_curve_parameters
from structlog.testing import capture_logs

from forecourt.cloud.cli import app as cloud_app
from forecourt.demo.data import DemoWorld
from forecourt.trust import errors
from forecourt.trust.keys import generate_pkcs11_key
from forecourt.trust.verifier import verify_bundle
from tests.cloud.test_key_rotation import (  # noqa: F401 - keys_dir and demo are fixtures
    PASSWORDS,
    _car,
    _chain_versions,
    _root,
    _rotate,
    _serving_signer,
    _sign,
    _snapshot,
    demo,
    keys_dir,
    runner,
)
from tests.cloud.world import NOW
from tests.trust.conftest import (  # noqa: F401 - softhsm_token is a fixture
    SOFTHSM_MODULE,
    SoftHsmToken,
    softhsm_token,
)
from tests.trust.world import assert_refused

HSM_PIN = "4321"  # what the softhsm_token fixture sets the user PIN to


@pytest.mark.parametrize("kind", ["ed25519", "ecdsa-p256"])
def test_director_targets_moved_onto_an_hsm_key_signs_bundles_a_car_pinned_at_v1_accepts(
    keys_dir: Path,  # noqa: F811
    demo: DemoWorld,  # noqa: F811
    softhsm_token: SoftHsmToken,  # noqa: F811
    kind: str,
) -> None:
    uri = softhsm_token.uri("director-targets-2025")
    hsm_public = generate_pkcs11_key(uri, kind)
    car = _car(demo, keys_dir, frozenset({"n-stale", "n-after"}))
    stale_replica = _serving_signer(keys_dir)

    rotated = _rotate(keys_dir, "--repository", "director", "--hsm-key", f"targets={uri}")

    assert rotated.exit_code == 0, rotated.output
    assert f"HSM key      {uri}" in rotated.output
    listing_text = (keys_dir / "keys.json").read_text()
    assert json.loads(listing_text)["director"]["targets"] == uri  # the reference, as given
    assert HSM_PIN not in listing_text
    assert not list(keys_dir.glob("director-targets.v2*"))  # no key file for an HSM key
    v1, v2 = _root(keys_dir / "director-root.json"), _root(keys_dir / "director-root.2.json")
    assert v2.signed.roles["targets"].keyids == [hsm_public.keyid]
    assert v2.signed.keys[hsm_public.keyid].keyval == hsm_public.keyval
    assert v2.signed.roles["snapshot"].keyids == v1.signed.roles["snapshot"].keyids

    bundle = _sign(_serving_signer(keys_dir), car, "n-after", 2)
    signatures = json.loads(bundle, strict=False)["director"]["targets"]["signatures"]
    assert [s["keyid"] for s in signatures] == [hsm_public.keyid]  # signed inside the token
    assert _chain_versions(bundle, "director") == [2]
    state = verify_bundle(bundle, car.state, NOW).next_state(car.state)
    assert state.director_root == (keys_dir / "director-root.2.json").read_bytes()

    # the file key it replaced signs nothing a car holding v2 accepts
    stale = _sign(stale_replica, car, "n-stale", 3)
    assert_refused(stale, state, errors.SignatureThresholdNotMet, NOW)


def test_image_root_moved_onto_an_hsm_key_is_walked_by_a_car_and_signs_the_next_root(
    keys_dir: Path,  # noqa: F811
    demo: DemoWorld,  # noqa: F811
    softhsm_token: SoftHsmToken,  # noqa: F811
) -> None:
    uri = softhsm_token.uri("image-root-2025")
    hsm_public = generate_pkcs11_key(uri, "ed25519")
    car = _car(demo, keys_dir, frozenset({"n-1"}))
    v1 = _root(keys_dir / "image-root.json")

    rotated = _rotate(keys_dir, "--repository", "image", "--hsm-key", f"root={uri}")

    assert rotated.exit_code == 0, rotated.output
    root_listing = json.loads((keys_dir / "offline" / "root-keys.json").read_text())
    assert root_listing["image"] == uri
    v2 = _root(keys_dir / "image-root.2.json")
    assert v2.signed.roles["root"].keyids == [hsm_public.keyid]
    assert set(v2.signatures) == {hsm_public.keyid, *v1.signed.roles["root"].keyids}

    bundle = _sign(_serving_signer(keys_dir), car, "n-1", 1)
    state = verify_bundle(bundle, car.state, NOW).next_state(car.state)
    assert state.image_root == (keys_dir / "image-root.2.json").read_bytes()

    # the HSM root key now signs the next root on its own (an expiry renewal here)
    renewed = _rotate(keys_dir, "--repository", "image", "--renew-root", "--root-expires", "400")
    assert renewed.exit_code == 0, renewed.output
    assert set(_root(keys_dir / "image-root.3.json").signatures) == {hsm_public.keyid}
    assert _chain_versions(_sign(_serving_signer(keys_dir), car, "n-1", 1), "image") == [2, 3]


def _token_key(token: SoftHsmToken, label: str, kind: str) -> None:
    """A key pair of a type no role may use, made in the token the way an HSM admin would."""
    lib = pkcs11.lib(SOFTHSM_MODULE)
    lib.reinitialize()  # the token was created after the module was first loaded
    with lib.get_token(token_label=token.label).open(user_pin=HSM_PIN, rw=True) as session:
        if kind == "rsa":
            session.generate_keypair(pkcs11.KeyType.RSA, 2048, store=True, label=label)
            return
        p384 = encode_named_curve_parameters("1.3.132.0.34")
        params = session.create_domain_parameters(
            pkcs11.KeyType.EC, {pkcs11.Attribute.EC_PARAMS: p384}, local=True
        )
        params.generate_keypair(store=True, label=label)


@dataclass(frozen=True)
class HsmRefusal:
    args: tuple[str, ...]
    message: str
    prepare: str = ""


HSM_REFUSALS = {
    "object not in the token": HsmRefusal(
        ("--repository", "director", "--hsm-key", "targets={uri:absent}"),
        "--hsm-key targets: the key does not resolve: PKCS#11 object 'absent' not found",
    ),
    "unknown token": HsmRefusal(
        ("--repository", "director", "--hsm-key", "targets={uri:k}"),
        "--hsm-key targets: the key does not resolve: cannot open PKCS#11 token",
        prepare="other-token",
    ),
    "rsa key": HsmRefusal(
        ("--repository", "director", "--hsm-key", "timestamp={uri:rsa}"),
        "--hsm-key timestamp: the key does not resolve: PKCS#11 RSA key",
        prepare="rsa",
    ),
    "p-384 key": HsmRefusal(
        ("--repository", "image", "--hsm-key", "snapshot={uri:p384}"),
        "--hsm-key snapshot: the key is ecdsa-sha2-nistp384",
        prepare="p384",
    ),
    "key already held by another role": HsmRefusal(
        ("--repository", "director", "--hsm-key", "targets={uri:k}"),
        "is already used by director timestamp in director root v2",
        prepare="k-on-timestamp",
    ),
    "key held by the other repository": HsmRefusal(
        ("--repository", "image", "--hsm-key", "targets={uri:k}"),
        "is already used by director timestamp in director root v2",
        prepare="k-on-timestamp",
    ),
    "one key for two roles": HsmRefusal(
        (
            "--repository",
            "director",
            "--hsm-key",
            "targets={uri:k}",
            "--hsm-key",
            "offline={uri:k}",
        ),
        "--hsm-key offline and --hsm-key targets name the same key",
        prepare="k",
    ),
    "both repositories": HsmRefusal(
        ("--repository", "both", "--hsm-key", "targets={uri:k}"),
        "--hsm-key moves one repository's role onto the key",
        prepare="k",
    ),
    "a file key": HsmRefusal(
        ("--repository", "director", "--hsm-key", "targets=file:/tmp/k.pem?password-env=X"),
        "--hsm-key targets: expected a pkcs11: URI",
    ),
    "pin in the uri": HsmRefusal(
        ("--repository", "director", "--hsm-key", "targets={uri:k}&pin-value=4321"),
        "the URI carries the PIN (pin-value)",
        prepare="k",
    ),
    "unknown role": HsmRefusal(
        ("--repository", "director", "--hsm-key", "mirror={uri:k}"),
        "unknown role mirror: the roles are root,",
        prepare="k",
    ),
    "no role": HsmRefusal(
        ("--repository", "director", "--hsm-key", "{uri:k}"),
        "--hsm-key takes ROLE=pkcs11:",
    ),
    "threshold above the hsm keys": HsmRefusal(
        ("--repository", "director", "--hsm-key", "targets={uri:k}", "--threshold", "2"),
        "threshold 2 for director targets is larger than its 1 key(s)",
        prepare="k",
    ),
}


@pytest.fixture(params=sorted(HSM_REFUSALS))
def hsm_refusal(request: pytest.FixtureRequest) -> HsmRefusal:
    return HSM_REFUSALS[request.param]


def test_an_hsm_key_that_cannot_serve_its_role_is_refused_logged_and_nothing_changes(
    keys_dir: Path,  # noqa: F811
    softhsm_token: SoftHsmToken,  # noqa: F811
    hsm_refusal: HsmRefusal,
) -> None:
    token = softhsm_token
    if hsm_refusal.prepare in ("k", "k-on-timestamp"):
        generate_pkcs11_key(token.uri("k"), "ed25519")
    if hsm_refusal.prepare == "k-on-timestamp":
        moved = _rotate(
            keys_dir, "--repository", "director", "--hsm-key", f"timestamp={token.uri('k')}"
        )
        assert moved.exit_code == 0, moved.output
    if hsm_refusal.prepare in ("rsa", "p384"):
        _token_key(token, hsm_refusal.prepare, hsm_refusal.prepare)
    if hsm_refusal.prepare == "other-token":
        token = SoftHsmToken("no-such-token", token.pin_env)
    args = [re.sub(r"\{uri:(\w+)\}", lambda m: token.uri(m[1]), a) for a in hsm_refusal.args]
    before = _snapshot(keys_dir)

    with capture_logs() as events:
        result = runner.invoke(cloud_app, ["rotate-keys", str(keys_dir), *args], env=PASSWORDS)

    assert result.exit_code == 2, result.output
    assert "error: " in result.output and hsm_refusal.message in result.output
    assert _snapshot(keys_dir) == before
    logged = [e for e in events if e["event"] == "rotate_keys_refused"]
    assert len(logged) == 1 and hsm_refusal.message in logged[0]["reason"]
    assert f"={HSM_PIN}" not in str(events)  # not even the PIN a bad URI carried
