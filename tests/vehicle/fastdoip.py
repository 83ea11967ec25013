"""The one change to stock doipclient our tests make, and why.

doipclient 1.2.2 ``DoIPClient.send_doip`` formats a hex dump of every payload for a debug log line
even when debug logging is off; with 1 MiB TransferData blocks that is ~98 % of the time and caps a
transfer near 3 MB/s. This subclass overrides only that method to send the same frame with
``sendall`` and no dump. Everything else (routing activation, acks, parsing, udsoncan on top) is
the stock library, so the conformance tests still exercise an independent client.
"""

from __future__ import annotations

from typing import Any

from doipclient import DoIPClient


class FastDoIPClient(DoIPClient):  # type: ignore[misc]
    def send_doip(
        self,
        payload_type: int,
        payload_data: bytes,
        transport: Any = DoIPClient.TransportType.TRANSPORT_TCP,
        disable_retry: bool = False,
    ) -> None:
        if transport != DoIPClient.TransportType.TRANSPORT_TCP:
            super().send_doip(payload_type, payload_data, transport, disable_retry)
            return
        frame = self._pack_doip(self._protocol_version, payload_type, payload_data)
        self._tcp_sock.sendall(frame)
