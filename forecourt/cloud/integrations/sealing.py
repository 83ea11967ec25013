"""Webhook signing secrets sealed at rest: AES-256-GCM under the cloud's webhook key.

Why sealed and not hashed: unlike a staff token, which the cloud only checks, a webhook secret is
what the cloud signs with, so it must be readable by the delivery worker. Why sealed and not in
clear: a copy of the registry database (a backup, a support dump) would otherwise let anyone
forge events to every partner. The 32-byte key lives in a file outside the database
(:data:`KEY_FILE_ENV`, else ``cloud-webhook.key`` in the data directory, mode 0600) which every
replica reads; it never enters the database or a log.

The stored form is ``aesgcm1:`` then base64url (no padding) of nonce ‖ ciphertext ‖ tag with a
fresh 96-bit nonce per seal. The associated data names the purpose and the subscription, so a
sealed value copied to another subscription's row does not open.

The key is read when first needed (a subscription created, a delivery signed), not when the app
is built: a cloud with no subscriptions never touches the file.
"""

from __future__ import annotations

import base64
import binascii
import os
import secrets
import threading
from collections.abc import Callable
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from forecourt.cloud.integrations.verify import SECRET_PREFIX
from forecourt.logging import get_logger
from forecourt.settings import load_settings

KEY_FILE_ENV = "FORECOURT_WEBHOOK_KEY_FILE"
KEY_FILE_NAME = "cloud-webhook.key"
SEALED_PREFIX = "aesgcm1:"
_KEY_BYTES = 32
_NONCE_BYTES = 12
_SECRET_BYTES = 32
_AAD_LABEL = b"forecourt.cloud.webhook_secret.v1\x00"

_log = get_logger("cloud.integrations.sealing")


class WebhookKeyError(ValueError):
    """The webhook key file is unusable (wrong size, readable by others, unreadable)."""


class SecretUnreadable(ValueError):
    """A stored secret does not open under this key (another key, or altered).

    Names the subscription only, never the value."""


def new_secret() -> str:
    """A fresh signing secret in the Standard Webhooks form ``whsec_<base64 of 32 bytes>``."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(_SECRET_BYTES)).decode("ascii")


def _aad(subscription_id: str) -> bytes:
    return _AAD_LABEL + subscription_id.encode()


class SecretSealer:
    """Seals and opens subscription secrets under one 32-byte key, loaded on first use."""

    def __init__(self, key: Callable[[], bytes]) -> None:
        self._load = key
        self._key: bytes | None = None
        self._lock = threading.Lock()

    @classmethod
    def with_key(cls, key: bytes) -> SecretSealer:
        if len(key) != _KEY_BYTES:
            raise WebhookKeyError(f"a webhook key is {_KEY_BYTES} bytes, got {len(key)}")
        return cls(lambda: key)

    @classmethod
    def from_file(cls, path: Callable[[], Path]) -> SecretSealer:
        """The key in the file ``path()`` names, created (0600) on first use if absent."""
        return cls(lambda: load_or_create_key(path()))

    def _aead(self) -> AESGCM:
        with self._lock:
            if self._key is None:
                self._key = self._load()
            return AESGCM(self._key)

    def seal(self, subscription_id: str, secret: str) -> str:
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._aead().encrypt(nonce, secret.encode("ascii"), _aad(subscription_id))
        return SEALED_PREFIX + base64.urlsafe_b64encode(nonce + sealed).decode().rstrip("=")

    def open(self, subscription_id: str, stored: str) -> str:
        if not stored.startswith(SEALED_PREFIX):
            raise SecretUnreadable(f"the secret of {subscription_id} is not sealed")
        text = stored.removeprefix(SEALED_PREFIX)
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
            plain = self._aead().decrypt(
                raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], _aad(subscription_id)
            )
        except (binascii.Error, InvalidTag, ValueError) as exc:
            raise SecretUnreadable(
                f"the secret of {subscription_id} does not open under this webhook key"
            ) from exc
        return plain.decode("ascii")


def load_or_create_key(path: Path) -> bytes:
    """Read the key at ``path`` (base64 text), or write a new one there (mode 0600)."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        key = secrets.token_bytes(_KEY_BYTES)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(base64.b64encode(key).decode() + "\n")
        _log.info("webhook_key_created", path=str(path))
        return key
    if path.stat().st_mode & 0o077:
        raise WebhookKeyError(f"{path}: readable by group or others; chmod 600 it")
    try:
        key = base64.b64decode(path.read_text().strip(), validate=True)
    except (OSError, binascii.Error) as exc:
        raise WebhookKeyError(f"{path}: not a base64 webhook key") from exc
    if len(key) != _KEY_BYTES:
        raise WebhookKeyError(f"{path}: a webhook key is {_KEY_BYTES} bytes, got {len(key)}")
    return key


def default_key_path() -> Path:
    """``FORECOURT_WEBHOOK_KEY_FILE``, else ``cloud-webhook.key`` in the data directory."""
    named = os.environ.get(KEY_FILE_ENV)
    return Path(named) if named else load_settings().data_dir / KEY_FILE_NAME
