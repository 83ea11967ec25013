"""TOTP second factor (RFC 6238) with pyotp, and its enrolment QR code rendered with segno.

Replay: the operator's row keeps the highest time step ever accepted; a code is accepted only for a
step strictly above it (RFC 6238 §5.2: "the verifier MUST NOT accept the second attempt of the same
OTP after the successful validation has been issued"). Clock drift: codes of the previous and next
step are accepted (±1 step, 30 s each) — RFC 6238 §5.2's recommended allowance.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from datetime import datetime

import pyotp
import segno

SECRET_LENGTH = 32  # base32 characters: 160 bits, the RFC 4226 recommended key size
DIGITS = 6
INTERVAL_SECONDS = 30
DRIFT_STEPS = 1
_CODE = re.compile(rf"^[0-9]{{{DIGITS}}}$")


def new_secret() -> str:
    """A fresh random base32 TOTP secret."""
    return pyotp.random_base32(length=SECRET_LENGTH)


def time_step(at: datetime) -> int:
    """The RFC 6238 time step (counter) that ``at`` falls in."""
    return pyotp.TOTP("A" * 16, interval=INTERVAL_SECONDS).timecode(at)


def code_at(secret: str, at: datetime) -> str:
    """The code an authenticator app shows at ``at`` (for tests and the demo's simulated phone)."""
    return pyotp.TOTP(secret, digits=DIGITS, interval=INTERVAL_SECONDS).at(at)


def match_step(
    secret: str, code: str, at: datetime, last_step: int | None, drift: int = DRIFT_STEPS
) -> int | None:
    """The time step ``code`` belongs to, if it is valid at ``at`` within ``drift`` and fresh.

    None when the code is malformed, wrong, or at or below ``last_step`` (already used).
    Comparison is constant-time (``pyotp.utils.strings_equal``).
    """
    if not _CODE.fullmatch(code):
        return None
    totp = pyotp.TOTP(secret, digits=DIGITS, interval=INTERVAL_SECONDS)
    now_step = totp.timecode(at)
    matched: int | None = None
    for offset in range(-drift, drift + 1):
        if pyotp.utils.strings_equal(totp.at(at, counter_offset=offset), code):
            matched = now_step + offset
    if matched is None or (last_step is not None and matched <= last_step):
        return None
    return matched


@dataclass(frozen=True, slots=True)
class TotpEnrolment:
    """What an operator needs to add the secret to an authenticator app.

    ``repr`` hides the secret so that an enrolment passed to a logger by mistake does not leak it.
    """

    secret: str
    provisioning_uri: str

    def __repr__(self) -> str:
        return "TotpEnrolment(secret=[redacted], provisioning_uri=[redacted])"

    def _qr(self) -> segno.QRCode:
        return segno.make(self.provisioning_uri, error="m")

    def qr_svg_data_uri(self, scale: int = 4) -> str:
        """An ``data:image/svg+xml`` URI for the console's ``<img src>``."""
        return str(self._qr().svg_data_uri(scale=scale))

    def qr_png_data_uri(self, scale: int = 4) -> str:
        """An ``data:image/png;base64`` URI, for clients that do not render SVG."""
        return str(self._qr().png_data_uri(scale=scale))

    def qr_terminal_text(self) -> str:
        """The QR code as Unicode block characters, for the CLI."""
        out = io.StringIO()
        self._qr().terminal(out=out, compact=True)
        return out.getvalue()


def enrolment_for(secret: str, username: str, dealer_id: str, issuer: str) -> TotpEnrolment:
    uri = pyotp.TOTP(secret, digits=DIGITS, interval=INTERVAL_SECONDS).provisioning_uri(
        name=f"{username}@{dealer_id}", issuer_name=issuer
    )
    return TotpEnrolment(secret=secret, provisioning_uri=uri)
