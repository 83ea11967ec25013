"""One-time enrolment codes: how a new operator proves, at first sign-in, that they are the person
their administrator created the account for.

The creator is handed a code, never a password or a TOTP secret: at first sign-in the new operator
presents username + code, chooses their own password and enrols their own authenticator, so the
creator never learns either. The code carries 100 random bits (20 base32 characters, shown in
groups of five), is accepted for a short time only (``OperatorPolicy.enrolment_code_ttl``), once,
and is stored as its SHA-256 — like a session token, its entropy makes a slow hash unnecessary, and
wrong codes count towards the account's lock-out.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

CODE_BYTES = 25  # 200 bits in, 100 kept: 20 base32 characters
_GROUP = 5


def new_enrolment_code() -> str:
    """A fresh code such as ``K7QZP-3MWXA-...`` (groups of five base32 characters)."""
    raw = base64.b32encode(secrets.token_bytes(CODE_BYTES)).decode("ascii")[:20]
    return "-".join(raw[i : i + _GROUP] for i in range(0, len(raw), _GROUP))


def normalise(code: str) -> str:
    """The code as typed, without separators and case: what is hashed and compared."""
    return "".join(ch for ch in code.upper() if ch.isalnum())


def code_digest(code: str) -> str:
    return hashlib.sha256(normalise(code).encode("ascii", "replace")).hexdigest()


def code_matches(stored_digest: str, presented: str) -> bool:
    """Constant-time comparison of a presented code with the stored digest."""
    return hmac.compare_digest(stored_digest, code_digest(presented))
