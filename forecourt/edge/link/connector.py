"""The workflow's car port over the real vehicle link: :class:`DoipCarConnector`.

:class:`~forecourt.edge.workflow.ports.CarConnector` / ``CarSession`` are the few operations the
activation workflow needs; :class:`~forecourt.edge.link.doip.DoipVehicleLink` speaks ISO 13400-2
and ISO 14229-1. This module maps one onto the other and adds what a session to a real car needs:

* **discovery by VIN** among the dealer network's configured addresses (DoIP vehicle
  identification request with VIN, payload 0x0003: only that car answers);
* **UDS 0x29 with the dealer's certificate and key** (:class:`DealerCredentials`, whose proof of
  ownership binds the ECU challenge to VIN and ECU serial);
* **CRL delivery**: after 0x29 on the gateway, the issuing CA's CRL the edge holds
  (``ConnectorSettings.current_crl``) is written to DID FD07 once per session, so a revoked
  dealer certificate reaches cars that have no network (the car keeps only a newer one); then
  the root's CRL of revoked issuing CAs (``current_root_crl``), the same way;
* **TesterPresent keep-alive**: an ECU drops its extended session, and with it the
  authentication, when no request reaches it for S3 (5 s). A transfer to the gateway can last
  minutes while the other authenticated ECUs hear nothing, and the workflow pauses between
  steps for database commits. :class:`_KeepAlive` sends 0x3E to every authenticated ECU idle
  for ``keepalive_interval`` — from the transfer's own thread between blocks, and from a
  background thread when the session is otherwise idle. One lock serialises every exchange on
  the car's single DoIP connection, so a keep-alive never interleaves with a block;
* **error translation**: the link's typed errors become the port's :class:`CarUnreachable`
  (no entity, refused routing, cut connection, timeout) and :class:`NegativeResponse` (NRC).

Images and the bundle go to the gateway (0x1000), which distributes them: the car's verifier
finds every image among the gateway's received files.
"""

from __future__ import annotations

import contextlib
import functools
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, TypeVar

from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    PublicFormat,
    load_pem_public_key,
)

from forecourt.edge.link.doip import DoipVehicleLink, LinkConfig
from forecourt.edge.link.errors import (
    ApplyRefused,
    EcuNegativeResponse,
    EcuTimeout,
    RoutingActivationRefused,
    VehicleLinkError,
    VehicleNotFound,
    VehicleUnreachable,
)
from forecourt.edge.link.model import GATEWAY, TransferReceipt
from forecourt.edge.link.model import EcuIdentity as LinkEcuIdentity
from forecourt.edge.link.protocol import DealerCredentials
from forecourt.edge.workflow.ports import (
    ApplyOutcome,
    CarIdentity,
    CarUnreachable,
    EcuIdentity,
    LinkError,
    NegativeResponse,
    TransferProgress,
)
from forecourt.logging import get_logger

_log = get_logger("edge.link.connector")
_T = TypeVar("_T")
BUNDLE_FILE = "activation.bundle"
S3_SERVER_SECONDS = 5.0  # ISO 14229-1 S3server default


@dataclass(frozen=True)
class ConnectorSettings:
    """Where cars may be found and how the link to them behaves."""

    addresses: tuple[str, ...]
    """The DoIP entities' addresses on the dealer network (or its broadcast address)."""
    link: LinkConfig = field(default_factory=LinkConfig)
    keepalive_interval: float = S3_SERVER_SECONDS / 2.5
    bundle_file: str = BUNDLE_FILE
    current_crl: Callable[[], bytes | None] = field(default=lambda: None)
    """The issuing CA's CRL the edge holds (read at each session), written to every car."""
    current_root_crl: Callable[[], bytes | None] = field(default=lambda: None)
    """The root's CRL of revoked issuing CAs the edge holds, written to FD07 after the other."""


