"""``cloud init-keys`` keeps the repository root keys offline; ``cloud serve`` never loads them.

The root keys are written apart (``offline/``) under their own password, sign root v1 of both
repositories once, and the serving configuration (online role keys + exported root metadata)
reproduces the pinned roots byte for byte with the offline directory gone.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from forecourt.cli import app
from forecourt.cloud.cli import ROOT_FILES, _exported_roots
from forecourt.cloud.keys import PASSWORD_ENV, ROOT_PASSWORD_ENV, load_signing_keys
from forecourt.cloud.signing import BundleSigner
from forecourt.trust.errors import KeyLoadError
from forecourt.trust.keys import load_file_private_key

ONLINE_PASSWORD, ROOT_PASSWORD = "online-role-keys-1", "offline-root-keys-2"


@pytest.fixture
def keys_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "keys"
    result = CliRunner().invoke(
        app,
        ["cloud", "init-keys", str(directory)],
        env={PASSWORD_ENV: ONLINE_PASSWORD, ROOT_PASSWORD_ENV: ROOT_PASSWORD},
    )
    assert result.exit_code == 0, result.output
    return directory


def test_root_keys_are_written_offline_under_their_own_password(keys_dir: Path) -> None:
    listing = json.loads((keys_dir / "keys.json").read_text())
    assert all("root" not in roles for roles in listing.values())
    assert not list(keys_dir.glob("*-root.pem"))
    offline = json.loads((keys_dir / "offline" / "root-keys.json").read_text())
    assert set(offline) == {"director", "image"}
    for repo in ("director", "image"):
        assert f"password-env={ROOT_PASSWORD_ENV}" in offline[repo]
        path = keys_dir / "offline" / f"{repo}-root.pem"
        load_file_private_key(path, ROOT_PASSWORD.encode())
        with pytest.raises(KeyLoadError):
            load_file_private_key(path, ONLINE_PASSWORD.encode())


def test_serving_reproduces_the_pinned_roots_without_the_root_keys(
    keys_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shutil.rmtree(keys_dir / "offline")  # moved off the cloud host
    monkeypatch.setenv(PASSWORD_ENV, ONLINE_PASSWORD)
    monkeypatch.delenv(ROOT_PASSWORD_ENV, raising=False)

    signing = load_signing_keys(keys_dir / "keys.json", _exported_roots(keys_dir))
    signer = BundleSigner(signing)

    assert list(signing.director.root.signers) == []
    assert list(signing.images.root.signers) == []
    for name, data in signer.root_bytes().items():
        assert data == (keys_dir / ROOT_FILES[name]).read_bytes()
