"""The cloud's TUF role keys on disk, loaded by key URI; root keys kept apart, offline.

``init_signing_keys(DIR, password, root_directory=OFFLINE, root_password=...)`` writes the
online role keys (timestamp, snapshot, targets and the director's offline-package role) to
``DIR/<repo>-<role>.pem`` (Ed25519, PKCS#8 encrypted with ``FORECOURT_CLOUD_KEY_PASSWORD``) and
``DIR/keys.json`` naming each by key URI, and the two root keys to ``OFFLINE/<repo>-root.pem``
under their own password (``FORECOURT_ROOT_KEY_PASSWORD``) with ``OFFLINE/root-keys.json``. Any
line of either listing may name an HSM key (``pkcs11:...``) instead.

:func:`sign_roots` is the one place root keys sign (root v1 of both repositories, at
``cloud init-keys``); :func:`load_signing_keys` loads only the online role keys plus the exported
root metadata, so a serving process never holds a root key. Without ``root_directory`` the root
keys stay beside the others (the single-process demo).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path

from forecourt.cloud.config import SigningKeys
from forecourt.trust._sslib import Metadata, Root
from forecourt.trust.issuer import Repository, RepositoryKeys, RoleSigners
from forecourt.trust.keys import generate_file_key, load_signer

PASSWORD_ENV = "FORECOURT_CLOUD_KEY_PASSWORD"  # noqa: S105 - the variable's name
ROOT_PASSWORD_ENV = "FORECOURT_ROOT_KEY_PASSWORD"  # noqa: S105 - the variable's name
ROOT_LISTING = "root-keys.json"
REPOSITORIES = ("director", "image")
ONLINE_ROLES = ("timestamp", "snapshot", "targets", "offline")
_ROLES = ("root", *ONLINE_ROLES)


def init_signing_keys(
    directory: Path,
    password: bytes,
    *,
    root_directory: Path | None = None,
    root_password: bytes | None = None,
    root_password_env: str = ROOT_PASSWORD_ENV,
) -> Path:
    """Generate every role key of both repositories; return ``keys.json``.

    With ``root_directory`` the root keys go there, encrypted with ``root_password``, listed in
    its ``root-keys.json`` and absent from ``keys.json``; otherwise all keys go to ``directory``.
    """
    uris: dict[str, dict[str, str]] = {}
    root_uris: dict[str, str] = {}
    for repo in REPOSITORIES:
        uris[repo] = {}
        for role in ONLINE_ROLES:
            path = directory / f"{repo}-{role}.pem"
            generate_file_key(path, "ed25519", password)
            uris[repo][role] = f"file:{path}?password-env={PASSWORD_ENV}"
        if root_directory is None:
            path = directory / f"{repo}-root.pem"
            generate_file_key(path, "ed25519", password)
            uris[repo]["root"] = f"file:{path}?password-env={PASSWORD_ENV}"
        else:
            root_directory.mkdir(parents=True, exist_ok=True, mode=0o700)
            path = root_directory / f"{repo}-root.pem"
            generate_file_key(path, "ed25519", root_password or password)
            root_uris[repo] = f"file:{path}?password-env={root_password_env}"
    if root_directory is not None:
        (root_directory / ROOT_LISTING).write_text(json.dumps(root_uris, indent=2))
    listing = directory / "keys.json"
    listing.write_text(json.dumps(uris, indent=2))
    return listing


def _online(uris: Mapping[str, str]) -> RepositoryKeys:
    roles = {role: RoleSigners([load_signer(uris[role])]) for role in ONLINE_ROLES}
    return RepositoryKeys(root=RoleSigners([]), **roles)


def sign_roots(
    listing: Path, root_listing: Path | None, expires: datetime
) -> dict[str, Metadata[Root]]:
    """Root v1 of each repository, signed by its root key (from ``root_listing``, else from
    ``keys.json``), over the online keys ``listing`` names. The offline ceremony's one use."""
    uris = json.loads(listing.read_text())
    root_uris = json.loads(root_listing.read_text()) if root_listing else {}
    roots: dict[str, Metadata[Root]] = {}
    for repo in REPOSITORIES:
        root_uri = root_uris.get(repo) or uris[repo]["root"]
        keys = _online(uris[repo])
        keys = RepositoryKeys(
            RoleSigners([load_signer(root_uri)]),
            keys.timestamp,
            keys.snapshot,
            keys.targets,
            keys.offline,
        )
        roots[repo] = Repository(keys, expires).root
    return roots


def load_signing_keys(listing: Path, roots: Mapping[str, Metadata[Root]]) -> SigningKeys:
    """The online role keys of both repositories (files or HSM URIs) with the exported roots.

    No root key is loaded, even if ``keys.json`` still names one (a deployment from before the
    split): the roots are served as exported.
    """
    uris = json.loads(listing.read_text())
    return SigningKeys(
        _online(uris["director"]),
        _online(uris["image"]),
        roots["director"].signed.expires,
        director_root=roots["director"],
        image_root=roots["image"],
    )
