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

:func:`rotate_signing_keys` is the key-rotation ceremony (``cloud rotate-keys``, run offline with
the root keys): new keys for the named roles, root vN+1 signed by the old and (if root rotates)
the new root keys, exported as ``<repo>-root.<N+1>.json`` beside v1 (``<repo>-root.json``, what
cars pinned). A listing line may name several key URIs (a list) when a role's threshold is above
one. :func:`load_root_history` reads the exported chain back and checks it as a car walks it.
A rotated role may move onto a key that already sits in an HSM (``rotate-keys --hsm-key
ROLE=pkcs11:...``, :func:`resolve_hsm_key`): the listing then records the URI and no file is
written. :func:`renew_root` (``rotate-keys --renew-root``) writes root vN+1 with the same keys
and a later expiry, signed by the current root keys, so an expiring root is renewed without a
rotation.

The image repository's targets role may be held offline too (Uptane: the image repository signs
what exists offline): ``init-keys --offline-image-targets`` or ``rotate-keys --repository image
--roles targets --offline-targets`` put its keys beside the root keys, listed in
``OFFLINE/offline-keys.json`` (``{"image": {"targets": URI}}``) and absent from ``keys.json``.
``cloud sign-images`` signs the image targets with them (:func:`load_offline_image_targets`); a
serving process then holds no image targets key (:func:`load_signing_keys` leaves the role empty).
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from forecourt.cloud.config import SigningKeys
from forecourt.logging import get_logger
from forecourt.trust._sslib import (
    CryptoSigner,
    Metadata,
    Root,
    Signer,
    UnverifiedSignatureError,
    VerificationError,
)
from forecourt.trust.canonical import canonical_bytes, metadata_from_bytes
from forecourt.trust.errors import TrustError
from forecourt.trust.issuer import (
    Repository,
    RepositoryKeys,
    RoleSigners,
    RootChainInvalid,
    RootKeysMismatch,
    check_root_chain,
)
from forecourt.trust.keys import generate_file_key, load_signer, public_key_of
from forecourt.trust.model import OFFLINE_ROLE_FIELD

PASSWORD_ENV = "FORECOURT_CLOUD_KEY_PASSWORD"  # noqa: S105 - the variable's name
ROOT_PASSWORD_ENV = "FORECOURT_ROOT_KEY_PASSWORD"  # noqa: S105 - the variable's name
KEY_LISTING = "keys.json"
ROOT_LISTING = "root-keys.json"
OFFLINE_LISTING = "offline-keys.json"
"""Beside ``root-keys.json``: the non-root role keys held offline (the image targets role)."""
REPOSITORIES = ("director", "image")
ONLINE_ROLES = ("timestamp", "snapshot", "targets", "offline")
ROLES = ("root", *ONLINE_ROLES)

_log = get_logger("cloud.keys")


class KeyListingError(ValueError):
    """``keys.json`` or ``root-keys.json`` is missing, unreadable or not a key listing."""


class RootHistoryError(ValueError):
    """The exported root metadata is missing, unreadable, has a gap or does not verify."""


class RotationRefused(ValueError):
    """``cloud rotate-keys`` cannot rotate as asked; nothing was written."""


HSM_KEY_SCHEMES = {"ed25519": "ed25519", "ecdsa": "ecdsa-sha2-nistp256"}
"""Key type -> the scheme an HSM key must have to be listed by a root: Ed25519, or ECDSA P-256,
which every HSM offers. Exported roots listing a P-256 key carry its PEM line breaks raw, as
canonical JSON does; :func:`metadata_from_bytes` reads them back as cars do."""
_PROBE = b"forecourt rotate-keys: can this key sign for a role?"


@dataclass(frozen=True)
class HsmKey:
    """A key already held in an HSM that a rotated role moves onto: the reference that
    ``keys.json`` (or ``root-keys.json``) records, and a signer proven to sign with it."""

    role: str
    uri: str
    signer: Signer

    @property
    def keyid(self) -> str:
        return public_key_of(self.signer).keyid


