"""The only place the edge adapts doipclient and udsoncan: speed, per-ECU channels, discovery.

Three adaptations, each as small as the library allows:

* :class:`FastDoIPClient` sends DoIP frames without the hex dump doipclient 1.2.2 builds for a
  debug line on every send (the dump costs ~98 % of a transfer's time and caps it near 3 MB/s).
* :class:`EcuChannel` is a udsoncan connection to one ECU over the car's single DoIP connection.
  doipclient's own connector targets the client's one ECU address and drops answers from any
  other (gotcha 2); a channel per ECU over one socket keeps one tester connection per car, as
  gateways expect, and lets the link address every ECU. It also skips udsoncan's eager
  ``hexlify`` of every payload when debug logging is off.
* :func:`identify` sends one vehicle identification request to several addresses at once and
  takes the first answer, with a timeout we choose (doipclient's ``get_entity`` waits a fixed 2 s
  on one address).

Every frame is built and parsed by doipclient's message classes; nothing here writes DoIP bytes.
"""

from __future__ import annotations

import binascii
import logging
import socket
import time
from collections.abc import Sequence
from typing import Any

from doipclient import DoIPClient  # type: ignore[attr-defined]
from doipclient.client import Parser
from doipclient.messages import (
    DiagnosticMessage,
    DiagnosticMessageNegativeAcknowledgement,
    DiagnosticMessagePositiveAcknowledgement,
    VehicleIdentificationRequest,
    VehicleIdentificationRequestWithVIN,
    VehicleIdentificationResponse,
)
from udsoncan import Request, Response  # type: ignore[attr-defined]
from udsoncan.connections import BaseConnection
from udsoncan.exceptions import TimeoutException

from forecourt.edge.link.errors import DiagnosticMessageRefused
from forecourt.logging import get_logger

_log = get_logger("edge.link.transport")

DOIP_PORT = 13400
PROTOCOL_VERSION = 0x02  # ISO 13400-2:2012, what vehicles in the field speak
ACK_TIMEOUT = 2.0  # A_DoIP_Diagnostic_Message (ISO 13400-2 table 40)
_VEHICLE_IDENTIFICATION_REQUEST = 0x0001
_VEHICLE_IDENTIFICATION_REQUEST_VIN = 0x0003


class LinkClosed(ConnectionError):
    """The vehicle closed the TCP connection (a cut, a reset gateway, a dropped cable)."""


class FastDoIPClient(DoIPClient):
    """doipclient's ``DoIPClient`` with one change: TCP frames go out with ``sendall``, no dump.

    Why: doipclient 1.2.2 ``send_doip`` formats ``" ".join(f"{b:02X}" ...)`` of the whole payload
    for a ``logger.debug`` call, eagerly, whatever the log level. With 1 MiB TransferData blocks
    that string costs ~98 % of the time and caps a transfer near 3 MB/s; without it the same
    client moves 80+ MB/s on loopback. The frame itself is unchanged (``_pack_doip`` builds it).
    We never enable doipclient's auto-reconnect, so its send-time socket checks are not needed:
    a closed connection surfaces on the next read, where :class:`EcuChannel` reports it.
    """

    def send_doip(
        self,
        payload_type: int,
        payload_data: bytes,
        transport: Any = DoIPClient.TransportType.TRANSPORT_TCP,
        disable_retry: bool = False,
    ) -> None:
        if transport != DoIPClient.TransportType.TRANSPORT_TCP:
            super().send_doip(payload_type, payload_data, transport, disable_retry)  # type: ignore[no-untyped-call]
            return
        frame = self._pack_doip(self._protocol_version, payload_type, payload_data)  # type: ignore[no-untyped-call]
        self._tcp_sock.sendall(frame)

    @property
    def peer_closed(self) -> bool:
        return bool(self._tcp_close_detected)

    @property
    def tester_address(self) -> int:
        return int(self._client_logical_address)