class DoipCarConnector:
    """:class:`~forecourt.edge.workflow.ports.CarConnector` over DoIP + UDS."""

    def __init__(self, settings: ConnectorSettings, credentials: DealerCredentials) -> None:
        if not settings.addresses:
            raise ValueError("at least one car address (or a broadcast address) is needed")
        self._settings = settings
        self._credentials = credentials
        self.receipts: list[TransferReceipt] = []
        """Every completed transfer (bytes sent, where it resumed): the wire cost, for audit."""

    def discover(self, vin: str) -> str:
        link = DoipVehicleLink(self._settings.link)
        try:
            return link.discover(vin=vin, addresses=self._settings.addresses).address
        except VehicleNotFound as exc:
            raise CarUnreachable(vin, str(exc)) from exc
        finally:
            link.close()

    def connect(self, address: str) -> DoipCarSession:
        link = DoipVehicleLink(self._settings.link)
        try:
            vehicle = link.discover(addresses=(address,))
        except VehicleNotFound as exc:
            raise CarUnreachable(address, str(exc)) from exc
        session = DoipCarSession(
            link, vehicle.address, self._credentials, self._settings, self.receipts.append
        )
        try:
            session.call(link.read_status)  # opens TCP, routing activation
        except LinkError:
            session.close()
            raise
        return session


class _KeepAlive:
    """Sends TesterPresent to authenticated ECUs that have been idle too long."""

    def __init__(self, session: DoipCarSession, interval: float) -> None:
        self._session = session
        self._interval = interval
        self._last: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tester-present", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)

    def touched(self, ecu: int) -> None:
        self._last[ecu] = time.monotonic()

    def forget(self) -> None:
        self._last.clear()

    def tick(self) -> None:
        """Refresh every authenticated ECU idle for the interval (caller holds the link lock)."""
        now = time.monotonic()
        for ecu, last in list(self._last.items()):
            if now - last >= self._interval:
                self._session.link.tester_present(ecu)
                self._last[ecu] = time.monotonic()

    def _run(self) -> None:
        while not self._stop.wait(self._interval / 2):
            if not self._session.lock.acquire(timeout=self._interval / 2):
                continue  # the link is busy: the busy thread ticks between its blocks
            try:
                self.tick()
            except VehicleLinkError as exc:
                _log.info("tester_present_failed", error=str(exc))
                self.forget()
            finally:
                self._session.lock.release()


