"""What one tester holds on one ECU: session, 0x27, 0x29 and the file transfer in progress.

ISO 13400-2 binds a tester logical address to one TCP socket at routing activation; ISO 14229-1
state (the active diagnostic session, the unlocked security level, the authenticated role, the
pending seed or challenge, the transfer in progress) belongs to that tester, not to the ECU. One
:class:`TesterSession` exists per (connection, tester address, ECU); it is closed when the socket
closes and reset when S3 expires, so a second tester never rides on, or disturbs, another's
authentication. Only the failed-attempt counters (:class:`AttemptCounter`) outlive a connection:
they are the ECU's, per tester address.
"""

from __future__ import annotations

from dataclasses import dataclass

from forecourt.vehicle.transfer import FileReceiver
from forecourt.vehicle.uds.authentication import Authentication
from forecourt.vehicle.uds.security_access import SecurityAccess
from forecourt.vehicle.uds.session import SessionState


@dataclass
class TesterSession:
    tester_address: int | None  # None: an in-process tester (bench, fuzzing), never the network
    session: SessionState
    security: SecurityAccess
    authentication: Authentication
    receiver: FileReceiver

    def touch(self) -> bool:
        """Record activity; on S3 expiry drop everything the tester held. True when expired."""
        if not self.session.touch():
            return False
        self._drop()
        return True

    def reset(self) -> None:
        """ECUReset or disconnect: back to the default session, nothing unlocked or pending."""
        self.session.reset()
        self._drop()

    def _drop(self) -> None:
        self.security.drop()
        self.authentication.drop()
        self.receiver.abort()

    @property
    def unlocked(self) -> bool:
        return self.session.unlocked
