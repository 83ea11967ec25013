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

The stored form is ``aesgcm1:`` followed by base64url (no padding) of nonce ‖ ciphertext ‖ tag,
with a fresh 96-bit random nonce per seal. The associated data names the purpose and the
operator's id, so a value copied into another operator's row (or read under another key, or
altered in any byte) does not open: :meth:`TotpKey.open` raises
:class:`~forecourt.edge.operators.errors.TotpSecretUnreadable`, which names the operator and a
reason code, never the value. Moving a pending secret to the confirmed column keeps it valid (the
operator is the same).

Every read and write of ``edge_operators.totp_secret`` and ``totp_pending_secret`` goes through
:meth:`TotpKey.seal` and :meth:`TotpKey.open`; the key reaches the service either explicitly or
bound to the edge's sessionmaker (:meth:`TotpKey.bind`), as the consent subject key does.
"""

from __future__ import annotations

import base64
import binascii
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy.orm import Session, sessionmaker

from forecourt.edge.operators.errors import TotpSecretUnreadable
from forecourt.logging import get_logger

TOTP_KEY_FILE = "operator-totp.key"
#: The Alembic ``config.attributes`` entry through which the migration receives the key.
TOTP_KEY_ATTRIBUTE = "edge_totp_key"
SEALED_PREFIX = "aesgcm1:"
_KEY_BYTES = 32
_NONCE_BYTES = 12
_TAG_BYTES = 16
_AAD_LABEL = b"forecourt.edge.operator_totp.v1\x00"
_BOUND_INFO = "forecourt.edge.totp_key"

_log = get_logger("edge.operators.sealing")


class TotpKeyError(ValueError):
    """The TOTP key file exists but is not a key this edge wrote (size or permissions)."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


class TotpMigrationError(RuntimeError):
    """Converting stored TOTP secrets was refused; the migration's transaction changed nothing.

    ``operator_id`` names the row at fault when one is (never its value).
    """

    def __init__(self, reason: str, operator_id: str | None = None) -> None:
        where = "" if operator_id is None else f" (operator {operator_id})"
        super().__init__(f"TOTP secrets not converted{where}: {reason}")
        self.reason = reason
        self.operator_id = operator_id


def is_sealed(stored: str) -> bool:
    """True when ``stored`` is in the sealed form (whether or not it opens under a given key)."""
    return stored.startswith(SEALED_PREFIX)


@dataclass(frozen=True, slots=True)
class TotpKey:
    """The edge's 256-bit key for TOTP secrets at rest; ``repr`` shows nothing of it."""

    secret: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if len(self.secret) != _KEY_BYTES:
            raise ValueError(f"a TOTP key is {_KEY_BYTES} bytes, not {len(self.secret)}")

    @classmethod
    def generate(cls) -> TotpKey:
        return cls(secrets.token_bytes(_KEY_BYTES))

    @classmethod
    def load_or_create(cls, data_dir: Path) -> TotpKey:
        """The key in ``data_dir``, created on first start (mode 0600, never rewritten)."""
        path = data_dir / TOTP_KEY_FILE
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return cls._load(path)
        key = cls.generate()
        with os.fdopen(fd, "wb") as handle:
            handle.write(key.secret)
        _log.info("totp_key_created", path=str(path))
        return key

    @classmethod
    def _load(cls, path: Path) -> TotpKey:
        if path.stat().st_mode & 0o077:
            raise TotpKeyError(path, "readable by others than the edge (want 0600)")
        raw = path.read_bytes()
        if len(raw) != _KEY_BYTES:
            raise TotpKeyError(path, f"holds {len(raw)} bytes, not a {_KEY_BYTES}-byte key")
        return cls(raw)

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
        return SEALED_PREFIX + base64.urlsafe_b64encode(nonce + sealed).rstrip(b"=").decode()

    def open(self, operator_id: str, stored: str) -> str:
        """The secret ``stored`` holds for ``operator_id``, or :class:`TotpSecretUnreadable`.

        ``not_sealed``: a clear or foreign value (the migration was skipped or the row was written
        by hand); ``malformed``: not valid base64 or too short; ``tag_mismatch``: altered,
        moved from another operator's row, or sealed under another key (indistinguishable, as
        AES-GCM intends).
        """
        if not is_sealed(stored):
            raise TotpSecretUnreadable(operator_id, "not_sealed")
        body = stored.removeprefix(SEALED_PREFIX)
        try:
            raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        except (binascii.Error, ValueError):
            raise TotpSecretUnreadable(operator_id, "malformed") from None
        if len(raw) < _NONCE_BYTES + _TAG_BYTES:
            raise TotpSecretUnreadable(operator_id, "malformed")
        nonce, sealed = raw[:_NONCE_BYTES], raw[_NONCE_BYTES:]
        try:
            clear = AESGCM(self.secret).decrypt(nonce, sealed, _aad(operator_id))
        except InvalidTag:
            raise TotpSecretUnreadable(operator_id, "tag_mismatch") from None
        try:
            return clear.decode("ascii")
        except UnicodeDecodeError:  # pragma: no cover - only a sealer of ours writes the tag
            raise TotpSecretUnreadable(operator_id, "malformed") from None


def _aad(operator_id: str) -> bytes:
    return _AAD_LABEL + operator_id.encode("utf-8")
