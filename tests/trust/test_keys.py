"""Signers chosen by key URI: encrypted PEM files and a PKCS#11 token (SoftHSM2)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from forecourt.trust.errors import KeyLoadError, KeyUriError, WrongKeyPassword
from forecourt.trust.issuer import RepositoryKeys, RoleSigners
from forecourt.trust.keys import KeyAlgorithm, generate_file_key, generate_pkcs11_key, load_signer
from forecourt.trust.verifier import verify_bundle

from .conftest import SoftHsmToken
from .world import NOW, ed, make_world


@pytest.mark.parametrize("algorithm", ["ed25519", "ecdsa-p256"])
def test_file_key_signs_metadata_the_car_verifies(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, algorithm: KeyAlgorithm
) -> None:
    monkeypatch.setenv("KEYPW", "correct horse")
    generate_file_key(tmp_path / "targets.pem", algorithm, b"correct horse")
    signer = load_signer(f"file:{tmp_path}/targets.pem?password-env=KEYPW")
    _assert_signer_works_for_director_targets(signer)


def test_file_key_with_wrong_password_gives_precise_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    generate_file_key(tmp_path / "k.pem", "ed25519", b"right")
    monkeypatch.setenv("KEYPW", "wrong")
    with pytest.raises(WrongKeyPassword) as caught:
        load_signer(f"file:{tmp_path}/k.pem?password-env=KEYPW")
    assert caught.value.code == "key_wrong_password"
    assert "right" not in str(caught.value)


def test_missing_key_file_and_bad_uri_are_precise(tmp_path: Path) -> None:
    with pytest.raises(KeyUriError):
        load_signer("vault:foo")
    with pytest.raises(KeyUriError):
        load_signer(f"file:{tmp_path}/k.pem")
    (tmp_path / "pw").write_text("x")
    with pytest.raises(KeyLoadError):
        load_signer(f"file:{tmp_path}/absent.pem?password-file={tmp_path}/pw")


@pytest.mark.parametrize("algorithm", ["ecdsa-p256", "ed25519"])
def test_pkcs11_key_in_softhsm_signs_metadata_the_car_verifies(
    softhsm_token: SoftHsmToken, algorithm: KeyAlgorithm
) -> None:
    uri = softhsm_token.uri(f"director-targets-{algorithm}")
    public = generate_pkcs11_key(uri, algorithm)
    signer = load_signer(uri)
    assert signer.public_key.keyid == public.keyid
    _assert_signer_works_for_director_targets(signer)


def test_pkcs11_wrong_pin_gives_precise_error(
    softhsm_token: SoftHsmToken, monkeypatch: pytest.MonkeyPatch
) -> None:
    uri = softhsm_token.uri("k")
    generate_pkcs11_key(uri, "ecdsa-p256")
    monkeypatch.setenv(softhsm_token.pin_env, "0000")
    with pytest.raises(WrongKeyPassword):
        load_signer(uri)


def _assert_signer_works_for_director_targets(signer: object) -> None:
    director_keys = RepositoryKeys(
        root=RoleSigners([ed()]),
        timestamp=RoleSigners([ed()]),
        snapshot=RoleSigners([ed()]),
        targets=RoleSigners([signer]),  # type: ignore[list-item]
        offline=RoleSigners([ed()]),
    )
    world = make_world(director_keys)
    verified = verify_bundle(world.bundle(), world.car, NOW)
    assert verified.vin == world.car.vin
    assert NOW + timedelta(days=1) == world.meta_expires
