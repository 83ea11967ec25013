"""Operators' TOTP secrets sealed at rest: AES-256-GCM under the edge's TOTP key.

Why: a TOTP secret is half of every sign-in. Kept in clear, a copy of the edge database (a backup,
a support dump, a stolen disk image) would yield the second factor of every operator. Sealed, the
database alone yields nothing; the key is a separate file (:data:`TOTP_KEY_FILE`, 0600) in the
edge's data directory, next to the consent subject key, and never enters the database or a log.

Why a dedicated file rather than a key derived from an existing edge secret: the TLS key is
replaced whenever the OEM PKI reissues the dealer certificate (every secret would become
unreadable), the ledger key is a signing key published through its verifier, and the consent
subject key has its own purpose and lifecycle. A 32-byte key of its own can be backed up and
rotated without touching any of them.

The stored form is ``aesgcm2:<kid>:`` followed by base64url (no padding) of nonce ‖ ciphertext ‖
tag, with a fresh 96-bit random nonce per seal; ``kid`` (:attr:`TotpKey.key_id`) names the key
that sealed it, so that during a key rotation the edge knows which of its keys opens a value.
Values of the first form, ``aesgcm1:`` without a key id, still open: every readable key is tried.
The associated data names the purpose and the operator's id, so a value copied into another
operator's row (or read under another key, or altered in any byte) does not open:
:meth:`TotpKey.open` raises :class:`~forecourt.edge.operators.errors.TotpSecretUnreadable`, which
names the operator and a reason code, never the value. Moving a pending secret to the confirmed
column keeps it valid (the operator is the same).

Rotation (:func:`rotate_totp_key`, ``forecourt edge operator rotate-totp-key``), with the edge
stopped, in an order where a crash at any point leaves every value readable:

1. the new key is written to :data:`PENDING_KEY_FILE` (temporary file, fsync, rename, fsync of the
   directory), or an interrupted rotation's key found there is reused;
2. every stored secret, confirmed and pending, is re-sealed under it in ONE transaction;
3. the current key is written to :data:`RETIRED_KEY_FILE` the same way, and the pending file is
   renamed over :data:`TOTP_KEY_FILE` (atomic), then the directory is fsynced.

:meth:`TotpKey.load_or_create` opens with the current key and, when present, the pending and the
retired one (it seals with the current key only), so before step 2 commits the old key opens the
rows, after it the pending key does. A key file is only ever dropped after a committed
transaction re-sealed every row away from it: step 3 replaces the key retired by the previous
rotation. The retired key is kept until the next rotation, not deleted, because a secret sealed
under the old key by a process that loaded it before the switch (an ``edge operator`` command
racing the rotation) must stay readable; after a suspected leak of the key, rotating twice retires
it for good.

Every read and write of ``edge_operators.totp_secret`` and ``totp_pending_secret`` goes through
:meth:`TotpKey.seal` and :meth:`TotpKey.open`; the key reaches the service either explicitly or
bound to the edge's sessionmaker (:meth:`TotpKey.bind`), as the consent subject key does.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import or_, select
from sqlalchemy.orm import Session, sessionmaker

from forecourt.edge.keyfiles import KeyFileError, create_key_file, read_key_file
from forecourt.edge.operators.errors import TotpSecretUnreadable
from forecourt.logging import get_logger
from forecourt.store.edge import EdgeOperator

TOTP_KEY_FILE = "operator-totp.key"
#: A rotation's new key until the switch (read by the edge: values may already be sealed under it).
PENDING_KEY_FILE = TOTP_KEY_FILE + ".new"
#: The key before the last rotation, kept readable until the next one.
RETIRED_KEY_FILE = TOTP_KEY_FILE + ".old"
#: The Alembic ``config.attributes`` entry through which the migration receives the key.
TOTP_KEY_ATTRIBUTE = "edge_totp_key"
SEALED_PREFIX = "aesgcm2:"
#: The first sealed form, without a key id; still opened, never written.
LEGACY_SEALED_PREFIX = "aesgcm1:"
_KEY_BYTES = 32
_NONCE_BYTES = 12
_TAG_BYTES = 16
_AAD_LABEL = b"forecourt.edge.operator_totp.v1\x00"
_BOUND_INFO = "forecourt.edge.totp_key"
_KID_LABEL = b"forecourt.edge.operator_totp.kid\x00"
_KID = re.compile(r"[0-9a-f]{16}")

_log = get_logger("edge.operators.sealing")


class TotpKeyError(KeyFileError):
    """The TOTP key file exists but is not a key this edge wrote (size or permissions)."""


class TotpMigrationError(RuntimeError):
    """Converting stored TOTP secrets was refused; the migration's transaction changed nothing.

    ``operator_id`` names the row at fault when one is (never its value).
    """

    def __init__(self, reason: str, operator_id: str | None = None) -> None:
        where = "" if operator_id is None else f" (operator {operator_id})"
        super().__init__(f"TOTP secrets not converted{where}: {reason}")
        self.reason = reason
        self.operator_id = operator_id


class TotpKeyRotationError(RuntimeError):
    """A key rotation was refused; no stored secret and no key file changed.

    ``operator_id`` names the row at fault when one is (never its value).
    """

    def __init__(self, reason: str, operator_id: str | None = None) -> None:
        where = "" if operator_id is None else f" (operator {operator_id})"
        super().__init__(f"TOTP key not rotated{where}: {reason}")
        self.reason = reason
        self.operator_id = operator_id


def is_sealed(stored: str) -> bool:
    """True when ``stored`` is in a sealed form (whether or not it opens under a given key)."""
    return stored.startswith((SEALED_PREFIX, LEGACY_SEALED_PREFIX))


@dataclass(frozen=True, slots=True)
class TotpKey:
    """The edge's 256-bit key for TOTP secrets at rest; ``repr`` shows nothing of it."""

    secret: bytes = field(repr=False)
    #: Further keys that open but never seal: a rotation's pending key and the retired one.
    readable: tuple[bytes, ...] = field(default=(), repr=False)

    def __post_init__(self) -> None:
        for key in (self.secret, *self.readable):
            if len(key) != _KEY_BYTES:
                raise ValueError(f"a TOTP key is {_KEY_BYTES} bytes, not {len(key)}")

    @property
    def key_id(self) -> str:
        """The sealing key's id in stored values: names the key, reveals nothing of it."""
        return _key_id(self.secret)

    @classmethod
    def generate(cls) -> TotpKey:
        return cls(secrets.token_bytes(_KEY_BYTES))

    @classmethod
    def load_or_create(cls, data_dir: Path) -> TotpKey:
        """The key in ``data_dir``, created on first start (mode 0600, never rewritten in place),
        with the pending and retired keys of a rotation as further readable keys."""
        path = data_dir / TOTP_KEY_FILE
        created = create_key_file(path, _KEY_BYTES, "totp_key_created")
        current = created if created is not None else cls._load(path).secret
        others = (data_dir / name for name in (PENDING_KEY_FILE, RETIRED_KEY_FILE))
        readable = tuple(cls._load(p).secret for p in others if p.exists())
        return cls(current, tuple(k for k in dict.fromkeys(readable) if k != current))

    @classmethod
    def _load(cls, path: Path) -> TotpKey:
        return cls(read_key_file(path, _KEY_BYTES, TotpKeyError))

    # -- reaching the key from the sessions -----------------------------------------------------

    def bind(self, sessions: sessionmaker[Session]) -> None:
        """Make the key the one every service over ``sessions`` seals and opens with."""
        sessions.configure(info={**sessions.kw.get("info", {}), _BOUND_INFO: self})

    @staticmethod
    def of(sessions: sessionmaker[Session]) -> TotpKey | None:
        key = sessions.kw.get("info", {}).get(_BOUND_INFO)
        return key if isinstance(key, TotpKey) else None

    @classmethod
    def for_sessions(cls, sessions: sessionmaker[Session]) -> TotpKey:
        """The key bound to ``sessions``; without one, a fresh key bound now (logged).

        A fresh key lives as long as the process: secrets sealed under it do not open after a
        restart. The edge and its command line always bind the key file; this serves throw-away
        databases (tests, benchmarks), where every service over the same sessions shares it.
        """
        bound = cls.of(sessions)
        if bound is not None:
            return bound
        key = cls.generate()
        key.bind(sessions)
        _log.warning("totp_key_ephemeral")
        return key

    # -- sealing --------------------------------------------------------------------------------

    def seal(self, operator_id: str, secret: str) -> str:
        """The stored form of ``secret`` for ``operator_id``'s row."""
        nonce = secrets.token_bytes(_NONCE_BYTES)
        sealed = AESGCM(self.secret).encrypt(nonce, secret.encode("ascii"), _aad(operator_id))
        body = base64.urlsafe_b64encode(nonce + sealed).rstrip(b"=").decode()
        return f"{SEALED_PREFIX}{self.key_id}:{body}"

    def open(self, operator_id: str, stored: str) -> str:
        """The secret ``stored`` holds for ``operator_id``, or :class:`TotpSecretUnreadable`.

        ``not_sealed``: a clear or foreign value (the migration was skipped or the row was written
        by hand); ``malformed``: not valid base64, too short, or without a key id;
        ``unknown_key``: sealed under a key this edge no longer holds (retired two rotations ago,
        or another edge's); ``tag_mismatch``: altered, moved from another operator's row, or
        sealed under another key (indistinguishable, as AES-GCM intends).
        """
        if stored.startswith(SEALED_PREFIX):
            kid, colon, body = stored.removeprefix(SEALED_PREFIX).partition(":")
            if not colon or not _KID.fullmatch(kid):
                raise TotpSecretUnreadable(operator_id, "malformed")
            keys = [k for k in self._ring() if _key_id(k) == kid]
            if not keys:
                raise TotpSecretUnreadable(operator_id, "unknown_key")
        elif stored.startswith(LEGACY_SEALED_PREFIX):
            body, keys = stored.removeprefix(LEGACY_SEALED_PREFIX), list(self._ring())
        else:
            raise TotpSecretUnreadable(operator_id, "not_sealed")
        try:
            raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        except (binascii.Error, ValueError):
            raise TotpSecretUnreadable(operator_id, "malformed") from None
        if len(raw) < _NONCE_BYTES + _TAG_BYTES:
            raise TotpSecretUnreadable(operator_id, "malformed")
        clear = _decrypt(keys, raw, _aad(operator_id))
        if clear is None:
            raise TotpSecretUnreadable(operator_id, "tag_mismatch")
        try:
            return clear.decode("ascii")
        except UnicodeDecodeError:  # pragma: no cover - only a sealer of ours writes the tag
            raise TotpSecretUnreadable(operator_id, "malformed") from None

    def _ring(self) -> tuple[bytes, ...]:
        return (self.secret, *self.readable)


