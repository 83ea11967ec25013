"""One ECU as a UDS server (ISO 14229-1:2020): dispatch, session/security gating, services.

Session, 0x27/0x29 state and the file receiver belong to each tester, not to the ECU: every request
arrives with the :class:`~forecourt.vehicle.tester_session.TesterSession` of the connection and
tester address it came from (the DoIP entity opens one per connection and closes it on
disconnect), so one tester's authentication is never another's. What the ECU reads and changes
lives in the :class:`~forecourt.vehicle.car.Car` (one committed state for the whole car). Every
refusal is a :class:`NegativeResponse` raised by a handler, logged here once with its reason, and
sent as ``7F SID NRC``. Anything malformed gets an NRC, never an exception out of
:meth:`Ecu.handle`.
"""

from __future__ import annotations

import struct
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from forecourt.logging import get_logger
from forecourt.vehicle.dids import REPAIR_SHOP_CODE_MAX, Did, canonical_json
from forecourt.vehicle.revocation import CrlRefused
from forecourt.vehicle.seams import TesterAuthenticator
from forecourt.vehicle.tester_session import TesterSession
from forecourt.vehicle.transfer import FileReceiver
from forecourt.vehicle.uds.attempts import AttemptCounter
from forecourt.vehicle.uds.authentication import Authentication
from forecourt.vehicle.uds.nrc import (
    POSITIVE_RESPONSE_OFFSET,
    NegativeResponse,
    Nrc,
    negative_response,
    response_pending,
)
from forecourt.vehicle.uds.security_access import SecurityAccess
from forecourt.vehicle.uds.session import (
    P2_SERVER_MS,
    P2_STAR_SERVER_MS,
    Clock,
    DiagnosticSession,
    SessionState,
)

if TYPE_CHECKING:
    from forecourt.vehicle.car import Car

_log = get_logger("vehicle.ecu")

Respond = Callable[[bytes], Awaitable[None]]
Handler = Callable[[TesterSession, bytes, Respond], Awaitable[bytes | None]]

SUPPRESS_POSITIVE_RESPONSE = 0x80
TRANSFER_DATA = 0x36
ROUTINE_ACTIVATE = 0xFF00
ROUTINE_CHECK_PRECONDITIONS = 0xFF01
START_ROUTINE, STOP_ROUTINE, REQUEST_ROUTINE_RESULTS = 0x01, 0x02, 0x03
REPORT_DTC_BY_STATUS_MASK = 0x02
DTC_STATUS_AVAILABILITY_MASK = 0x09
_BAD_FORMAT = Nrc.INCORRECT_MESSAGE_LENGTH_OR_INVALID_FORMAT
# DIDs one 0x22 request may name (ISO 14229-1 lets the server set the maximum; more is NRC 0x13).
# FD00 and FD04 each commit state, so an unbounded list would be that many disk writes.
MAX_DIDS_PER_REQUEST = 8
# Readable only in the extended/programming session by an authenticated tester (0x29 or 0x27).
SECURED_DIDS = frozenset({Did.ACTIVATION_NONCE})


