"""UDS 0x29 Authentication, PKI certificate exchange, unidirectional (ISO 14229-1:2020 §10.6).

Sequence: 0x01 verifyCertificateUnidirectional (tester certificate + optional client challenge)
-> the ECU checks the certificate through the :class:`TesterAuthenticator` seam and answers a fresh
server challenge; 0x03 proofOfOwnership (tester's signature over that challenge) -> authenticated.
0x00 deAuthenticate drops it, 0x08 authenticationConfiguration announces APCE. Failed proofs are
counted like 0x27 keys; a proof without a certificate first is a sequence error (0x24).
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass

from forecourt.trust.uds_auth import CHALLENGE_BYTES, make_challenge
from forecourt.vehicle.seams import (
    AuthenticationContext,
    TesterAuthenticator,
    TesterIdentity,
    TrustRefusal,
)
from forecourt.vehicle.uds.attempts import AttemptCounter
from forecourt.vehicle.uds.nrc import NegativeResponse, Nrc

DE_AUTHENTICATE = 0x00
VERIFY_CERTIFICATE_UNIDIRECTIONAL = 0x01
PROOF_OF_OWNERSHIP = 0x03
AUTHENTICATION_CONFIGURATION = 0x08

# authenticationReturnParameter, ISO 14229-1:2020 table 74
RETURN_APCE = 0x02
RETURN_DEAUTHENTICATED = 0x10
RETURN_OWNERSHIP_VERIFICATION_NECESSARY = 0x11
RETURN_AUTHENTICATION_COMPLETE = 0x12
CHALLENGE_LENGTH = CHALLENGE_BYTES


def _take_lv(data: bytes, offset: int) -> tuple[bytes, int]:
    """Read one 2-byte-length-prefixed parameter."""
    if len(data) < offset + 2:
        raise NegativeResponse(Nrc.INCORRECT_MESSAGE_LENGTH_OR_INVALID_FORMAT, "missing length")
    (length,) = struct.unpack_from(">H", data, offset)
    end = offset + 2 + length
    if len(data) < end:
        raise NegativeResponse(Nrc.INCORRECT_MESSAGE_LENGTH_OR_INVALID_FORMAT, "short parameter")
    return data[offset + 2 : end], end


def _lv(value: bytes) -> bytes:
    return struct.pack(">H", len(value)) + value


@dataclass
class Authentication:
    """0x29 state of one tester on one ECU: the pending challenge dies with the connection.

    ``attempts`` is owned by the ECU per tester address, so another tester can neither consume
    this tester's challenge nor its failed-proof count.
    """

    authenticator: TesterAuthenticator
    attempts: AttemptCounter
    context: Callable[[], AuthenticationContext]
    """The ECU's VIN, serial, pinned anchors and the car's time, read at each check."""
    _candidate: tuple[TesterIdentity, bytes] | None = None

    @property
    def failed_attempts(self) -> int:
        return self.attempts.failed

    def drop(self) -> None:
        """Forget the pending challenge (disconnect, S3 timeout)."""
        self._candidate = None

    def handle(self, task: int, data: bytes) -> tuple[bytes, TesterIdentity | None]:
        """Return (response payload after SID+task, newly authenticated tester or None)."""
        if task == DE_AUTHENTICATE:
            self._candidate = None
            return bytes([RETURN_DEAUTHENTICATED]), None
        if task == AUTHENTICATION_CONFIGURATION:
            return bytes([RETURN_APCE]), None
        if task == VERIFY_CERTIFICATE_UNIDIRECTIONAL:
            return self._verify_certificate(data), None
        if task == PROOF_OF_OWNERSHIP:
            return self._proof_of_ownership(data)
        raise NegativeResponse(Nrc.SUBFUNCTION_NOT_SUPPORTED, f"authentication task {task}")

    def _check_delay(self) -> None:
        self.attempts.check_delay()

    def _verify_certificate(self, data: bytes) -> bytes:
        self._check_delay()
        if len(data) < 1:
            raise NegativeResponse(Nrc.INCORRECT_MESSAGE_LENGTH_OR_INVALID_FORMAT, "empty")
        certificate, offset = _take_lv(data, 1)
        _client_challenge, offset = _take_lv(data, offset)
        if offset != len(data):
            raise NegativeResponse(Nrc.INCORRECT_MESSAGE_LENGTH_OR_INVALID_FORMAT, "trailing data")
        self._candidate = None
        try:
            tester = self.authenticator.verify_certificate(certificate, self.context())
        except TrustRefusal as refusal:
            raise NegativeResponse(refusal.nrc, refusal.reason) from refusal
        challenge = make_challenge()
        self._candidate = (tester, challenge)
        return bytes([RETURN_OWNERSHIP_VERIFICATION_NECESSARY]) + _lv(challenge) + _lv(b"")

    def _proof_of_ownership(self, data: bytes) -> tuple[bytes, TesterIdentity]:
        self._check_delay()
        proof, offset = _take_lv(data, 0)
        _ephemeral, offset = _take_lv(data, offset)
        candidate, self._candidate = self._candidate, None
        if candidate is None:
            raise NegativeResponse(Nrc.REQUEST_SEQUENCE_ERROR, "proof before certificate")
        tester, challenge = candidate
        try:
            self.authenticator.verify_proof_of_ownership(tester, challenge, proof, self.context())
        except TrustRefusal as refusal:
            raise self.attempts.failure(refusal.nrc, refusal.reason) from refusal
        self.attempts.succeeded()
        return bytes([RETURN_AUTHENTICATION_COMPLETE]) + _lv(b""), tester
