"""Failed-attempt counting and the lock-out delay shared by 0x27 and 0x29 (ISO 14229-1 §10.4).

One counter per (ECU, tester address, service), owned by the ECU and kept across reconnects of the
same tester address, so closing and reopening the socket does not reset it. It is not shared
between tester addresses: a second tester cannot burn the attempts (or start the delay) of the
dealer tester that is authenticating at the same time.
"""

from __future__ import annotations

from dataclasses import dataclass

from forecourt.vehicle.uds.nrc import NegativeResponse, Nrc
from forecourt.vehicle.uds.session import Clock


@dataclass
class AttemptCounter:
    clock: Clock
    max_attempts: int = 3
    delay_seconds: float = 10.0
    failed: int = 0
    locked_until: float = 0.0

    def check_delay(self) -> None:
        """Refuse with 0x37 while the lock-out delay runs."""
        if self.clock.monotonic() < self.locked_until:
            raise NegativeResponse(Nrc.REQUIRED_TIME_DELAY_NOT_EXPIRED, "lock-out delay running")

    def succeeded(self) -> None:
        self.failed = 0

    def failure(self, nrc: Nrc, reason: str) -> NegativeResponse:
        """Count one failure; the refusal to raise (0x36 once the limit is reached)."""
        self.failed += 1
        if self.failed >= self.max_attempts:
            self.failed = 0
            self.locked_until = self.clock.monotonic() + self.delay_seconds
            return NegativeResponse(Nrc.EXCEEDED_NUMBER_OF_ATTEMPTS, f"too many failures: {reason}")
        return NegativeResponse(nrc, f"{reason}, attempt {self.failed}")