class EcuChannel(BaseConnection):
    """A udsoncan connection to the ECU ``target`` through the car's shared DoIP client."""

    def __init__(self, doip: FastDoIPClient, target: int) -> None:
        super().__init__(f"{target:04X}")
        self._doip = doip
        self.target = target
        self._opened = False

    # udsoncan BaseConnection ------------------------------------------------------------------
    def open(self) -> EcuChannel:
        self._opened = True
        return self

    def close(self) -> None:
        self._opened = False

    def is_open(self) -> bool:
        return self._opened

    def empty_rxqueue(self) -> None:
        """Nothing is queued: frames are read from the socket only when a response is awaited."""

    def empty_txqueue(self) -> None:
        """Nothing is queued: every send is synchronous."""

    def send(self, data: bytes | Request | Response, timeout: float | None = None) -> None:
        """As udsoncan's, without formatting a hex dump unless debug logging is on."""
        self.check_connection_opened()
        payload = data.get_payload() if isinstance(data, Request | Response) else data
        if self.logger.isEnabledFor(logging.DEBUG):
            self.logger.debug("Sending %d bytes : [%s]", len(payload), binascii.hexlify(payload))
        self.specific_send(payload)

    def wait_frame(self, timeout: float | None = None, exception: bool = False) -> bytes | None:
        self.check_connection_opened()
        try:
            return self.specific_wait_frame(timeout)
        except Exception:
            if exception:
                raise
            return None

    def specific_send(self, payload: bytes, timeout: float | None = None) -> None:
        """Send a diagnostic message and wait for the entity's acknowledgement (gotcha 3)."""
        doip = self._doip
        message = DiagnosticMessage(doip.tester_address, self.target, bytes(payload))  # type: ignore[no-untyped-call]
        doip.send_doip_message(message)  # type: ignore[no-untyped-call]
        deadline = time.monotonic() + ACK_TIMEOUT
        while True:
            message = self._read(deadline)
            if getattr(message, "source_address", None) != self.target:
                _log.debug("doip_message_ignored", kind=type(message).__name__)
                continue
            if isinstance(message, DiagnosticMessagePositiveAcknowledgement):
                return
            if isinstance(message, DiagnosticMessageNegativeAcknowledgement):
                raise DiagnosticMessageRefused(self.target, int(message.nack_code))
            _log.debug("doip_message_ignored", kind=type(message).__name__)

    def specific_wait_frame(self, timeout: float | None = None) -> bytes:
        """The next UDS response from this ECU to this tester; other messages are dropped."""
        deadline = time.monotonic() + (timeout if timeout is not None else ACK_TIMEOUT)
        while True:
            try:
                message = self._read(deadline)
            except TimeoutError as error:
                raise TimeoutException(str(error)) from error  # type: ignore[no-untyped-call]
            if (
                isinstance(message, DiagnosticMessage)
                and message.source_address == self.target
                and message.target_address == self._doip.tester_address
            ):
                return bytes(message.user_data)
            _log.debug("doip_message_ignored", kind=type(message).__name__)

    def _read(self, deadline: float) -> Any:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(f"no DoIP message from {self.target:04X} in time")
        try:
            return self._doip.read_doip(timeout=remaining)  # type: ignore[no-untyped-call]
        except TimeoutError:
            if self._doip.peer_closed:
                raise LinkClosed("the vehicle closed the DoIP connection") from None
            raise


def identify(
    addresses: Sequence[str], *, vin: str | None, timeout: float
) -> tuple[str, VehicleIdentificationResponse]:
    """Send a vehicle identification request (by VIN when given) to each address; first answer.

    A car whose VIN differs stays silent (ISO 13400-2 §7.3.2), so a VIN request sent to every
    address of the dealer network (or its broadcast address) is answered by that car alone.
    Raises ``TimeoutError`` when nobody answers within ``timeout``.
    """
    if vin is not None:
        message: Any = VehicleIdentificationRequestWithVIN(vin)  # type: ignore[no-untyped-call]
        payload_type = _VEHICLE_IDENTIFICATION_REQUEST_VIN
    else:
        message = VehicleIdentificationRequest()
        payload_type = _VEHICLE_IDENTIFICATION_REQUEST
    frame = DoIPClient._pack_doip(PROTOCOL_VERSION, payload_type, message.pack())  # type: ignore[no-untyped-call]
    parser = Parser()  # type: ignore[no-untyped-call]
    deadline = time.monotonic() + timeout
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
        sock.bind(("", 0))
        for address in addresses:
            try:
                sock.sendto(frame, (address, DOIP_PORT))
            except OSError as error:
                _log.info("identification_not_sent", address=address, error=str(error))
        while (remaining := deadline - time.monotonic()) > 0:
            sock.settimeout(remaining)
            try:
                data, peer = sock.recvfrom(1024)
            except TimeoutError:
                break
            parser.reset()  # type: ignore[no-untyped-call]  # one DoIP message per datagram
            response = parser.read_message(data)  # type: ignore[no-untyped-call]
            if isinstance(response, VehicleIdentificationResponse) and (
                vin is None or response.vin == vin
            ):
                return str(peer[0]), response
    raise TimeoutError("no vehicle identification response")