class DoipCarSession:
    """:class:`~forecourt.edge.workflow.ports.CarSession` on one :class:`DoipVehicleLink`."""

    def __init__(
        self,
        link: DoipVehicleLink,
        address: str,
        credentials: DealerCredentials,
        settings: ConnectorSettings,
        on_receipt: Callable[[TransferReceipt], None] = lambda _r: None,
    ) -> None:
        self.link = link
        self._on_receipt = on_receipt
        self.lock = threading.RLock()
        self._address = address
        self._credentials = credentials
        self._settings = settings
        self._crl_delivered = False
        self._keepalive = _KeepAlive(self, settings.keepalive_interval)
        self._keepalive.start()

    @property
    def address(self) -> str:
        return self._address

    @property
    def local_interface(self) -> str:
        doip = self.link._doip  # the socket the car answered on, for the audit record
        if doip is None:
            return "unknown"
        with contextlib.suppress(OSError, AttributeError):
            host, port = doip._tcp_sock.getsockname()[:2]
            return f"{host}:{port}"
        return "unknown"

    def call(self, operation: Callable[[], _T]) -> _T:
        """Run one link operation under the lock, its errors as the port's errors."""
        with self.lock, _translated(self._address):
            return operation()

    def identify(self) -> CarIdentity:
        """Identification after :meth:`authenticate` on the gateway (the car's nonce needs it)."""
        identity = self.call(self.link.read_identity)
        if not identity.activation_nonce:
            raise LinkError(f"car at {self._address}: identify before authenticating the gateway")
        return CarIdentity(
            vin=identity.vin,
            ecus=tuple(_ecu(e) for e in identity.ecus),
            nonce=identity.activation_nonce,
            activation_counter=identity.activation_counter,
        )

    def authenticate(self, ecu_address: int) -> None:
        self.call(lambda: self.link.authenticate(ecu_address, self._credentials))
        self._keepalive.touched(ecu_address)
        if ecu_address == GATEWAY and not self._crl_delivered:
            self._deliver_crl()

    def _deliver_crl(self) -> None:
        """Write the edge's CRL to the authenticated gateway, once per session; never fatal.

        Cars have no network: revocations reach a car only this way. The issuing CA's CRL goes
        first, then the root's CRL of revoked issuing CAs (the car tells them apart by issuer).
        A car that holds a newer CRL (0x22), or predates FD07 (0x31), refuses it; the
        activation goes on either way.
        """
        self._crl_delivered = True
        for kind, current in (
            ("issuing_ca", self._settings.current_crl),
            ("root", self._settings.current_root_crl),
        ):
            try:
                crl = current()
            except OSError as exc:
                _log.warning("crl_unreadable", car=self._address, crl=kind, error=str(exc))
                continue
            if not crl:
                continue
            try:
                self.call(functools.partial(self.link.write_crl, crl))
            except NegativeResponse as refusal:
                _log.info("crl_not_taken", car=self._address, crl=kind, nrc=f"{refusal.nrc:#04x}")
                continue
            _log.info("crl_delivered", car=self._address, crl=kind, bytes=len(crl))

    def confirmed_bytes(self, name: str, size: int) -> int:
        return self.call(lambda: self.link.confirmed_position(GATEWAY, name, size))

    def send_file(
        self, name: str, source: BinaryIO, size: int, offset: int, progress: TransferProgress
    ) -> None:
        """Send to the gateway; the link itself resumes from the ECU-confirmed position."""

        def each_block(position: int, _total: int) -> None:
            self._keepalive.touched(GATEWAY)
            self._keepalive.tick()  # the other authenticated ECUs, between blocks
            progress(position)

        with _as_source(source) as data:
            receipt = self.call(lambda: self.link.transfer(GATEWAY, name, data, each_block))
        self._on_receipt(receipt)

    def apply(self) -> ApplyOutcome:
        outcome = self.call(lambda: self.link.apply(GATEWAY, self._settings.bundle_file))
        return ApplyOutcome(tuple(sorted(outcome.ecu_results.items())))

    def version_report(self) -> bytes:
        return self.call(lambda: self.link.read_report(GATEWAY)).raw

    def close(self) -> None:
        self._keepalive.stop()
        with self.lock:
            self.link.close()


@contextlib.contextmanager
def _translated(address: str) -> Iterator[None]:
    try:
        yield
    except ApplyRefused as exc:
        raise NegativeResponse(exc.ecu, exc.service, exc.nrc, exc.nrc_name) from exc
    except EcuNegativeResponse as exc:
        raise NegativeResponse(exc.ecu, exc.service, exc.nrc, exc.nrc_name) from exc
    except (VehicleUnreachable, VehicleNotFound, RoutingActivationRefused, EcuTimeout) as exc:
        raise CarUnreachable(address, str(exc)) from exc
    except VehicleLinkError as exc:
        raise LinkError(f"car at {address}: {exc}") from exc


@contextlib.contextmanager
def _as_source(source: BinaryIO) -> Iterator[bytes | Path]:
    """A file handle as the link reads it: the file's path when it has one, else its bytes."""
    name = getattr(source, "name", None)
    if isinstance(name, str) and Path(name).is_file():
        yield Path(name)
    else:
        source.seek(0)
        yield source.read()


def _ecu(ecu: LinkEcuIdentity) -> EcuIdentity:
    return EcuIdentity(
        logical_address=ecu.address,
        serial=ecu.serial_number,
        hardware_number=ecu.hardware_number,
        software_version=ecu.software_version,
        signing_key_hex=_raw_signing_key(ecu.signing_public_key_pem),
        certificate_pem=ecu.certificate_pem,
    )


def _raw_signing_key(pem: str) -> str:
    try:
        key = load_pem_public_key(pem.encode())
    except ValueError:
        return ""
    if not isinstance(key, ed25519.Ed25519PublicKey):
        return ""
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw).hex()


__all__: Sequence[str] = ["ConnectorSettings", "DoipCarConnector", "DoipCarSession"]