class Ecu:
    def __init__(
        self,
        car: Car,
        address: int,
        *,
        security_secret: bytes,
        authenticator: TesterAuthenticator,
        clock: Clock,
    ) -> None:
        self.car = car
        self.address = address
        self._secret = security_secret
        self._authenticator = authenticator
        self._clock = clock
        self._attempts: dict[tuple[int | None, int], AttemptCounter] = {}
        self._in_progress: set[str] = set()  # files some tester is writing, shared by receivers
        self._open: set[int] = set()  # id() of open tester sessions, for ECUReset
        self._sessions: dict[int, TesterSession] = {}
        self.local = self.open_session(None)
        """The in-process tester's session (bench, fuzzing); the network never reaches it."""
        self.receiver = self.local.receiver
        """Reads completed files (any receiver of this ECU sees the same directory)."""
        self._services: dict[int, Handler] = {
            0x10: self._session_control,
            0x11: self._ecu_reset,
            0x14: self._clear_dtcs,
            0x19: self._read_dtcs,
            0x22: self._read_data,
            0x27: self._security_access,
            0x29: self._authentication,
            0x2E: self._write_data,
            0x31: self._routine_control,
            0x34: self._request_download,
            0x36: self._transfer_data,
            0x37: self._transfer_exit,
            0x38: self._request_file_transfer,
            0x3E: self._tester_present,
        }

    # tester sessions ------------------------------------------------------------------------
    def _counter(self, tester: int | None, service: int) -> AttemptCounter:
        key = (tester, service)
        if key not in self._attempts:
            self._attempts[key] = AttemptCounter(self._clock)
        return self._attempts[key]

    def open_session(self, tester_address: int | None) -> TesterSession:
        """A fresh session for one tester connection: default session, nothing unlocked."""
        tester = TesterSession(
            tester_address=tester_address,
            session=SessionState(self._clock),
            security=SecurityAccess(self._secret, self._counter(tester_address, 0x27)),
            authentication=Authentication(
                self._authenticator,
                self._counter(tester_address, 0x29),
                context=lambda: self.car.authentication_context(self.address),
            ),
            receiver=FileReceiver(
                self.car.store.files_dir(self.address), self._in_progress, self.car.quota
            ),
        )
        self._sessions[id(tester)] = tester
        return tester

    def close_session(self, tester: TesterSession) -> None:
        """The tester's connection closed: its session, unlock and transfer end with it."""
        tester.reset()
        if tester is not self.local:
            self._sessions.pop(id(tester), None)
        _log.info("tester_session_closed", ecu=f"{self.address:04X}", tester=_hex(tester))

    async def handle(
        self,
        request: bytes | memoryview,
        respond: Respond,
        tester: TesterSession | None = None,
    ) -> None:
        """Serve one UDS request of ``tester`` (default: the in-process tester); always answers.

        TransferData gets a view of its block (no copy of up to 1 MiB); every other service gets
        its own bytes. An empty request has no SID to answer for: it gets ``7F 00 13``.
        """
        if not request:
            _log.info(
                "uds_refused",
                ecu=f"{self.address:04X}",
                sid="none",
                nrc=f"{_BAD_FORMAT:#04x}",
                reason="empty request",
            )
            await respond(negative_response(0x00, _BAD_FORMAT))
            return
        tester = tester if tester is not None else self.local
        sid = request[0]
        body = request[1:] if sid == TRANSFER_DATA else bytes(request[1:])
        if tester.touch():
            _log.info("s3_timeout", ecu=f"{self.address:04X}", tester=_hex(tester))
        handler = self._services.get(sid)
        try:
            if handler is None:
                raise NegativeResponse(Nrc.SERVICE_NOT_SUPPORTED, f"service {sid:#04x}")
            payload = await handler(tester, body, respond)  # type: ignore[arg-type]
        except NegativeResponse as refusal:
            _log.info(
                "uds_refused",
                ecu=f"{self.address:04X}",
                tester=_hex(tester),
                sid=f"{sid:#04x}",
                nrc=f"{refusal.nrc:#04x}",
                reason=refusal.reason,
            )
            await respond(negative_response(sid, refusal.nrc))
            return
        if payload is not None:
            await respond(bytes([sid + POSITIVE_RESPONSE_OFFSET]) + payload)

    # gating -------------------------------------------------------------------------------
    @staticmethod
    def _require_session(tester: TesterSession) -> None:
        if tester.session.session is DiagnosticSession.DEFAULT:
            raise NegativeResponse(
                Nrc.SERVICE_NOT_SUPPORTED_IN_ACTIVE_SESSION, "needs extended or programming"
            )

    @staticmethod
    def _require_unlocked(tester: TesterSession) -> None:
        if not tester.unlocked:
            raise NegativeResponse(Nrc.SECURITY_ACCESS_DENIED, "not authenticated")

    @staticmethod
    def _subfunction(data: bytes, length: int | None = None) -> tuple[int, bool]:
        if not data or (length is not None and len(data) != length):
            raise NegativeResponse(_BAD_FORMAT, "length")
        return data[0] & 0x7F, bool(data[0] & SUPPRESS_POSITIVE_RESPONSE)

    # 0x10 / 0x3E / 0x11 ---------------------------------------------------------------------
    async def _session_control(
        self, tester: TesterSession, data: bytes, respond: Respond
    ) -> bytes | None:
        sub, suppress = self._subfunction(data, 1)
        try:
            session = DiagnosticSession(sub)
        except ValueError:
            raise NegativeResponse(Nrc.SUBFUNCTION_NOT_SUPPORTED, f"session {sub:#x}") from None
        tester.session.change(session)
        tester.security.drop()
        tester.receiver.abort()
        timing = struct.pack(">HH", P2_SERVER_MS, P2_STAR_SERVER_MS // 10)
        return None if suppress else bytes([sub]) + timing

    async def _tester_present(
        self, tester: TesterSession, data: bytes, respond: Respond
    ) -> bytes | None:
        sub, suppress = self._subfunction(data, 1)
        if sub != 0x00:
            raise NegativeResponse(Nrc.SUBFUNCTION_NOT_SUPPORTED, f"zeroSubFunction {sub:#x}")
        return None if suppress else b"\x00"

    async def _ecu_reset(
        self, tester: TesterSession, data: bytes, respond: Respond
    ) -> bytes | None:
        sub, suppress = self._subfunction(data, 1)
        if sub not in (0x01, 0x02, 0x03):
            raise NegativeResponse(Nrc.SUBFUNCTION_NOT_SUPPORTED, f"reset type {sub:#x}")
        if not suppress:
            await respond(bytes([0x51, sub]))
        for open_tester in list(self._sessions.values()):
            open_tester.reset()  # a reset ECU restarts in the default session for every tester
        _log.info("ecu_reset", ecu=f"{self.address:04X}", reset_type=sub)
        return None

    # 0x22 / 0x2E ----------------------------------------------------------------------------
    async def _read_data(
        self, tester: TesterSession, data: bytes, respond: Respond
    ) -> bytes | None:
        """ReadDataByIdentifier, NRC order of ISO 14229-1:2020 §10.2.5 (figure 20).

        Every requested DID is looked up before any is read, because reading FD00 (nonce) or
        FD04 (report counter) changes state: a refused request must change nothing. Unsupported
        DIDs (and FD00 in the default session) are left out of the positive response; only when
        none is supported is the request refused with 0x31. A secured DID (FD00) read by a
        tester that has not authenticated is 0x33, so only an authenticated dealer can draw
        nonces: an anonymous tester on the network cannot push the edge's nonce out.
        """
        if not data or len(data) % 2 or len(data) // 2 > MAX_DIDS_PER_REQUEST:
            raise NegativeResponse(_BAD_FORMAT, "DID list length")
        requested = [did for (did,) in struct.iter_unpack(">H", data)]
        in_session = tester.session.session is not DiagnosticSession.DEFAULT
        readers = [
            (did, reader)
            for did in requested
            if (reader := self._did_reader(did)) and (in_session or did not in SECURED_DIDS)
        ]
        if not readers:
            listed = " ".join(f"{did:04X}" for did in requested)
            raise NegativeResponse(Nrc.REQUEST_OUT_OF_RANGE, f"no supported DID in {listed}")
        if not tester.unlocked and any(did in SECURED_DIDS for did, _ in readers):
            raise NegativeResponse(Nrc.SECURITY_ACCESS_DENIED, "FD00 needs an authenticated tester")
        out = bytearray()
        for did, reader in readers:
            out += struct.pack(">H", did) + reader()
        return bytes(out)

    def _did_reader(self, did: int) -> Callable[[], bytes] | None:
        """How this ECU reads ``did`` (nothing is read yet), or ``None`` if not supported here."""
        car, ecu = self.car, self.car.state.ecus[self.address]
        is_gateway = self.address == car.gateway_address
        simple: dict[int, str] = {
            Did.VIN: car.state.vin,
            Did.ECU_SERIAL_NUMBER: ecu.serial_number,
            Did.ECU_HARDWARE_NUMBER: ecu.hardware_number,
            Did.ECU_SOFTWARE_VERSION: ecu.software_version,
            Did.SUPPLIER_SOFTWARE_VERSION: ecu.supplier_software_version,
            Did.SPARE_PART_NUMBER: ecu.spare_part_number,
            Did.REPAIR_SHOP_CODE: ecu.repair_shop_code,
        }
        if did in simple:
            text = simple[did]
            return lambda: text.encode("ascii")
        scope = None if is_gateway else self.address
        readers: dict[int, Callable[[], bytes]] = {
            Did.ACTIVATION_COUNTER: lambda: struct.pack(">I", car.state.activation_counter),
            Did.FEATURE_STATUS: lambda: canonical_json(car.feature_status(scope)),
            Did.ECU_IDENTITY: lambda: canonical_json(
                {
                    "address": f"{self.address:04X}",
                    "serial": ecu.serial_number,
                    "signing_public_key_pem": ecu.signing_public_key_pem,
                    "sealing_public_key": ecu.sealing_public_key,
                    "certificate_pem": ecu.certificate_pem,
                }
            ),
            Did.VERSION_REPORT: lambda: car.version_report(self.address),
            Did.VEHICLE_STATUS: lambda: car.status_summary(scope),
            Did.PRECONDITIONS: car.preconditions.encode,
        }
        if is_gateway:
            readers[Did.ACTIVATION_NONCE] = car.issue_nonce
        return readers.get(did)

    async def _write_data(
        self, tester: TesterSession, data: bytes, respond: Respond
    ) -> bytes | None:
        if len(data) < 3:
            raise NegativeResponse(_BAD_FORMAT, "WriteDataByIdentifier length")
        (did,) = struct.unpack_from(">H", data)
        if did == Did.CERTIFICATE_REVOCATION_LIST and self.address == self.car.gateway_address:
            return self._write_crl(tester, data)
        if did != Did.REPAIR_SHOP_CODE:
            raise NegativeResponse(Nrc.REQUEST_OUT_OF_RANGE, f"DID {did:#06x} not writable")
        self._require_unlocked(tester)
        value = data[2:]
        if len(value) > REPAIR_SHOP_CODE_MAX or not value.isascii():
            raise NegativeResponse(Nrc.REQUEST_OUT_OF_RANGE, "repair shop code format")
        self.car.write_repair_shop_code(self.address, value.decode("ascii"))
        return data[:2]

    def _write_crl(self, tester: TesterSession, data: bytes) -> bytes:
        """FD07: the issuing CA's CRL, from an authenticated tester in the extended session.

        The CRL's own signature decides (``Car.store_crl``); authentication only keeps anonymous
        testers from making the car parse and verify arbitrary lists.
        """
        self._require_session(tester)
        self._require_unlocked(tester)
        try:
            self.car.store_crl(data[2:])
        except CrlRefused as refusal:
            raise NegativeResponse(refusal.nrc, refusal.reason) from refusal
        return data[:2]

    # 0x27 / 0x29 ----------------------------------------------------------------------------
    async def _security_access(
        self, tester: TesterSession, data: bytes, respond: Respond
    ) -> bytes | None:
        sub, _ = self._subfunction(data)
        self._require_session(tester)
        if sub % 2:
            seed = tester.security.request_seed(sub, tester.session.security_level)
            return bytes([sub]) + seed
        tester.security.send_key(sub - 1, data[1:])
        tester.session.security_level = sub - 1
        _log.info(
            "security_access_granted", ecu=f"{self.address:04X}", tester=_hex(tester), level=sub - 1
        )
        return bytes([sub])

    async def _authentication(
        self, tester: TesterSession, data: bytes, respond: Respond
    ) -> bytes | None:
        sub, _ = self._subfunction(data)
        payload, identity = tester.authentication.handle(sub, data[1:])
        if sub == 0x00:
            tester.session.authenticated_role = None
        if identity is not None:
            tester.session.authenticated_role = identity.role
            _log.info(
                "tester_authenticated",
                ecu=f"{self.address:04X}",
                tester=_hex(tester),
                subject=identity.subject,
                role=identity.role,
            )
        return bytes([sub]) + payload

    # 0x34 / 0x36 / 0x37 / 0x38 --------------------------------------------------------------
    async def _request_download(
        self, tester: TesterSession, data: bytes, respond: Respond
    ) -> bytes | None:
        self._require_session(tester)
        self._require_unlocked(tester)
        return tester.receiver.request_download(data)

    async def _request_file_transfer(
        self, tester: TesterSession, data: bytes, respond: Respond
    ) -> bytes | None:
        self._require_session(tester)
        self._require_unlocked(tester)
        return tester.receiver.request_file_transfer(data)

    async def _transfer_data(
        self, tester: TesterSession, data: bytes, respond: Respond
    ) -> bytes | None:
        self._require_unlocked(tester)
        return tester.receiver.transfer_data(data)

    async def _transfer_exit(
        self, tester: TesterSession, data: bytes, respond: Respond
    ) -> bytes | None:
        self._require_unlocked(tester)
        digest, received = tester.receiver.transfer_exit()
        _log.info(
            "file_received",
            ecu=f"{self.address:04X}",
            name=received.name,
            length=received.length,
            sha256=received.sha256,
        )
        return digest

    # 0x31 -----------------------------------------------------------------------------------
    async def _routine_control(
        self, tester: TesterSession, data: bytes, respond: Respond
    ) -> bytes | None:
        if len(data) < 3:
            raise NegativeResponse(_BAD_FORMAT, "RoutineControl length")
        control = data[0] & 0x7F
        (routine,) = struct.unpack_from(">H", data, 1)
        option = data[3:]
        if control not in (START_ROUTINE, STOP_ROUTINE, REQUEST_ROUTINE_RESULTS):
            raise NegativeResponse(Nrc.SUBFUNCTION_NOT_SUPPORTED, f"routine control {control}")
        echo = data[:3]
        if routine == ROUTINE_CHECK_PRECONDITIONS:
            if control != START_ROUTINE:
                raise NegativeResponse(Nrc.SUBFUNCTION_NOT_SUPPORTED, "FF01 only starts")
            return echo + bytes([self.car.preconditions.failures()])
        if routine != ROUTINE_ACTIVATE or self.address != self.car.gateway_address:
            raise NegativeResponse(Nrc.REQUEST_OUT_OF_RANGE, f"routine {routine:#06x}")
        self._require_session(tester)
        self._require_unlocked(tester)
        if control == REQUEST_ROUTINE_RESULTS:
            return echo + self.car.routine_results()
        if control == STOP_ROUTINE:
            raise NegativeResponse(Nrc.REQUEST_SEQUENCE_ERROR, "apply cannot be stopped")
        name = option.decode("ascii", "replace") if option else "bundle"
        await respond(response_pending(0x31))
        counter = self.car.activate_from_file(self.address, name)
        return echo + b"\x00" + struct.pack(">I", counter)

    # 0x19 / 0x14 ----------------------------------------------------------------------------
    async def _read_dtcs(
        self, tester: TesterSession, data: bytes, respond: Respond
    ) -> bytes | None:
        sub, _ = self._subfunction(data)
        if sub != REPORT_DTC_BY_STATUS_MASK:
            raise NegativeResponse(Nrc.SUBFUNCTION_NOT_SUPPORTED, f"reportType {sub:#x}")
        if len(data) != 2:
            raise NegativeResponse(_BAD_FORMAT, "reportDTCByStatusMask length")
        mask = data[1]
        out = bytearray([sub, DTC_STATUS_AVAILABILITY_MASK])
        for dtc in self.car.state.dtcs:
            if dtc.ecu_address == self.address and dtc.status & mask:
                out += dtc.code.to_bytes(3, "big") + bytes([dtc.status])
        return bytes(out)

    async def _clear_dtcs(
        self, tester: TesterSession, data: bytes, respond: Respond
    ) -> bytes | None:
        if len(data) != 3:
            raise NegativeResponse(_BAD_FORMAT, "groupOfDTC length")
        self._require_unlocked(tester)
        group = int.from_bytes(data, "big")
        if group != 0xFFFFFF:
            raise NegativeResponse(Nrc.REQUEST_OUT_OF_RANGE, f"DTC group {group:#08x}")
        self.car.clear_dtcs(self.address)
        return b""


def _hex(tester: TesterSession) -> str:
    address = tester.tester_address
    return "local" if address is None else f"{address:04X}"
