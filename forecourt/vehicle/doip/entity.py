"""The car's DoIP entity (ISO 13400-2): UDP identification and announcements, TCP diagnostics.

One entity per car, bound to the car's own address on port 13400. The gateway (logical address
0x1000) routes diagnostic messages to the ECU named by the target address. Link faults from the
car's :class:`~forecourt.vehicle.faults.FaultPlan` (drops, slow link, refused activation) act here,
at the transport, exactly where a flaky OBD cable would.
"""

from __future__ import annotations

import asyncio
import socket
import struct
import time
from dataclasses import dataclass
from itertools import count
from typing import cast

from forecourt.logging import get_logger
from forecourt.vehicle.car import Car
from forecourt.vehicle.dids import PowerModeState
from forecourt.vehicle.doip import frames
from forecourt.vehicle.doip.frames import (
    DiagnosticNackCode,
    DoipHeaderError,
    GenericNackCode,
    PayloadType,
    PowerMode,
    RoutingActivationCode,
)
from forecourt.vehicle.tester_session import TesterSession
from forecourt.vehicle.transfer import MAX_BLOCK_LENGTH

_log = get_logger("vehicle.doip")

DOIP_PORT = 13400
TESTER_ADDRESSES = range(0x0E00, 0x1000)  # ISO 13400-2 table 13: external test equipment
ACTIVATION_TYPES = frozenset({0x00, 0x01, 0xE0})
MAX_DATA_SIZE = MAX_BLOCK_LENGTH + 4 + 64  # one TransferData block plus DoIP addresses, margin
UDP_MAX_PAYLOAD = 64
TRANSFER_DATA_SID = 0x36


@dataclass(frozen=True)
class EntityConfig:
    host: str
    port: int = DOIP_PORT
    max_sockets: int = 4
    max_data_size: int = MAX_DATA_SIZE
    announce_count: int = 3
    announce_interval: float = 0.5
    announce_to: tuple[str, int] | None = ("255.255.255.255", DOIP_PORT)


class _Identification(asyncio.DatagramProtocol):
    def __init__(self, entity: DoipEntity) -> None:
        self.entity = entity
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | object, int]) -> None:
        reply = self.entity.handle_udp(data)
        if reply is not None and self.transport is not None:
            self.transport.sendto(reply, addr)