def _decrypt(keys: Sequence[bytes], raw: bytes, aad: bytes) -> bytes | None:
    nonce, sealed = raw[:_NONCE_BYTES], raw[_NONCE_BYTES:]
    for key in keys:
        try:
            return AESGCM(key).decrypt(nonce, sealed, aad)
        except InvalidTag:
            continue
    return None


def _key_id(secret: bytes) -> str:
    return hashlib.sha256(_KID_LABEL + secret).hexdigest()[:16]


def _aad(operator_id: str) -> bytes:
    return _AAD_LABEL + operator_id.encode("utf-8")


# -- rotation -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TotpKeyRotation:
    """What a rotation did: ids only (never a key), for the operator's screen and the log."""

    key_id: str
    retired_key_id: str
    resealed: int
    #: An interrupted rotation's pending key was found and finished with.
    resumed: bool


def rotate_totp_key(data_dir: Path, sessions: sessionmaker[Session]) -> TotpKeyRotation:
    """Seal every stored TOTP secret under a new key and make it the edge's key (module docstring:
    the order, and why a crash at any step loses nothing).

    The edge must be stopped (the caller checks): a running edge holds the old key alone in memory
    and would refuse every re-sealed secret until restarted. Raises :class:`TotpKeyRotationError`
    (no key file, or a stored value that opens under none of the edge's keys: nothing changed).
    """
    key_path, pending_path = data_dir / TOTP_KEY_FILE, data_dir / PENDING_KEY_FILE
    if not key_path.exists():
        raise TotpKeyRotationError(f"no {TOTP_KEY_FILE} in {data_dir}: nothing is sealed yet")
    resumed = pending_path.exists()
    ring = TotpKey.load_or_create(data_dir)
    if resumed:
        new = TotpKey._load(pending_path)
    else:
        new = TotpKey.generate()
        _write_key_file(pending_path, new.secret)
    try:
        resealed = _reseal_all(sessions, ring, new)
    except TotpKeyRotationError:
        if not resumed:  # ours, sealed nothing: a pending file of an earlier run is kept
            pending_path.unlink()
            _fsync_directory(data_dir)
        raise
    _switch(data_dir, ring.secret)
    rotation = TotpKeyRotation(new.key_id, ring.key_id, resealed, resumed)
    _log.info(
        "totp_key_rotated",
        key_id=rotation.key_id,
        retired_key_id=rotation.retired_key_id,
        resealed=resealed,
        resumed=resumed,
    )
    return rotation


