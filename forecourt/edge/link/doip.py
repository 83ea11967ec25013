""":class:`DoipVehicleLink`: the edge's :class:`~forecourt.edge.link.protocol.VehicleLink` over
DoIP (ISO 13400-2) and UDS (ISO 14229-1), built on doipclient and udsoncan.

One TCP connection per car (one tester address, routing activated once), and one udsoncan
client per target ECU over it (:class:`~forecourt.edge.link.transport.EcuChannel`). Timing follows
docs VEHICLE-LINK-NOTES.md: the ECU's own P2 (tens of ms) is not adopted (``use_server_timing``
off), P2 is 2 s and P2* 30 s so an apply answering NRC 0x78 has time to finish.

Transfers use RequestFileTransfer: ResumeFile first (the ECU answers the position it has
confirmed), ReplaceFile when there is nothing to resume; TransferData in the largest block the ECU
and the DoIP entity allow; RequestTransferExit, whose SHA-256 must match ours. A cut closes the
connection; the link reconnects, re-authenticates with the credentials it was given, and resumes
from the ECU-confirmed position, at most ``max_resumes`` times, then raises
:class:`TransferInterrupted` carrying that position.

Not thread-safe: one link per car per thread (the bench drives ten cars from ten threads).
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, cast

import udsoncan
from doipclient.messages import RoutingActivationRequest
from udsoncan import DataFormatIdentifier
from udsoncan import services as _services
from udsoncan.client import Client
from udsoncan.exceptions import (
    InvalidResponseException,
    NegativeResponseException,
    TimeoutException,
    UnexpectedResponseException,
)

from forecourt.edge.link.errors import (
    ApplyRefused,
    DiagnosticMessageRefused,
    EcuNegativeResponse,
    EcuTimeout,
    LinkNotBound,
    RoutingActivationRefused,
    TransferInterrupted,
    TransferVerificationFailed,
    UnexpectedResponse,
    VehicleNotFound,
    VehicleUnreachable,
)
from forecourt.edge.link.model import (
    GATEWAY,
    KNOWN_ECUS,
    ROUTINE_ACTIVATE,
    ApplyOutcome,
    Did,
    DiscoveredVehicle,
    Dtc,
    EcuIdentity,
    ResetType,
    TransferReceipt,
    VehicleIdentity,
    VehicleStatus,
    VersionReport,
    decode_ascii,
    decode_counter,
    decode_feature_status,
    decode_identity_keys,
    decode_preconditions,
    decode_routine_results,
)
from forecourt.edge.link.protocol import AuthenticationResult, DealerCredentials, Progress
from forecourt.edge.link.transport import EcuChannel, FastDoIPClient, identify
from forecourt.logging import get_logger

_log = get_logger("edge.link")

BROADCAST = ("255.255.255.255",)
services: Any = _services  # udsoncan re-exports its services without __all__
EXTENDED_SESSION = services.DiagnosticSessionControl.Session.extendedDiagnosticSession
_MOOP = services.RequestFileTransfer.ModeOfOperation
_AUTH = services.Authentication.AuthenticationTask
OWNERSHIP_VERIFICATION_NECESSARY = 0x11  # authenticationReturnParameter, ISO 14229-1 table 74
AUTHENTICATION_COMPLETE = 0x12
NRC_REQUEST_OUT_OF_RANGE = 0x31
NRC_SERVICE_NOT_SUPPORTED = 0x11
NRC_SERVICE_NOT_SUPPORTED_IN_SESSION = 0x7F
DOIP_ADDRESSES = 4  # source + target logical address ahead of the UDS data in 0x8001
TRANSFER_DATA_HEADER = 2  # SID + blockSequenceCounter, counted in maxNumberOfBlockLength


class _Raw(udsoncan.DidCodec):
    """Every DID is read as its remaining bytes; :mod:`forecourt.edge.link.model` decodes them."""

    def encode(self, value: bytes) -> bytes:
        return value

    def decode(self, payload: bytes) -> bytes:
        return bytes(payload)

    def __len__(self) -> int:
        raise udsoncan.DidCodec.ReadAllRemainingData


@dataclass(frozen=True)
class LinkConfig:
    tester_address: int = 0x0E80  # ISO 13400-2 table 13: external test equipment 0x0E00-0x0FFF
    ecu_addresses: tuple[int, ...] = KNOWN_ECUS
    discovery_timeout: float = 1.0
    p2_timeout: float = 2.0
    p2_star_timeout: float = 30.0
    request_timeout: float = 120.0
    max_block_data: int | None = None  # cap below what the ECU allows (None: the ECU's maximum)
    max_resumes: int = 3

    def uds_config(self) -> dict[str, Any]:
        config = dict(udsoncan.configs.default_client_config)
        config.update(
            use_server_timing=False,
            p2_timeout=self.p2_timeout,
            p2_star_timeout=self.p2_star_timeout,
            request_timeout=self.request_timeout,
            data_identifiers={int(did): _Raw() for did in Did},
            standard_version=2020,
        )
        return config


class _Source:
    """Bytes or a file, read block by block; the digest is computed before anything is sent."""

    def __init__(self, source: bytes | Path) -> None:
        self._path = source if isinstance(source, Path) else None
        self._data = memoryview(source) if isinstance(source, bytes | bytearray) else None
        if self._path is not None:
            with self._path.open("rb") as handle:
                self.sha256 = hashlib.file_digest(handle, "sha256").hexdigest()
            self.size = self._path.stat().st_size
        else:
            assert self._data is not None
            self.sha256 = hashlib.sha256(self._data).hexdigest()
            self.size = len(self._data)

    @contextmanager
    def reader(self) -> Iterator[Callable[[int, int], bytes]]:
        handle: BinaryIO = self._path.open("rb") if self._path else io.BytesIO()
        try:

            def read(position: int, length: int) -> bytes:
                if self._data is not None:
                    return bytes(self._data[position : position + length])
                handle.seek(position)
                return handle.read(length)

            yield read
        finally:
            handle.close()


class DoipVehicleLink:
    """A :class:`~forecourt.edge.link.protocol.VehicleLink` to one car over DoIP + UDS."""

    def __init__(self, config: LinkConfig | None = None) -> None:
        self.config = config or LinkConfig()
        self.vehicle: DiscoveredVehicle | None = None
        self._doip: FastDoIPClient | None = None
        self._max_data_size: int | None = None
        self._clients: dict[int, Client] = {}
        self._credentials: dict[int, DealerCredentials] = {}

    def __enter__(self) -> DoipVehicleLink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # discovery and connection -----------------------------------------------------------------
    def discover(
        self, *, vin: str | None = None, addresses: Sequence[str] = ()
    ) -> DiscoveredVehicle:
        targets = tuple(addresses) or BROADCAST
        timeout = self.config.discovery_timeout
        try:
            address, response = identify(targets, vin=vin, timeout=timeout)
        except (TimeoutError, OSError):
            _log.info("vehicle_not_found", vin=vin, addresses=list(targets))
            raise VehicleNotFound(vin=vin, addresses=targets, timeout=timeout) from None
        self.close()
        self.vehicle = DiscoveredVehicle(
            vin=response.vin,
            address=address,
            logical_address=int(response.logical_address),
            eid=bytes(response.eid),
            gid=bytes(response.gid),
            further_action_required=int(response.further_action_required),
        )
        _log.info("vehicle_discovered", vin=self.vehicle.vin, address=address)
        return self.vehicle

    def _bound(self) -> DiscoveredVehicle:
        if self.vehicle is None:
            raise LinkNotBound("discover a vehicle first")
        return self.vehicle

    def _connection(self) -> FastDoIPClient:
        if self._doip is not None:
            return self._doip
        vehicle = self._bound()
        tester = self.config.tester_address
        try:
            doip = FastDoIPClient(  # type: ignore[no-untyped-call]
                vehicle.address,
                vehicle.logical_address,
                client_logical_address=tester,
                activation_type=RoutingActivationRequest.ActivationType.Default,
            )
        except ConnectionRefusedError as error:
            if error.errno is None:  # doipclient's refusal of routing activation
                _log.warning("routing_activation_refused", vin=vehicle.vin, detail=str(error))
                raise RoutingActivationRefused(vehicle.address, tester, str(error)) from None
            raise VehicleUnreachable(vehicle.address, str(error)) from None
        except OSError as error:
            raise VehicleUnreachable(vehicle.address, str(error)) from None
        self._doip = doip
        try:
            status: Any = doip.request_entity_status()  # type: ignore[no-untyped-call]
            self._max_data_size = int(status.max_data_size)
        except (OSError, AttributeError, TypeError):
            self._max_data_size = None  # entity status is optional: the ECU's block limit rules
        return doip

    def _client(self, ecu: int) -> Client:
        client = self._clients.get(ecu)
        if client is None:
            channel = EcuChannel(self._connection(), ecu).open()
            client = Client(channel, config=cast(Any, self.config.uds_config()))
            self._clients[ecu] = client
        return client

    def _disconnect(self) -> None:
        self._clients.clear()
        if self._doip is not None:
            doip, self._doip = self._doip, None
            with suppress(OSError):
                doip.close()  # type: ignore[no-untyped-call]

    def close(self) -> None:
        self._disconnect()
        self._credentials.clear()

    def _call(
        self, ecu: int, service: int, action: Callable[[Client], Any], *, expected_nrc: int = -1
    ) -> Any:
        """Run one UDS exchange; translate every failure into the link's typed errors.

        Refusals are logged as warnings, except ``expected_nrc`` (a probe's normal answer)."""
        client = self._client(ecu)
        vehicle = self._bound()
        try:
            return action(client)
        except NegativeResponseException as error:
            response = error.response
            code = int(response.code or 0)
            refusal = EcuNegativeResponse(ecu, service, code, str(response.code_name), response)
            log = _log.info if refusal.nrc == expected_nrc else _log.warning
            log(
                "ecu_refused",
                vin=vehicle.vin,
                ecu=f"{ecu:04X}",
                service=f"{service:#04x}",
                nrc=f"{refusal.nrc:#04x}",
                nrc_name=refusal.nrc_name,
            )
            raise refusal from None
        except DiagnosticMessageRefused as refusal:
            _log.warning(
                "diagnostic_message_refused",
                vin=vehicle.vin,
                ecu=f"{ecu:04X}",
                nack=f"{refusal.nack_code:#04x}",
            )
            raise
        except TimeoutException as error:
            raise EcuTimeout(ecu, service, str(error)) from None
        except (InvalidResponseException, UnexpectedResponseException) as error:
            raise UnexpectedResponse(ecu, service, str(error)) from None
        except OSError as error:  # connection lost, no DoIP acknowledgement
            self._disconnect()
            _log.warning("vehicle_link_lost", vin=vehicle.vin, ecu=f"{ecu:04X}", error=str(error))
            raise VehicleUnreachable(vehicle.address, str(error) or type(error).__name__) from None

    def _read(self, ecu: int, did: Did) -> bytes:
        value = self._call(ecu, 0x22, lambda c: c.read_data_by_identifier_first(int(did)))
        if not isinstance(value, bytes):
            raise UnexpectedResponse(ecu, 0x22, f"DID {did:#06x} missing from the response")
        return value

    # identity ---------------------------------------------------------------------------------
    def read_identity(self) -> VehicleIdentity:
        """Identification; the nonce (FD00) only once the gateway is authenticated, else ``b""``.

        The car gives nonces to authenticated testers only (so an anonymous tester cannot push
        the edge's nonce out): authenticate the gateway first, then identify.
        """
        vin = decode_ascii(Did.VIN, self._read(GATEWAY, Did.VIN), GATEWAY)
        ecus = []
        for address in self.config.ecu_addresses:
            try:
                serial = self._read(address, Did.ECU_SERIAL_NUMBER)
            except DiagnosticMessageRefused as refusal:
                if refusal.nack_code == DiagnosticMessageRefused.UNKNOWN_TARGET_ADDRESS:
                    continue  # not fitted in this car
                raise
            ecus.append(self._ecu_identity(address, serial))
        return VehicleIdentity(
            vin=vin,
            ecus=tuple(ecus),
            activation_nonce=self.read_nonce() if GATEWAY in self._credentials else b"",
            activation_counter=decode_counter(self._read(GATEWAY, Did.ACTIVATION_COUNTER), GATEWAY),
            feature_status=decode_feature_status(self._read(GATEWAY, Did.FEATURE_STATUS), GATEWAY),
            preconditions=decode_preconditions(self._read(GATEWAY, Did.PRECONDITIONS), GATEWAY),
        )

    def read_nonce(self) -> bytes:
        """A fresh activation nonce (FD00); the gateway must be authenticated (NRC 0x33 else)."""
        return self._read(GATEWAY, Did.ACTIVATION_NONCE)

    def _ecu_identity(self, address: int, serial: bytes) -> EcuIdentity:
        def text(did: Did) -> str:
            return decode_ascii(did, self._read(address, did), address)

        signing, sealing, certificate = decode_identity_keys(
            self._read(address, Did.ECU_IDENTITY), address
        )
        return EcuIdentity(
            address=address,
            serial_number=decode_ascii(Did.ECU_SERIAL_NUMBER, serial, address),
            hardware_number=text(Did.ECU_HARDWARE_NUMBER),
            software_version=text(Did.ECU_SOFTWARE_VERSION),
            supplier_software_version=text(Did.SUPPLIER_SOFTWARE_VERSION),
            spare_part_number=text(Did.SPARE_PART_NUMBER),
            signing_public_key_pem=signing,
            sealing_public_key=sealing,
            certificate_pem=certificate,
        )

    # authentication ---------------------------------------------------------------------------
    def authenticate(self, ecu: int, credentials: DealerCredentials) -> AuthenticationResult:
        self._call(ecu, 0x10, lambda c: c.change_session(EXTENDED_SESSION))
        try:
            self._authenticate_certificate(ecu, credentials)
            method = "certificate"
        except EcuNegativeResponse as refusal:
            unavailable = refusal.nrc in (
                NRC_SERVICE_NOT_SUPPORTED,
                NRC_SERVICE_NOT_SUPPORTED_IN_SESSION,
            )
            if refusal.service != 0x29 or not unavailable or credentials.seed_key is None:
                raise
            self._security_access(ecu, credentials)
            method = "seed_key"
        self._credentials[ecu] = credentials
        _log.info("tester_authenticated", vin=self._bound().vin, ecu=f"{ecu:04X}", method=method)
        return AuthenticationResult(ecu, method)

    def _authenticate_certificate(self, ecu: int, credentials: DealerCredentials) -> None:
        """0x29 verifyCertificateUnidirectional, then proofOfOwnership over the ECU challenge."""
        first = self._call(
            ecu,
            0x29,
            lambda c: c.authentication(
                _AUTH.verifyCertificateUnidirectional,
                communication_configuration=0,
                certificate_client=credentials.certificate,
                challenge_client=b"",
            ),
        )
        data = first.service_data
        if data.return_value != OWNERSHIP_VERIFICATION_NECESSARY:
            raise UnexpectedResponse(ecu, 0x29, f"return parameter {data.return_value:#04x}")
        serial = decode_ascii(Did.ECU_SERIAL_NUMBER, self._read(ecu, Did.ECU_SERIAL_NUMBER), ecu)
        proof = credentials.prove_ownership(bytes(data.challenge_server), self._bound().vin, serial)
        second = self._call(
            ecu,
            0x29,
            lambda c: c.authentication(
                _AUTH.proofOfOwnership,
                proof_of_ownership_client=proof,
                ephemeral_public_key_client=b"",
            ),
        )
        if second.service_data.return_value != AUTHENTICATION_COMPLETE:
            raise UnexpectedResponse(ecu, 0x29, "authentication not complete")

    def _security_access(self, ecu: int, credentials: DealerCredentials) -> None:
        seed_key = credentials.seed_key
        assert seed_key is not None

        def algorithm(level: int, seed: bytes, params: object = None) -> bytes:
            return seed_key(ecu, level, bytes(seed))

        def unlock(client: Client) -> object:
            client.config["security_algo"] = algorithm
            try:
                return client.unlock_security_access(credentials.security_level)
            finally:
                client.config["security_algo"] = None

        self._call(ecu, 0x27, unlock)

    def _reauthenticate(self, ecu: int) -> None:
        credentials = self._credentials.get(ecu)
        if credentials is not None:
            self.authenticate(ecu, credentials)

    # transfer ---------------------------------------------------------------------------------
    def transfer(
        self, ecu: int, name: str, source: bytes | Path, progress: Progress | None = None
    ) -> TransferReceipt:
        vehicle = self._bound()
        data = _Source(source)
        sent = 0
        resumed: list[int] = []
        position = 0
        block_size = 0
        cuts = 0
        held = False
        with data.reader() as read:
            while True:
                try:
                    if cuts:
                        self._reauthenticate(ecu)
                    position, block_size = self._open_file(ecu, name, data.size)
                    held = position == data.size and self._holds(ecu, name, data.sha256)
                    if position == data.size and not held:
                        position, block_size = self._open_file(ecu, name, data.size, resume=False)
                    if cuts:
                        resumed.append(position)
                    counter = 1
                    while position < data.size:
                        block = read(position, block_size)
                        sent += len(block)
                        self._transfer_block(ecu, counter, block)
                        position += len(block)
                        counter = (counter + 1) & 0xFF
                        if progress is not None:
                            progress(position, data.size)
                    if held:
                        exit_response = None  # _holds ended it with the digest checked
                    else:
                        exit_response = self._call(ecu, 0x37, lambda c: c.request_transfer_exit())
                    break
                except VehicleUnreachable as cut:
                    cuts += 1
                    _log.warning(
                        "transfer_cut",
                        vin=vehicle.vin,
                        ecu=f"{ecu:04X}",
                        file=name,
                        position=position,
                        size=data.size,
                        attempt=cuts,
                    )
                    if cuts > self.config.max_resumes:
                        raise TransferInterrupted(
                            vehicle.address, ecu, name, position, data.size
                        ) from cut
        reported = (
            bytes(exit_response.service_data.parameter_records or b"").hex()
            if exit_response is not None
            else data.sha256
        )
        if reported and reported != data.sha256:
            raise TransferVerificationFailed(ecu, name, data.sha256, reported)
        _log.info(
            "file_transferred",
            vin=vehicle.vin,
            ecu=f"{ecu:04X}",
            file=name,
            size=data.size,
            bytes_sent=sent,
            resumed_from=resumed,
        )
        return TransferReceipt(ecu, name, data.size, data.sha256, sent, block_size, tuple(resumed))

    def _holds(self, ecu: int, name: str, sha256: str) -> bool:
        """After ResumeFile answered filePosition = fileSize (the ECU has the whole file):
        RequestTransferExit reports its SHA-256; only the same digest means it is this file
        (a file of the same name and size from an earlier activation is sent again)."""
        response = self._call(ecu, 0x37, lambda c: c.request_transfer_exit())
        reported = bytes(response.service_data.parameter_records or b"").hex()
        if reported == sha256:
            _log.info("file_already_received", vin=self._bound().vin, ecu=f"{ecu:04X}", file=name)
            return True
        _log.info("file_received_differs", vin=self._bound().vin, ecu=f"{ecu:04X}", file=name)
        return False

    def _open_file(self, ecu: int, name: str, size: int, *, resume: bool = True) -> tuple[int, int]:
        """ResumeFile, else ReplaceFile; returns (ECU-confirmed position, data bytes per block)."""
        dfi = DataFormatIdentifier(compression=0, encryption=0)
        if not resume:
            response = self._call(
                ecu,
                0x38,
                lambda c: c.request_file_transfer(_MOOP.ReplaceFile, name, dfi=dfi, filesize=size),
            )
            return 0, self._block_size(ecu, int(response.service_data.max_length))
        try:
            response = self._call(
                ecu,
                0x38,
                lambda c: c.request_file_transfer(_MOOP.ResumeFile, name, dfi=dfi, filesize=size),
                expected_nrc=NRC_REQUEST_OUT_OF_RANGE,  # nothing to resume
            )
            position = int(response.service_data.fileposition or 0)
        except EcuNegativeResponse as refusal:
            if refusal.nrc != NRC_REQUEST_OUT_OF_RANGE:
                raise
            response = self._call(
                ecu,
                0x38,
                lambda c: c.request_file_transfer(_MOOP.ReplaceFile, name, dfi=dfi, filesize=size),
            )
            position = 0
        if position > size:
            raise UnexpectedResponse(ecu, 0x38, f"resume position {position} beyond {size}")
        return position, self._block_size(ecu, int(response.service_data.max_length))

    def _block_size(self, ecu: int, max_number_of_block_length: int) -> int:
        """Data per TransferData: the ECU's maxNumberOfBlockLength minus SID and counter, within
        the entity's max_data_size (a larger message is refused with a generic DoIP NACK)."""
        limits = [max_number_of_block_length - TRANSFER_DATA_HEADER]
        if self._max_data_size:
            limits.append(self._max_data_size - DOIP_ADDRESSES - TRANSFER_DATA_HEADER)
        if self.config.max_block_data:
            limits.append(self.config.max_block_data)
        size = min(limits)
        if size < 1:
            detail = f"maxNumberOfBlockLength {max_number_of_block_length}"
            raise UnexpectedResponse(ecu, 0x38, detail)
        return size

    def _transfer_block(self, ecu: int, counter: int, block: bytes) -> None:
        """TransferData without ``Client.transfer_data``, which hex-dumps the block eagerly."""

        def send(client: Client) -> None:
            request = services.TransferData.make_request(counter, block)
            response = client.send_request(request)
            if response is None:
                raise UnexpectedResponse(ecu, 0x36, "no response to TransferData")
            echoed = services.TransferData.interpret_response(response).service_data
            if echoed.sequence_number_echo != counter:
                raise UnexpectedResponseException(response, "block sequence counter echo")

        self._call(ecu, 0x36, send)

    # apply, report, reset, DTCs ---------------------------------------------------------------
    def apply(self, ecu: int = GATEWAY, bundle_name: str = "bundle") -> ApplyOutcome:
        option = bundle_name.encode("ascii")
        try:
            started = self._call(ecu, 0x31, lambda c: c.start_routine(ROUTINE_ACTIVATE, option))
        except EcuNegativeResponse as refusal:
            results = self._routine_results(ecu, quiet=True)
            raise ApplyRefused(refusal, results) from None
        record = bytes(started.service_data.routine_status_record or b"")
        if len(record) != 5 or record[0] != 0:
            raise UnexpectedResponse(ecu, 0x31, f"FF00 status record {record.hex()}")
        outcome = ApplyOutcome(int.from_bytes(record[1:], "big"), self._routine_results(ecu))
        _log.info(
            "activation_applied",
            vin=self._bound().vin,
            counter=outcome.activation_counter,
            ecus={f"{a:04X}": r for a, r in outcome.ecu_results.items()},
        )
        return outcome

    def _routine_results(self, ecu: int, *, quiet: bool = False) -> dict[int, int]:
        try:
            response = self._call(ecu, 0x31, lambda c: c.get_routine_result(ROUTINE_ACTIVATE))
        except (EcuNegativeResponse, EcuTimeout, UnexpectedResponse):
            if quiet:
                return {}
            raise
        record = bytes(response.service_data.routine_status_record or b"")
        return decode_routine_results(record, ecu)

    def read_report(self, ecu: int = GATEWAY) -> VersionReport:
        return VersionReport(self._read(ecu, Did.VERSION_REPORT))

    def read_status(self, ecu: int = GATEWAY) -> VehicleStatus:
        return VehicleStatus(self._read(ecu, Did.VEHICLE_STATUS))

    def write_crl(self, crl: bytes, ecu: int = GATEWAY) -> None:
        """WriteDataByIdentifier FD07: the issuing CA's current CRL (DER or PEM).

        The car takes it only from an authenticated tester in the extended session, and only if
        the OEM issuing CA signed it and it is newer than the one it holds (NRC 0x22 when not
        newer, 0x31 when foreign, 0x13 when malformed)."""
        self._call(
            ecu,
            0x2E,
            lambda c: c.write_data_by_identifier(int(Did.CERTIFICATE_REVOCATION_LIST), crl),
        )

    def tester_present(self, ecu: int) -> None:
        """TesterPresent (0x3E): restarts the ECU's S3 timer so its session and authentication
        survive a pause (ISO 14229-1 §10.5)."""
        self._call(ecu, 0x3E, lambda c: c.tester_present())

    def confirmed_position(self, ecu: int, name: str, size: int) -> int:
        """Bytes of ``name`` the ECU has confirmed (0x38 ResumeFile's filePosition), 0 if none.

        The probe leaves the ECU ready to receive from that position; :meth:`transfer` asks
        again before sending, so the probe changes nothing the transfer relies on."""
        dfi = DataFormatIdentifier(compression=0, encryption=0)
        try:
            response = self._call(
                ecu,
                0x38,
                lambda c: c.request_file_transfer(_MOOP.ResumeFile, name, dfi=dfi, filesize=size),
                expected_nrc=NRC_REQUEST_OUT_OF_RANGE,
            )
        except EcuNegativeResponse as refusal:
            if refusal.nrc != NRC_REQUEST_OUT_OF_RANGE:
                raise
            return 0
        return min(int(response.service_data.fileposition or 0), size)

    def ecu_reset(self, ecu: int, reset_type: ResetType = ResetType.HARD_RESET) -> None:
        self._call(ecu, 0x11, lambda c: c.ecu_reset(int(reset_type)))
        self._credentials.pop(ecu, None)  # the reset ends the session and its authentication
        _log.info("ecu_reset", vin=self._bound().vin, ecu=f"{ecu:04X}", reset_type=int(reset_type))

    def read_dtcs(self, ecu: int, status_mask: int = 0xFF) -> list[Dtc]:
        response = self._call(ecu, 0x19, lambda c: c.get_dtc_by_status_mask(status_mask))
        return [Dtc(int(d.id), int(d.status.get_byte_as_int())) for d in response.service_data.dtcs]