class DoipEntity:
    def __init__(self, car: Car, config: EntityConfig) -> None:
        self.car = car
        self.config = config
        self._udp: asyncio.DatagramTransport | None = None
        self._server: asyncio.Server | None = None
        self._testers: dict[int, int] = {}  # tester logical address -> connection id
        self._connections: dict[int, asyncio.StreamWriter] = {}
        self._ids = count(1)

    @property
    def logical_address(self) -> int:
        return self.car.gateway_address

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
        sock.bind((self.config.host, self.config.port))
        transport, _ = await loop.create_datagram_endpoint(lambda: _Identification(self), sock=sock)
        self._udp = transport
        self._server = await asyncio.start_server(
            self._serve,
            self.config.host,
            self.config.port,
            reuse_address=True,
            limit=self.config.max_data_size * 2,  # read a whole block without flow-control stalls
        )
        _log.info("doip_entity_started", vin=self.car.vin, host=self.config.host)

    async def announce(self) -> None:
        """Vehicle announcement (0x0004), ``announce_count`` times (A_DoIP_Announce_Interval)."""
        target = self.config.announce_to
        if target is None or self._udp is None:
            return
        frame = self._identification_response()
        for i in range(self.config.announce_count):
            if i:
                await asyncio.sleep(self.config.announce_interval)
            try:
                self._udp.sendto(frame, target)
            except OSError as exc:
                _log.debug("announcement_not_sent", error=str(exc))

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for writer in list(self._connections.values()):
            writer.transport.abort()
        if self._server is not None:
            await self._server.wait_closed()
        if self._udp is not None:
            self._udp.close()

    # UDP ------------------------------------------------------------------------------------
    def _identification_response(self) -> bytes:
        return frames.vehicle_identification_response(
            self.car.vin, self.logical_address, self.car.eid, self.car.gid
        )

    def handle_udp(self, data: bytes) -> bytes | None:
        try:
            header = frames.parse_header(data[: frames.HEADER_LENGTH], UDP_MAX_PAYLOAD)
            payload = data[frames.HEADER_LENGTH :]
            if len(payload) != header.payload_length:
                raise DoipHeaderError(
                    GenericNackCode.INVALID_PAYLOAD_LENGTH, "datagram length", close_socket=False
                )
        except DoipHeaderError as error:
            _log.info("doip_udp_refused", nack=error.code.name, reason=error.reason)
            return frames.generic_nack(error.code)
        kind = header.payload_type
        if kind is PayloadType.VEHICLE_IDENTIFICATION_REQUEST:
            return self._identification_response()
        if kind is PayloadType.VEHICLE_IDENTIFICATION_REQUEST_EID:
            return self._identification_response() if payload == self.car.eid else None
        if kind is PayloadType.VEHICLE_IDENTIFICATION_REQUEST_VIN:
            return self._identification_response() if payload == self.car.vin.encode() else None
        if kind is PayloadType.ENTITY_STATUS_REQUEST:
            return self._entity_status()
        if kind is PayloadType.POWER_MODE_REQUEST:
            return self._power_mode()
        _log.info("doip_udp_refused", nack="UNKNOWN_PAYLOAD_TYPE", payload_type=kind.name)
        return frames.generic_nack(GenericNackCode.UNKNOWN_PAYLOAD_TYPE)

    def _entity_status(self) -> bytes:
        return frames.entity_status_response(
            len(self._connections), self.config.max_sockets, self.config.max_data_size
        )

    def _power_mode(self) -> bytes:
        ready = self.car.preconditions.power_mode is PowerModeState.ON
        return frames.power_mode_response(PowerMode.READY if ready else PowerMode.NOT_READY)

    # TCP ------------------------------------------------------------------------------------
    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = next(self._ids)
        self._connections[conn] = writer
        connection = _Connection(self, conn, reader, writer)
        try:
            await connection.run()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            connection.close_sessions()
            self._connections.pop(conn, None)
            for tester in [t for t, c in self._testers.items() if c == conn]:
                del self._testers[tester]
            writer.transport.abort()