def _reseal_all(sessions: sessionmaker[Session], ring: TotpKey, new: TotpKey) -> int:
    """Every confirmed and pending secret opened with ``ring`` and sealed under ``new``, in one
    transaction (rows locked where the database can): all of them, or none."""
    columns = ("totp_secret", "totp_pending_secret")
    count = 0
    with sessions.begin() as s:
        rows = s.scalars(
            select(EdgeOperator)
            .where(
                or_(
                    EdgeOperator.totp_secret.is_not(None),
                    EdgeOperator.totp_pending_secret.is_not(None),
                )
            )
            .order_by(EdgeOperator.id)
            .with_for_update()
        ).all()
        for row in rows:
            for column in columns:
                stored = getattr(row, column)
                if stored is None:
                    continue
                try:
                    clear = ring.open(row.id, stored)
                except TotpSecretUnreadable as exc:
                    _log.warning("totp_key_rotation_refused", operator_id=row.id, reason=exc.reason)
                    raise TotpKeyRotationError(
                        f"a stored secret does not open ({exc.reason})", row.id
                    ) from None
                setattr(row, column, new.seal(row.id, clear))
                count += 1
    return count


def _switch(data_dir: Path, current: bytes) -> None:
    """Retire the current key (replacing the one retired before), then promote the pending key."""
    _write_key_file(data_dir / RETIRED_KEY_FILE, current)
    os.replace(data_dir / PENDING_KEY_FILE, data_dir / TOTP_KEY_FILE)
    _fsync_directory(data_dir)


def _write_key_file(path: Path, secret: bytes) -> None:
    """``path`` holds ``secret`` (0600) whole or not at all: written aside, fsynced, renamed."""
    temporary = path.with_name(path.name + ".tmp")
    temporary.unlink(missing_ok=True)
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(secret)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)
    _fsync_directory(path.parent)


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