def resolve_hsm_key(role: str, uri: str) -> HsmKey:
    """The HSM key ``uri`` names, checked before any root lists it, else :class:`RotationRefused`.

    A root only lists the public key: one whose private half is missing from the token, of a
    type cars do not verify, or whose token signs with another key would name a role nobody
    can sign for, found out only when ``cloud serve`` first signs. So the key is loaded through
    the same :func:`load_signer` serve uses and made to sign a probe that its public key must
    verify. The URI is what the listing records: a PIN inside it (``pin-value``) is refused,
    the PIN is named by ``pin-source=env:VAR`` or ``file:/path``.
    """
    where = f"--hsm-key {role}"
    if role not in ROLES:
        raise RotationRefused(f"{where}: unknown role, the roles are {', '.join(ROLES)}")
    if not uri.startswith("pkcs11:"):
        raise RotationRefused(
            f"{where}: expected a pkcs11: URI naming a key in an HSM, got a "
            f"{uri.partition(':')[0] or 'bare'} reference"
        )
    if "pin-value" in uri:
        raise RotationRefused(
            f"{where}: the URI carries the PIN (pin-value) and would be recorded in a key "
            "listing: name it with pin-source=env:VAR or pin-source=file:/path"
        )
    try:
        signer = load_signer(uri)
        key = public_key_of(signer)
    except TrustError as exc:
        raise RotationRefused(f"{where}: the key does not resolve: {exc}") from exc
    if HSM_KEY_SCHEMES.get(key.keytype) != key.scheme:
        raise RotationRefused(
            f"{where}: the key is {key.scheme}; a role's key must be Ed25519 (ed25519) or"
            " ECDSA P-256 (ecdsa-sha2-nistp256)"
        )
    try:
        key.verify_signature(signer.sign(_PROBE), _PROBE)
    except TrustError as exc:
        raise RotationRefused(f"{where}: the key does not sign: {exc}") from exc
    except (UnverifiedSignatureError, VerificationError) as exc:
        raise RotationRefused(
            f"{where}: the token's private key does not match public key {key.keyid[:16]}"
        ) from exc
    return HsmKey(role, uri, signer)


def _keys_ever_listed(history: Mapping[str, Sequence[Metadata[Root]]]) -> dict[str, str]:
    """Every key id any exported root listed, with where it was listed last (``director
    targets in root v2``): a key a role held, even one rotated out, is never taken again."""
    listed: dict[str, str] = {}
    for repo, chain in history.items():
        for md in chain:
            where = f"in {repo} root v{md.signed.version}"
            for name, role in md.signed.roles.items():
                for keyid in role.keyids:
                    listed[keyid] = f"{repo} {name} {where}"
            field = md.signed.unrecognized_fields.get(OFFLINE_ROLE_FIELD)
            for keyid in field.get("keyids", ()) if isinstance(field, dict) else ():
                listed[keyid] = f"{repo} offline {where}"
    return listed


def _check_hsm_keys_unused(
    keys: Sequence[HsmKey], history: Mapping[str, Sequence[Metadata[Root]]]
) -> None:
    listed = _keys_ever_listed(history)
    taken: dict[str, str] = {}
    for key in keys:
        if key.keyid in listed:
            raise RotationRefused(
                f"--hsm-key {key.role}: key {key.keyid[:16]} is already used by "
                f"{listed[key.keyid]}; give each role a key of its own"
            )
        if key.keyid in taken:
            raise RotationRefused(
                f"--hsm-key {key.role} and --hsm-key {taken[key.keyid]} name the same key"
            )
        taken[key.keyid] = key.role


def root_file_name(repository: str, version: int) -> str:
    """Where root ``version`` of ``repository`` is exported: v1 (what cars pinned at the
    factory) keeps its ``init-keys`` name, later ones carry their version."""
    if version == 1:
        return f"{repository}-root.json"
    return f"{repository}-root.{version}.json"


def _uri_list(value: object, what: str) -> list[str]:
    """A listing line: one key URI, or a list of them (a role with several keys)."""
    if isinstance(value, str) and value:
        return [value]
    if isinstance(value, list) and value and all(isinstance(v, str) and v for v in value):
        return list(value)
    raise KeyListingError(f"{what}: expected a key URI or a non-empty list of key URIs")