class _Connection:
    """One tester's TCP connection: header checks, routing activation, diagnostic routing.

    The connection holds the tester's UDS state on each ECU it talks to (ISO 13400-2: one
    active tester per socket), opened at its first request to that ECU and closed with the socket.
    """

    def __init__(
        self,
        entity: DoipEntity,
        conn: int,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        self.entity = entity
        self.conn = conn
        self.reader = reader
        self.writer = writer
        self.tester: int | None = None
        self.sessions: dict[int, TesterSession] = {}  # ECU address -> this tester's state there
        self.received = 0
        self.blocks = 0
        self.started = time.monotonic()

    async def run(self) -> None:
        faults = self.entity.car.services.faults
        max_size = self.entity.config.max_data_size
        while True:
            raw = await self.reader.readexactly(frames.HEADER_LENGTH)
            try:
                header = frames.parse_header(raw, max_size)
            except DoipHeaderError as error:
                _log.info("doip_refused", nack=error.code.name, reason=error.reason)
                self.writer.write(frames.generic_nack(error.code))
                await self.writer.drain()
                if error.close_socket:
                    return
                await self._discard(struct.unpack_from("!L", raw, 4)[0])
                continue
            payload = await self.reader.readexactly(header.payload_length)
            self.received += frames.HEADER_LENGTH + len(payload)
            await self._throttle()
            if faults.drop_after_bytes is not None and self.received >= faults.drop_after_bytes:
                _log.warning("link_drop_injected", after_bytes=self.received)
                faults.link_drop_fired()
                return
            if not await self._dispatch(header.payload_type, payload):
                return

    def close_sessions(self) -> None:
        """The socket closed: every session, unlock and transfer of this tester ends."""
        for address, session in self.sessions.items():
            ecu = self.entity.car.ecu(address)
            if ecu is not None:
                ecu.close_session(session)
        self.sessions.clear()

    async def _discard(self, length: int) -> None:
        while length > 0:
            chunk = await self.reader.readexactly(min(length, 1 << 16))
            length -= len(chunk)

    async def _throttle(self) -> None:
        rate = self.entity.car.services.faults.link_bytes_per_second
        if rate:
            due = self.started + self.received / rate
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)

    async def _send(self, frame: bytes) -> None:
        self.writer.write(frame)
        await self.writer.drain()

    async def _dispatch(self, kind: PayloadType, payload: bytes) -> bool:
        """Handle one message; False closes the socket."""
        if kind is PayloadType.ROUTING_ACTIVATION_REQUEST:
            return await self._activate(frames.parse_routing_activation(payload))
        if kind is PayloadType.DIAGNOSTIC_MESSAGE:
            return await self._diagnostic(frames.parse_diagnostic_message(payload))
        if kind is PayloadType.ALIVE_CHECK_REQUEST:
            await self._send(frames.alive_check_response(self.tester or 0))
        elif kind is PayloadType.ALIVE_CHECK_RESPONSE:
            pass
        elif kind is PayloadType.ENTITY_STATUS_REQUEST:
            await self._send(self.entity._entity_status())
        elif kind is PayloadType.POWER_MODE_REQUEST:
            await self._send(self.entity._power_mode())
        else:
            _log.info("doip_refused", nack="UNKNOWN_PAYLOAD_TYPE", payload_type=kind.name)
            await self._send(frames.generic_nack(GenericNackCode.UNKNOWN_PAYLOAD_TYPE))
        return True

    async def _activate(self, request: frames.RoutingActivationRequest) -> bool:
        entity, source = self.entity, request.source_address
        code = RoutingActivationCode.SUCCESS
        if source not in TESTER_ADDRESSES:
            code = RoutingActivationCode.UNKNOWN_SOURCE_ADDRESS
        elif request.activation_type not in ACTIVATION_TYPES:
            code = RoutingActivationCode.UNSUPPORTED_ACTIVATION_TYPE
        elif self.tester is not None and self.tester != source:
            code = RoutingActivationCode.DIFFERENT_SOURCE_ADDRESS
        elif entity._testers.get(source, self.conn) != self.conn:
            code = RoutingActivationCode.SOURCE_ADDRESS_ALREADY_ACTIVE
        elif len(entity._testers) >= entity.config.max_sockets and self.tester is None:
            code = RoutingActivationCode.ALL_SOCKETS_REGISTERED
        elif entity.car.services.faults.refuse_routing_activation:
            code = RoutingActivationCode.REJECTED_CONFIRMATION
        await self._send(frames.routing_activation_response(source, entity.logical_address, code))
        if code is not RoutingActivationCode.SUCCESS:
            _log.info("routing_activation_refused", tester=f"{source:04X}", code=code.name)
            return code in (
                RoutingActivationCode.REJECTED_CONFIRMATION,
                RoutingActivationCode.SOURCE_ADDRESS_ALREADY_ACTIVE,
            )
        self.tester = source
        entity._testers[source] = self.conn
        return True

    async def _diagnostic(self, message: frames.DiagnosticMessage) -> bool:
        source, target = message.source_address, message.target_address
        if self.tester is None or source != self.tester:
            _log.info("diagnostic_refused", reason="routing not active", tester=f"{source:04X}")
            await self._send(
                frames.diagnostic_nack(target, source, DiagnosticNackCode.INVALID_SOURCE_ADDRESS)
            )
            return False
        ecu = self.entity.car.ecu(target)
        if ecu is None:
            _log.info("diagnostic_refused", reason="unknown target", target=f"{target:04X}")
            await self._send(
                frames.diagnostic_nack(target, source, DiagnosticNackCode.UNKNOWN_TARGET_ADDRESS)
            )
            return True
        faults = self.entity.car.services.faults
        if message.user_data[0] == TRANSFER_DATA_SID:
            self.blocks += 1
            if faults.drop_after_blocks is not None and self.blocks > faults.drop_after_blocks:
                _log.warning("link_drop_injected", after_blocks=self.blocks - 1)
                faults.link_drop_fired()
                return False
        self.writer.write(frames.diagnostic_ack(target, source))

        async def respond(uds: bytes) -> None:
            await self._send(frames.diagnostic_message(target, source, uds))

        session = self.sessions.get(target)
        if session is None:
            session = self.sessions[target] = ecu.open_session(source)
        await ecu.handle(message.user_data, respond, session)
        return True
