"""The cloud's TUF role keys on disk: one encrypted PEM per role, loaded by key URI.

``init_signing_keys(DIR)`` writes ``DIR/<repo>-<role>.pem`` (Ed25519, PKCS#8 encrypted with the
password in ``FORECOURT_CLOUD_KEY_PASSWORD``) and ``DIR/keys.json`` naming each role's key URI, so
a deployment can point a role at an HSM (``pkcs11:...``) by editing one line.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

from forecourt.cloud.config import SigningKeys
from forecourt.trust.issuer import RepositoryKeys, RoleSigners
from forecourt.trust.keys import generate_file_key, load_signer

PASSWORD_ENV = "FORECOURT_CLOUD_KEY_PASSWORD"  # noqa: S105 - the variable's name
_ROLES = ("root", "timestamp", "snapshot", "targets", "offline")


def init_signing_keys(directory: Path, password: bytes) -> Path:
    """Generate every role key of the director and image repositories; return keys.json."""
    uris: dict[str, dict[str, str]] = {}
    for repo in ("director", "image"):
        uris[repo] = {}
        for role in _ROLES:
            path = directory / f"{repo}-{role}.pem"
            generate_file_key(path, "ed25519", password)
            uris[repo][role] = f"file:{path}?password-env={PASSWORD_ENV}"
    listing = directory / "keys.json"
    listing.write_text(json.dumps(uris, indent=2))
    return listing


def load_signing_keys(listing: Path, root_expires: datetime) -> SigningKeys:
    """Signers for both repositories from ``keys.json`` (files or HSM URIs)."""
    uris = json.loads(listing.read_text())

    def repo(name: str) -> RepositoryKeys:
        roles = {role: RoleSigners([load_signer(uris[name][role])]) for role in _ROLES}
        return RepositoryKeys(**roles)

    return SigningKeys(repo("director"), repo("image"), root_expires)
