"""UDS 0x27 SecurityAccess: seed/key with attempt counting and a lock-out delay.

The key is HMAC-SHA256(per-ECU secret, level || seed), truncated to 16 bytes. The per-ECU secret is
derived with HKDF from an OEM secret and the ECU serial (:func:`derive_ecu_secret`), so knowing the
seed, or the secret of another ECU, gives nothing; the edge obtains keys from the OEM backend.
After ``max_attempts`` wrong keys the ECU answers NRC 0x36 and then NRC 0x37 to every seed request
until ``delay_seconds`` have passed (ISO 14229-1 §10.4).
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass, field
from hashlib import sha256

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from forecourt.vehicle.uds.attempts import AttemptCounter
from forecourt.vehicle.uds.nrc import NegativeResponse, Nrc

SEED_LENGTH = 16
KEY_LENGTH = 16
_HKDF_INFO = b"forecourt uds-0x27 ecu secret v1"


def derive_ecu_secret(oem_secret: bytes, ecu_serial: str) -> bytes:
    """The ECU's seed/key secret, written at the factory; the OEM backend can recompute it."""
    return HKDF(
        algorithm=hashes.SHA256(), length=32, salt=ecu_serial.encode(), info=_HKDF_INFO
    ).derive(oem_secret)


def compute_key(ecu_secret: bytes, level: int, seed: bytes) -> bytes:
    return hmac.new(ecu_secret, bytes([level]) + seed, sha256).digest()[:KEY_LENGTH]


@dataclass
class SecurityAccess:
    """0x27 state of one tester on one ECU: the pending seed lives and dies with the connection.

    ``attempts`` is owned by the ECU per tester address (a reconnect does not reset it, another
    tester cannot touch it).
    """

    secret: bytes
    attempts: AttemptCounter
    levels: frozenset[int] = frozenset({0x01, 0x11})
    _pending: tuple[int, bytes] | None = field(default=None, repr=False)

    @property
    def failed_attempts(self) -> int:
        return self.attempts.failed

    def drop(self) -> None:
        """Forget the pending seed (disconnect, S3 timeout, session change)."""
        self._pending = None

    def request_seed(self, level: int, unlocked_level: int | None) -> bytes:
        if level not in self.levels:
            raise NegativeResponse(Nrc.SUBFUNCTION_NOT_SUPPORTED, f"security level {level:#04x}")
        self.attempts.check_delay()
        if unlocked_level == level:
            return bytes(SEED_LENGTH)  # already unlocked: all-zero seed per ISO 14229-1
        seed = secrets.token_bytes(SEED_LENGTH)
        self._pending = (level, seed)
        return seed

    def send_key(self, level: int, key: bytes) -> None:
        """Check the key for ``level`` (the odd seed level); raise the NRC on refusal."""
        pending, self._pending = self._pending, None
        if pending is None or pending[0] != level:
            raise NegativeResponse(Nrc.REQUEST_SEQUENCE_ERROR, "sendKey without requestSeed")
        self.attempts.check_delay()
        expected = compute_key(self.secret, level, pending[1])
        if hmac.compare_digest(expected, key):
            self.attempts.succeeded()
            return
        raise self.attempts.failure(Nrc.INVALID_KEY, "invalid key")
