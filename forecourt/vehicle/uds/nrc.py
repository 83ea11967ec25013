"""ISO 14229-1:2020 negative response codes and the one exception that carries them.

A service handler refuses a request by raising :class:`NegativeResponse`; the ECU turns it into
``7F <SID> <NRC>`` and logs the refusal. Handlers never build negative frames themselves.
"""

from __future__ import annotations

from enum import IntEnum

NEGATIVE_RESPONSE_SID = 0x7F
POSITIVE_RESPONSE_OFFSET = 0x40


class Nrc(IntEnum):
    """ISO 14229-1:2020 annex A.1."""

    GENERAL_REJECT = 0x10
    SERVICE_NOT_SUPPORTED = 0x11
    SUBFUNCTION_NOT_SUPPORTED = 0x12
    INCORRECT_MESSAGE_LENGTH_OR_INVALID_FORMAT = 0x13
    RESPONSE_TOO_LONG = 0x14
    BUSY_REPEAT_REQUEST = 0x21
    CONDITIONS_NOT_CORRECT = 0x22
    REQUEST_SEQUENCE_ERROR = 0x24
    REQUEST_OUT_OF_RANGE = 0x31
    SECURITY_ACCESS_DENIED = 0x33
    AUTHENTICATION_REQUIRED = 0x34
    INVALID_KEY = 0x35
    EXCEEDED_NUMBER_OF_ATTEMPTS = 0x36
    REQUIRED_TIME_DELAY_NOT_EXPIRED = 0x37
    SECURE_DATA_TRANSMISSION_REQUIRED = 0x38
    SECURE_DATA_VERIFICATION_FAILED = 0x3A
    CERTIFICATE_INVALID_TIME_PERIOD = 0x50
    CERTIFICATE_INVALID_SIGNATURE = 0x51
    CERTIFICATE_INVALID_CHAIN_OF_TRUST = 0x52
    CERTIFICATE_INVALID_TYPE = 0x53
    CERTIFICATE_INVALID_FORMAT = 0x54
    CERTIFICATE_INVALID_CONTENT = 0x55
    CERTIFICATE_INVALID_SCOPE = 0x56
    CERTIFICATE_INVALID_CERTIFICATE = 0x57
    OWNERSHIP_VERIFICATION_FAILED = 0x58
    CHALLENGE_CALCULATION_FAILED = 0x59
    SETTING_ACCESS_RIGHTS_FAILED = 0x5A
    SESSION_KEY_CREATION_FAILED = 0x5B
    CONFIGURATION_DATA_USAGE_FAILED = 0x5C
    DEAUTHENTICATION_FAILED = 0x5D
    UPLOAD_DOWNLOAD_NOT_ACCEPTED = 0x70
    TRANSFER_DATA_SUSPENDED = 0x71
    GENERAL_PROGRAMMING_FAILURE = 0x72
    WRONG_BLOCK_SEQUENCE_COUNTER = 0x73
    RESPONSE_PENDING = 0x78
    SUBFUNCTION_NOT_SUPPORTED_IN_ACTIVE_SESSION = 0x7E
    SERVICE_NOT_SUPPORTED_IN_ACTIVE_SESSION = 0x7F


class NegativeResponse(Exception):
    """A request the ECU refuses; ``reason`` goes to the log, never to the wire."""

    def __init__(self, nrc: Nrc, reason: str) -> None:
        super().__init__(f"NRC {nrc:#04x} {nrc.name}: {reason}")
        self.nrc = nrc
        self.reason = reason


def negative_response(sid: int, nrc: Nrc) -> bytes:
    return bytes([NEGATIVE_RESPONSE_SID, sid, nrc])


def response_pending(sid: int) -> bytes:
    return negative_response(sid, Nrc.RESPONSE_PENDING)