def _read_listing(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise KeyListingError(f"cannot read {path}: {exc.strerror}") from exc
    except ValueError as exc:
        raise KeyListingError(f"{path} is not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise KeyListingError(f"{path} is not a key listing (a JSON object)")
    return data


def _threshold(root: Root, role: str) -> int:
    """The threshold ``root`` sets for ``role`` (the offline role lives in a custom field)."""
    if role == "offline":
        field = root.unrecognized_fields.get(OFFLINE_ROLE_FIELD)
        value = field.get("threshold") if isinstance(field, dict) else None
        return value if isinstance(value, int) else 1
    return root.roles[role].threshold


def _offline_window(root: Root) -> timedelta:
    field = root.unrecognized_fields.get(OFFLINE_ROLE_FIELD)
    seconds = field.get("max_window_seconds") if isinstance(field, dict) else None
    return timedelta(seconds=seconds) if isinstance(seconds, int) else timedelta(days=30)


def init_signing_keys(
    directory: Path,
    password: bytes,
    *,
    root_directory: Path | None = None,
    root_password: bytes | None = None,
    root_password_env: str = ROOT_PASSWORD_ENV,
    offline_image_targets: bool = False,
) -> Path:
    """Generate every role key of both repositories; return ``keys.json``.

    With ``root_directory`` the root keys go there, encrypted with ``root_password``, listed in
    its ``root-keys.json`` and absent from ``keys.json``; otherwise all keys go to ``directory``.
    ``offline_image_targets`` puts the image targets key there too (``offline-keys.json``), so
    no serving process can sign what the image repository says exists.
    """
    if offline_image_targets and root_directory is None:
        raise ValueError("an offline image targets key needs the offline directory")
    uris: dict[str, dict[str, str]] = {}
    root_uris: dict[str, str] = {}
    for repo in REPOSITORIES:
        uris[repo] = {}
        for role in ONLINE_ROLES:
            if (
                offline_image_targets
                and root_directory is not None
                and (repo, role)
                == (
                    "image",
                    "targets",
                )
            ):
                root_directory.mkdir(parents=True, exist_ok=True, mode=0o700)
                path = root_directory / "image-targets.pem"
                generate_file_key(path, "ed25519", root_password or password)
                offline_listing = {
                    "image": {"targets": f"file:{path}?password-env={root_password_env}"}
                }
                (root_directory / OFFLINE_LISTING).write_text(json.dumps(offline_listing, indent=2))
                continue
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


def _online(
    uris: Mapping[str, Any], root: Root | None = None, *, absent_ok: Sequence[str] = ()
) -> RepositoryKeys:
    """Every online role's signers (all of its listed keys sign), with ``root``'s thresholds.

    A role in ``absent_ok`` that the listing does not name gets no signers (its keys are held
    offline); any other missing role is a :class:`KeyListingError`."""
    roles = {
        role: RoleSigners(
            []
            if role in absent_ok and role not in uris
            else [load_signer(uri) for uri in _uri_list(uris.get(role), role)],
            _threshold(root, role) if root is not None else 1,
        )
        for role in ONLINE_ROLES
    }
    return RepositoryKeys(root=RoleSigners([]), **roles)


def read_offline_listing(offline_directory: Path) -> dict[str, Any]:
    """``OFFLINE/offline-keys.json``, or an empty listing when no role is held offline."""
    path = offline_directory / OFFLINE_LISTING
    if not path.exists():
        return {}
    return _read_listing(path)


def _offline_image_targets_uris(offline: Mapping[str, Any]) -> list[str] | None:
    image = offline.get("image")
    if image is None:
        return None
    if not isinstance(image, dict):
        raise KeyListingError(f"{OFFLINE_LISTING}: 'image' is not a listing of roles")
    value = image.get("targets")
    return None if value is None else _uri_list(value, "image targets (offline)")


def _with_offline_targets(uris: Mapping[str, Any], offline: Mapping[str, Any]) -> dict[str, Any]:
    """The image repository's listing with its offline targets key(s) filled in, if any."""
    merged = dict(uris)
    held = _offline_image_targets_uris(offline)
    if held is not None:
        if "targets" in merged:
            raise KeyListingError(
                f"the image targets role is listed both in keys.json and in {OFFLINE_LISTING}"
            )
        merged["targets"] = held
    return merged


def load_offline_image_targets(offline_directory: Path, root: Root) -> RoleSigners:
    """The image targets signers held offline, with the threshold ``root`` sets for them.

    Raises :class:`KeyListingError` when no image targets key is listed offline, and
    :class:`KeyListingError` too when fewer of the loaded keys than the threshold are among the
    keys ``root`` lists for the role (metadata they sign would be refused)."""
    uris = _offline_image_targets_uris(read_offline_listing(offline_directory))
    if uris is None:
        raise KeyListingError(
            f"{offline_directory / OFFLINE_LISTING} lists no image targets key: move the role "
            "offline first (init-keys --offline-image-targets, or rotate-keys --repository "
            "image --roles targets --offline-targets)"
        )
    signers = [load_signer(uri) for uri in uris]
    listed = set(root.roles["targets"].keyids)
    usable = [s for s in signers if public_key_of(s).keyid in listed]
    threshold = root.roles["targets"].threshold
    if len(usable) < threshold:
        raise KeyListingError(
            f"{len(usable)} of the {len(signers)} offline image targets key(s) are listed by "
            f"image root v{root.version}, which needs {threshold}"
        )
    return RoleSigners(usable, threshold)


def sign_roots(
    listing: Path, root_listing: Path | None, expires: datetime
) -> dict[str, Metadata[Root]]:
    """Root v1 of each repository, signed by its root key (from ``root_listing``, else from
    ``keys.json``), over the online keys ``listing`` names. The offline ceremony's one use."""
    uris = json.loads(listing.read_text())
    root_uris = json.loads(root_listing.read_text()) if root_listing else {}
    offline = read_offline_listing(root_listing.parent) if root_listing else {}
    roots: dict[str, Metadata[Root]] = {}
    for repo in REPOSITORIES:
        root_uri = root_uris.get(repo) or uris[repo]["root"]
        listed = _with_offline_targets(uris[repo], offline) if repo == "image" else uris[repo]
        keys = _online(listed)
        keys = RepositoryKeys(
            RoleSigners([load_signer(uri) for uri in _uri_list(root_uri, f"{repo} root")]),
            keys.timestamp,
            keys.snapshot,
            keys.targets,
            keys.offline,
        )
        roots[repo] = Repository(keys, expires).root
    return roots


def load_root_history(directory: Path) -> dict[str, tuple[Metadata[Root], ...]]:
    """Each repository's exported roots, oldest first: ``<repo>-root.json`` (v1) then
    ``<repo>-root.2.json`` ... with no gap, each file holding the version its name says, the
    chain signed as a car checks it (:func:`check_root_chain`); else :class:`RootHistoryError`.
    """
    history: dict[str, tuple[Metadata[Root], ...]] = {}
    for repo in REPOSITORIES:
        prefix = f"{repo}-root."
        later: dict[int, Path] = {}
        for path in directory.glob(f"{prefix}*.json"):
            middle = path.name[len(prefix) : -len(".json")]
            if middle.isdigit() and not middle.startswith("0"):
                later[int(middle)] = path
        expected = list(range(2, 2 + len(later)))
        if sorted(later) != expected:
            found = ", ".join(f"v{v}" for v in sorted(later))
            raise RootHistoryError(f"{repo} root history has a gap: {found} after v1")
        chain = []
        for version in (1, *expected):
            path = directory / root_file_name(repo, version)
            try:
                md = metadata_from_bytes(path.read_bytes(), str(path))
            except OSError as exc:
                raise RootHistoryError(f"cannot read {path}: {exc.strerror}") from exc
            except (TrustError, ValueError, TypeError, KeyError) as exc:
                raise RootHistoryError(f"{path} is not root metadata: {exc}") from exc
            if md.signed.version != version:
                raise RootHistoryError(f"{path} holds root v{md.signed.version}, not v{version}")
            chain.append(md)
        try:
            check_root_chain(chain)
        except RootChainInvalid as exc:
            raise RootHistoryError(f"{repo} root history does not verify: {exc}") from exc
        history[repo] = tuple(chain)
    return history


def _as_chain(value: Metadata[Root] | Sequence[Metadata[Root]]) -> tuple[Metadata[Root], ...]:
    return (value,) if isinstance(value, Metadata) else tuple(value)


def load_signing_keys(
    listing: Path, roots: Mapping[str, Metadata[Root] | Sequence[Metadata[Root]]]
) -> SigningKeys:
    """The online role keys of both repositories (files or HSM URIs) with the exported roots.

    ``roots`` gives each repository's root, or its whole history oldest first
    (:func:`load_root_history`): the newest root signs nothing here but must list the online
    keys, and bundles carry the chain after v1 so cars pinned at v1 follow a rotation.
    No root key is loaded, even if ``keys.json`` still names one (a deployment from before the
    split): the roots are served as exported. An image targets role absent from ``keys.json``
    is held offline: the process gets no image targets signer and serves published targets.
    """
    uris = json.loads(listing.read_text())
    director, image = _as_chain(roots["director"]), _as_chain(roots["image"])
    return SigningKeys(
        _online(uris["director"], director[-1].signed),
        _online(uris["image"], image[-1].signed, absent_ok=("targets",)),
        director[-1].signed.expires,
        director_root=director[-1],
        image_root=image[-1],
        director_root_history=director[:-1],
        image_root_history=image[:-1],
    )


@dataclass(frozen=True)
class RotatedRepository:
    """What one repository's rotation exported: the new root and the new key files."""

    repository: str
    root: Metadata[Root]
    root_file: Path
    key_files: tuple[Path, ...]
    hsm_keys: tuple[str, ...] = ()
    """The HSM key URIs rotated roles moved onto (no file written for them)."""


class _Staged:
    """New files held in memory until every check and signature passed, then written.

    Each file is created exclusively (an existing file is never overwritten, and a file that
    appeared meanwhile fails the commit); the listings are replaced last, each through a
    temporary file and ``os.replace``. A failure while writing removes what this commit created
    and puts back the listings it replaced, so the directory is as before.
    """

    def __init__(self) -> None:
        self.files: dict[Path, tuple[bytes, int]] = {}

    def add(self, path: Path, data: bytes, mode: int = 0o644) -> None:
        if path.exists() or path in self.files:
            raise RotationRefused(f"{path} exists; rotation never overwrites a file")
        self.files[path] = (data, mode)

    def new_key(self, path: Path, password: bytes, env: str) -> tuple[Signer, str]:
        """An Ed25519 key to be written at ``path`` (PKCS#8, encrypted), and its key URI."""
        private = ed25519.Ed25519PrivateKey.generate()
        pem = private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(password),
        )
        self.add(path, pem, 0o600)
        return CryptoSigner(private), f"file:{path}?password-env={env}"

    def commit(self, listings: Sequence[tuple[Path, bytes]]) -> None:
        created: list[Path] = []
        replaced: list[tuple[Path, bytes]] = []
        try:
            for path, (data, mode) in self.files.items():
                _write_new(path, data, mode)
                created.append(path)
            for path, data in listings:
                before = path.read_bytes()
                _replace(path, data)
                replaced.append((path, before))
        except OSError:
            for path, before in reversed(replaced):
                _replace(path, before)
            for path in created:
                path.unlink(missing_ok=True)
            raise


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_new(path: Path, data: bytes, mode: int) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
    except OSError:
        path.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def _replace(path: Path, data: bytes) -> None:
    """Replace ``path`` atomically: a reader sees the old or the new listing, never a part."""
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temp, path.stat().st_mode & 0o777)
        os.replace(temp, path)
    except OSError:
        Path(temp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def _key_file(directory: Path, stem: str, version: int, index: int, count: int) -> Path:
    """``director-targets.v2.pem``; ``director-targets.v2.1.pem`` ... for several keys."""
    suffix = f".v{version}" if count == 1 else f".v{version}.{index}"
    return directory / f"{stem}{suffix}.pem"


@dataclass(frozen=True)
class _Request:
    roles: tuple[str, ...]
    threshold: int | None
    key_count: int | None
    expires: datetime
    password: bytes
    root_password: bytes
    root_password_env: str
    offline_targets: bool = False
    hsm_keys: Mapping[str, tuple[HsmKey, ...]] | None = None


def _check_request(repositories: Sequence[str], request: _Request) -> None:
    if not repositories or any(r not in REPOSITORIES for r in repositories):
        raise RotationRefused(
            f"unknown repository in {', '.join(repositories) or 'nothing'}: "
            f"expected {', '.join(REPOSITORIES)} or both"
        )
    if not request.roles:
        raise RotationRefused(f"name at least one role to rotate: {', '.join(ROLES)}")
    unknown = [r for r in request.roles if r not in ROLES]
    if unknown:
        raise RotationRefused(
            f"unknown role {', '.join(unknown)}: the roles are {', '.join(ROLES)}"
        )
    if len(set(request.roles)) != len(request.roles):
        raise RotationRefused("a role is named twice")
    if request.threshold is not None and request.threshold < 1:
        raise RotationRefused(f"threshold {request.threshold} is below 1")
    if request.key_count is not None and request.key_count < 1:
        raise RotationRefused(f"key count {request.key_count} is below 1")
    if request.offline_targets and (
        list(dict.fromkeys(repositories)) != ["image"] or "targets" not in request.roles
    ):
        raise RotationRefused(
            "--offline-targets moves the image repository's targets role offline: use it with "
            "--repository image --roles targets (the director's targets sign per car, online)"
        )
    if request.hsm_keys and len(set(repositories)) != 1:
        raise RotationRefused(
            "--hsm-key moves one repository's role onto the key: name --repository director "
            "or image (the two repositories never share a key)"
        )


def _current_root_signers(
    repo: str, current: Metadata[Root], root_uris: Mapping[str, Any], root_listing: Path
) -> list[Signer]:
    """The root keys of ``repo``'s current root, all of them, or :class:`RotationRefused`."""
    try:
        signers = [load_signer(u) for u in _uri_list(root_uris.get(repo), f"{repo} root")]
    except (TrustError, KeyListingError) as exc:
        raise RotationRefused(f"{repo} root keys unavailable ({root_listing}): {exc}") from exc
    loaded = {public_key_of(s).keyid for s in signers}
    listed = set(current.signed.roles["root"].keyids)
    if loaded != listed:
        raise RotationRefused(
            f"{root_listing} names {len(loaded)} {repo} root key(s), {len(loaded & listed)} of "
            f"them among the {len(listed)} root v{current.signed.version} lists: not the "
            "current root keys"
        )
    return signers


def _new_keys(
    staged: _Staged,
    where: Path,
    stem: str,
    *,
    version: int,
    count: int,
    password: bytes,
    env: str,
) -> tuple[list[Signer], str | list[str], list[Path]]:
    """``count`` new keys of one role, staged; their signers, listing line and files."""
    signers, uris, paths = [], [], []
    for index in range(1, count + 1):
        path = _key_file(where, stem, version, index, count)
        signer, uri = staged.new_key(path, password, env)
        signers.append(signer)
        uris.append(uri)
        paths.append(path)
    return signers, (uris[0] if count == 1 else uris), paths


def _with_offline_targets_refused(
    uris: Mapping[str, Any], offline: Mapping[str, Any]
) -> dict[str, Any]:
    try:
        return _with_offline_targets(uris, offline)
    except KeyListingError as exc:
        raise RotationRefused(f"image online keys unavailable: {exc}") from exc


def _current_repository(
    repo: str,
    chain: tuple[Metadata[Root], ...],
    listed: Mapping[str, Any],
    root_signers: list[Signer],
) -> Repository:
    """``repo`` as its current root and the listed keys make it, each checked against the
    other, else :class:`RotationRefused`."""
    current = chain[-1]
    try:
        online = _online(listed, current.signed)
    except (TrustError, KeyListingError) as exc:
        raise RotationRefused(f"{repo} online keys unavailable: {exc}") from exc
    keys = replace(online, root=RoleSigners(root_signers, _threshold(current.signed, "root")))
    try:
        return Repository(
            keys,
            current.signed.expires,
            _offline_window(current.signed),
            root=current,
            history=chain[:-1],
        )
    except RootKeysMismatch as exc:
        raise RotationRefused(
            f"keys.json does not match {repo} root v{current.signed.version}: {exc}"
        ) from exc


def _key_count(what: str, threshold: int, key_count: int | None, hsm_count: int) -> int:
    """How many keys a rotated role gets: the HSM keys named, else ``--key-count``, else the
    threshold; never fewer than the threshold (a role nobody could sign for)."""
    if hsm_count and key_count not in (None, hsm_count):
        raise RotationRefused(
            f"--key-count {key_count} for {what}, but {hsm_count} --hsm-key given: the role's "
            "keys are the HSM keys named"
        )
    count = hsm_count or key_count or threshold
    if threshold > count:
        raise RotationRefused(f"threshold {threshold} for {what} is larger than its {count} key(s)")
    return count


def _rotate_one(
    repo: str,
    chain: tuple[Metadata[Root], ...],
    *,
    directory: Path,
    root_directory: Path,
    uris: dict[str, Any],
    root_uris: dict[str, Any],
    offline_uris: dict[str, Any],
    root_listing: Path,
    request: _Request,
    staged: _Staged,
) -> RotatedRepository:
    current = chain[-1]
    version = current.signed.version + 1
    if not isinstance(uris.get(repo), dict):
        raise RotationRefused(f"keys.json lists no {repo} repository")
    targets_offline = repo == "image" and "targets" not in uris[repo]
    repository = _current_repository(
        repo,
        chain,
        _with_offline_targets_refused(uris[repo], offline_uris) if repo == "image" else uris[repo],
        root_signers=_current_root_signers(repo, current, root_uris, root_listing),
    )
    old = repository.keys
    for role in ONLINE_ROLES:
        kept: RoleSigners | None = getattr(old, role)
        if role not in request.roles and kept is not None and len(kept.signers) < kept.threshold:
            raise RotationRefused(
                f"keys.json lists {len(kept.signers)} {repo} {role} key(s) for threshold "
                f"{kept.threshold}: root v{version} would list a role no one can sign for"
            )
    rotated: dict[str, RoleSigners] = {}
    key_files: list[Path] = []
    hsm_uris: list[str] = []
    for role in request.roles:
        threshold = request.threshold or _threshold(current.signed, role)
        hsm = (request.hsm_keys or {}).get(role, ())
        count = _key_count(f"{repo} {role}", threshold, request.key_count, len(hsm))
        is_root = role == "root"
        # the image targets role stays offline once there, and moves there when asked
        held_offline = (repo, role) == ("image", "targets") and (
            request.offline_targets or targets_offline
        )
        apart = is_root or held_offline
        where = root_directory if apart else directory
        password = request.root_password if apart else request.password
        env = request.root_password_env if apart else PASSWORD_ENV
        if hsm:  # existing keys: the listing records their references, no file is written
            signers = [key.signer for key in hsm]
            hsm_uris.extend(key.uri for key in hsm)
            listing_value: str | list[str] = hsm[0].uri if count == 1 else [k.uri for k in hsm]
        else:
            signers, listing_value, paths = _new_keys(
                staged,
                where,
                f"{repo}-{role}",
                version=version,
                count=count,
                password=password,
                env=env,
            )
            key_files.extend(paths)
        rotated[role] = RoleSigners(signers, threshold)
        if is_root:
            root_uris[repo] = listing_value
        elif held_offline:
            offline_uris["image"] = {**(offline_uris.get("image") or {}), "targets": listing_value}
            uris[repo].pop("targets", None)
        else:
            uris[repo][role] = listing_value
    try:
        new_root = repository.rotate_root(replace(old, **rotated), request.expires)
        exported = metadata_from_bytes(canonical_bytes(new_root.to_dict()), "the new root")
        check_root_chain([*chain, exported])  # as a car pinned at v1 will walk it
    except (TrustError, RootChainInvalid) as exc:
        raise RotationRefused(f"{repo} root v{version} could not be signed: {exc}") from exc
    root_file = directory / root_file_name(repo, version)
    staged.add(root_file, canonical_bytes(new_root.to_dict()))
    return RotatedRepository(repo, exported, root_file, tuple(key_files), tuple(hsm_uris))


def rotate_signing_keys(
    directory: Path,
    *,
    repositories: Sequence[str],
    roles: Sequence[str],
    expires: datetime,
    password: bytes,
    root_listing: Path,
    root_password: bytes,
    root_password_env: str = ROOT_PASSWORD_ENV,
    threshold: int | None = None,
    key_count: int | None = None,
    offline_targets: bool = False,
    hsm_keys: Mapping[str, Sequence[str]] | None = None,
) -> list[RotatedRepository]:
    """Rotate ``roles`` of each of ``repositories``: root vN+1 over new keys for those roles.

    Runs offline with the current root keys (``root_listing``): root vN+1 is signed by all of
    them and, if ``root`` is among ``roles``, by the new root keys too (TUF §5.3.4), so a car
    walking from v1 accepts it. Each rotated role gets ``key_count`` new Ed25519 keys (default:
    ``threshold``) of which ``threshold`` must sign (default: the role's current threshold);
    online keys are encrypted with ``password`` and listed in ``keys.json``, root keys with
    ``root_password`` beside ``root_listing``. New key files carry the version
    (``director-targets.v2.pem``) and old ones stay; the new root is exported as
    ``<repo>-root.<N+1>.json``.

    Everything is checked and signed before the first byte is written: the exported history
    verifies, the listed keys load and are the current root's, the request makes sense; any
    failure raises :class:`RotationRefused` with nothing changed on disk. Then the new files are
    created, and the listings replaced, ``keys.json`` last.

    ``offline_targets`` (image repository, ``targets`` rotated) writes the new image targets
    keys beside the root keys under ``root_password``, lists them in ``offline-keys.json`` and
    drops the role from ``keys.json``: root vN+1 trusts only them, so the online key signs
    nothing a car accepts any more. A role already held offline is rotated offline again.

    ``hsm_keys`` (role -> key URIs, one repository) rotates those roles onto keys that already
    exist in an HSM instead of generating files: root vN+1 lists their public keys, the listing
    records their ``pkcs11:`` references, and serving processes sign with them. Each key must
    resolve, be Ed25519, sign, and never have been listed by any exported root
    (:func:`resolve_hsm_key`); else :class:`RotationRefused`, nothing written.
    """
    named_hsm = {role: tuple(uris) for role, uris in (hsm_keys or {}).items() if uris}
    request = _Request(
        tuple(dict.fromkeys([*roles, *named_hsm])),
        threshold,
        key_count,
        expires,
        password,
        root_password,
        root_password_env,
        offline_targets,
        {role: () for role in named_hsm},  # resolved below, once the cheap checks passed
    )
    _check_request(repositories, request)
    listing = directory / KEY_LISTING
    offline_listing = root_listing.parent / OFFLINE_LISTING
    try:
        uris = _read_listing(listing)
        root_uris = _read_listing(root_listing)
        offline_uris = read_offline_listing(root_listing.parent)
    except KeyListingError as exc:
        raise RotationRefused(str(exc)) from exc
    offline_before = json.dumps(offline_uris, indent=2)
    try:
        history = load_root_history(directory)
    except RootHistoryError as exc:
        raise RotationRefused(f"the exported roots do not verify: {exc}") from exc
    if named_hsm:
        resolved = {
            role: tuple(resolve_hsm_key(role, uri) for uri in uris)
            for role, uris in named_hsm.items()
        }
        _check_hsm_keys_unused([k for keys in resolved.values() for k in keys], history)
        request = replace(request, hsm_keys=resolved)
    staged = _Staged()
    done = [
        _rotate_one(
            repo,
            history[repo],
            directory=directory,
            root_directory=root_listing.parent,
            uris=uris,
            root_uris=root_uris,
            offline_uris=offline_uris,
            root_listing=root_listing,
            request=request,
            staged=staged,
        )
        for repo in dict.fromkeys(repositories)
    ]
    listings: list[tuple[Path, bytes]] = []
    if "root" in request.roles:
        listings.append((root_listing, json.dumps(root_uris, indent=2).encode()))
    offline_after = json.dumps(offline_uris, indent=2)
    if offline_after != offline_before:
        if offline_listing.exists():
            listings.append((offline_listing, offline_after.encode()))
        else:
            staged.add(offline_listing, offline_after.encode(), 0o600)
    if set(request.roles) - {"root"}:
        listings.append((listing, json.dumps(uris, indent=2).encode()))  # last: the switch
    staged.commit(listings)
    for rotated in done:
        _log.info(
            "keys_rotated",
            repository=rotated.repository,
            root_version=rotated.root.signed.version,
            roles=list(request.roles),
            thresholds={r: _threshold(rotated.root.signed, r) for r in request.roles},
            root_file=str(rotated.root_file),
            hsm_keys=list(rotated.hsm_keys),
        )
    return done


def _renew_one(
    repo: str,
    chain: tuple[Metadata[Root], ...],
    *,
    directory: Path,
    root_uris: Mapping[str, Any],
    root_listing: Path,
    expires: datetime,
    staged: _Staged,
) -> RotatedRepository:
    current = chain[-1]
    version = current.signed.version + 1
    signers = _current_root_signers(repo, current, root_uris, root_listing)
    if expires <= current.signed.expires:
        raise RotationRefused(
            f"{repo} root v{current.signed.version} already expires "
            f"{current.signed.expires:%F %H:%M} UTC, not before {expires:%F %H:%M}: "
            "a renewal must extend it"
        )
    # The current root's payload as exported, unknown fields included: only the version and
    # the expiry change, so every key, threshold and the offline role stay exactly as listed.
    payload = current.signed.to_dict()
    payload.update(version=version, expires=expires.strftime("%Y-%m-%dT%H:%M:%SZ"))
    renewed = Metadata(Root.from_dict(payload))
    for signer in signers:
        renewed.sign(signer, append=True)
    data = canonical_bytes(renewed.to_dict())
    try:
        exported = metadata_from_bytes(data, "the renewed root")
        check_root_chain([*chain, exported])  # as a car pinned at v1 will walk it
    except (TrustError, RootChainInvalid) as exc:
        raise RotationRefused(f"{repo} root v{version} could not be signed: {exc}") from exc
    root_file = directory / root_file_name(repo, version)
    staged.add(root_file, data)
    return RotatedRepository(repo, exported, root_file, ())


def renew_root(
    directory: Path,
    *,
    repositories: Sequence[str],
    expires: datetime,
    root_listing: Path,
) -> list[RotatedRepository]:
    """Root vN+1 of each of ``repositories`` with the same keys and thresholds, expiring at
    ``expires``: renews a root about to expire without rotating a key.

    A car refuses every bundle once its newest root has expired, and before this it took a key
    rotation to move the expiry. vN+1 is signed by every current root key (``root_listing``,
    exactly the keys root vN lists, so root vN's threshold, which is also vN+1's, is met) and
    exported as ``<repo>-root.<N+1>.json``; cars pinned at any earlier root walk to it as after
    a rotation. No online key is loaded and no listing changes. Refused
    (:class:`RotationRefused`, nothing written) when the history does not verify, the root keys
    are missing or not the current ones, or ``expires`` does not extend the current root.
    """
    if not repositories or any(r not in REPOSITORIES for r in repositories):
        raise RotationRefused(
            f"unknown repository in {', '.join(repositories) or 'nothing'}: "
            f"expected {', '.join(REPOSITORIES)} or both"
        )
    try:
        root_uris = _read_listing(root_listing)
    except KeyListingError as exc:
        raise RotationRefused(f"the current root keys are needed to renew: {exc}") from exc
    try:
        history = load_root_history(directory)
    except RootHistoryError as exc:
        raise RotationRefused(f"the exported roots do not verify: {exc}") from exc
    staged = _Staged()
    done = [
        _renew_one(
            repo,
            history[repo],
            directory=directory,
            root_uris=root_uris,
            root_listing=root_listing,
            expires=expires,
            staged=staged,
        )
        for repo in dict.fromkeys(repositories)
    ]
    staged.commit([])
    for renewed in done:
        _log.info(
            "root_renewed",
            repository=renewed.repository,
            root_version=renewed.root.signed.version,
            expires=f"{renewed.root.signed.expires:%Y-%m-%dT%H:%M:%SZ}",
            root_file=str(renewed.root_file),
        )
    return done
