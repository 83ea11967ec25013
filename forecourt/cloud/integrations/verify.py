"""Checking a Forecourt webhook on the receiving side (Standard Webhooks, ``v1`` signatures).

Standard library only, so a partner (owner app, digital key service, after-sales CRM) can copy
this file into their receiver unchanged. The cloud signs with :func:`sign` from this same file,
so what is signed is defined in one place.

Each request carries ``webhook-id`` (the same on every retry: deduplicate on it),
``webhook-timestamp`` (Unix seconds of this attempt) and ``webhook-signature``: one or more
space-separated ``v1,<base64 HMAC-SHA256>`` over ``id.timestamp.body`` with the key that the
``whsec_`` secret encodes. During a secret rotation the cloud sends one signature per valid
secret; a receiver accepts the request when any of them matches its secret.

Use::

    try:
        verify(SECRET, request.headers, raw_body)
    except WebhookVerificationError:
        return 400  # never process it
    if seen(request.headers["webhook-id"]):
        return 204  # a retry of what was already handled

The timestamp check (5 minutes either way by default) refuses a replay of an old, validly
signed request; the signature comparison takes constant time.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from collections.abc import Mapping

SECRET_PREFIX = "whsec_"  # noqa: S105 - the prefix, not a secret
DEFAULT_TOLERANCE_S = 300


class WebhookVerificationError(Exception):
    """The request is not a webhook signed with this secret, or is too old or too new.

    The message says which check failed, never the secret or the expected signature."""


def secret_key(secret: str) -> bytes:
    """The HMAC key a ``whsec_...`` secret encodes (base64 after the prefix)."""
    try:
        return base64.b64decode(secret.removeprefix(SECRET_PREFIX), validate=True)
    except binascii.Error as exc:
        raise WebhookVerificationError("the secret is not a whsec_ base64 secret") from exc


def sign(key: bytes, webhook_id: str, timestamp: int, body: bytes) -> str:
    """The ``v1,<base64>`` signature of one request."""
    signed = f"{webhook_id}.{timestamp}.".encode() + body
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def _header(headers: Mapping[str, str], name: str) -> str:
    for key, value in headers.items():
        if key.lower() == name:
            return value
    raise WebhookVerificationError(f"the {name} header is missing")


def verify(
    secret: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    tolerance_s: int = DEFAULT_TOLERANCE_S,
    now: float | None = None,
) -> None:
    """Accept the request or raise :class:`WebhookVerificationError`.

    ``body`` is the raw request body, byte for byte (not re-serialised JSON)."""
    webhook_id = _header(headers, "webhook-id")
    stamp = _header(headers, "webhook-timestamp")
    signatures = _header(headers, "webhook-signature")
    try:
        timestamp = int(stamp)
    except ValueError as exc:
        raise WebhookVerificationError("the webhook-timestamp is not an integer") from exc
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance_s:
        raise WebhookVerificationError("the webhook-timestamp is outside the tolerance")
    expected = sign(secret_key(secret), webhook_id, timestamp, body).encode("ascii")
    matched = False
    for candidate in signatures.split(" "):
        # Every candidate is compared, so the time taken does not say which one matched.
        matched |= hmac.compare_digest(candidate.encode("ascii", "replace"), expected)
    if not matched:
        raise WebhookVerificationError("no webhook-signature matches the secret")
