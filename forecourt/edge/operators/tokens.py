"""Opaque session and CSRF tokens: random, and stored only as their SHA-256.

A leaked database then opens no session; SHA-256 (not a slow hash) is right here because the
tokens have 256 bits of entropy and cannot be guessed.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

TOKEN_BYTES = 32


def new_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def tokens_equal(a: str, b: str) -> bool:
    """Constant-time comparison, for CSRF tokens."""
    return hmac.compare_digest(a.encode("utf-8"), b.encode("utf-8"))
