"""The edge's own secret key files: created once (mode 0600, exclusive create), never rewritten.

The edge keeps several 32-byte secrets beside its database (the consent subject key, the
operator TOTP sealing key). Each is generated on first start and only ever read after that; a
file that is readable by group or others, or of the wrong size, is refused rather than used,
because it is not a file this edge wrote (or it leaked). One implementation serves them all.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from forecourt.logging import get_logger

__all__ = ["KeyFileError", "create_key_file", "read_key_file"]

_log = get_logger("edge.keyfiles")


class KeyFileError(ValueError):
    """A key file is not a key this edge wrote: ``reason`` says why (size, permissions)."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


def read_key_file(path: Path, size: int, error: type[KeyFileError] = KeyFileError) -> bytes:
    """The ``size`` bytes at ``path``; ``error`` (a :class:`KeyFileError`) names what is wrong."""
    if path.stat().st_mode & 0o077:
        raise error(path, "readable by others than the edge (want 0600)")
    raw = path.read_bytes()
    if len(raw) != size:
        raise error(path, f"holds {len(raw)} bytes, not a {size}-byte key")
    return raw


def create_key_file(path: Path, size: int, event: str) -> bytes | None:
    """Write a fresh ``size``-byte secret to ``path`` (0600) and return it; None when the file
    already exists (it is then read, never overwritten). ``event`` is logged with the path."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return None
    secret = secrets.token_bytes(size)
    with os.fdopen(fd, "wb") as handle:
        handle.write(secret)
    _log.info(event, path=str(path))
    return secret
