"""The edge's client of the OEM cloud: one Protocol, the real mTLS client, and a fake.

Every call the edge makes to the cloud goes through :class:`CloudClient`:

==========================  ==============================================  ===================
method                      route                                           idempotent by
==========================  ==============================================  ===================
``authorise``               ``POST /v1/activations``                        ``Idempotency-Key``
``assignment``              ``GET  /v1/vehicles/{vin}/assignment``          (read)
``offline_packages``        ``POST /v1/offline-packages`` (issue ahead)     (stock dedups)
``push_events``             ``POST /v1/sync/events`` (a batch)              CloudEvents ``id``
``submit_checkpoint``       ``POST /v1/ledger/checkpoints``                 same note, same tree
``sync_operators``          ``PUT  /v1/dealer/operators``                   (whole list)
``fetch_crl``               ``GET  /v1/trust/crl`` (``If-None-Match``)      (read)
``fetch_root_crl``          ``GET  /v1/trust/root-crl`` (``If-None-Match``) (read)
==========================  ==============================================  ===================

Outbox events (workflow steps, consent records, offline package uses, completions) go in
batches to ``POST /v1/sync/events`` as CloudEvents 1.0 (``application/cloudevents-batch+json``).
The cloud holds each event once by its id and applies it in the same transaction (an online
activation closed, the car marked activated, the consent rows, the R156 software record, the
offline use); it answers per id ``accepted``, ``duplicate`` (a retry) or ``rejected`` with a code,
and lists offline packages it has seen used twice.

Because every call is idempotent, :class:`HttpCloudClient` retries all of them on transport
errors and 5xx/429 with full-jitter backoff; a 4xx is a refusal and never retried. Errors::

    CloudError
    ├── CloudUnreachable   no answer (DNS, TCP, TLS, timeout, 5xx after retries): go offline
    └── CloudRefused       the cloud said no; ``status`` and the problem+json ``code(s)``

The dealer is identified by its client certificate (mutual TLS, issued by the OEM PKI); the
operator travels in the body and the cloud re-checks it. :class:`FakeCloudClient` is the in-memory
stand-in for unit tests: same contract, no sockets.
"""

from __future__ import annotations

import base64
import hashlib
import json
import ssl
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

import httpx

from forecourt.blobs import RetryPolicy
from forecourt.core import EcuRole
from forecourt.ledger.logoflogs import Receipt
from forecourt.ledger.merkle import ConsistencyProof
from forecourt.ledger.wire import consistency_to_json
from forecourt.logging import get_logger
from forecourt.trust.crl_reload import crl_etag
from forecourt.trust.tls import client_ssl_context

_log = get_logger("edge.cloud_client")

# The outbox's event types this client routes (forecourt.edge.outbox defines them; that module
# imports this one, so the names are repeated here rather than imported).
ACTIVATION_COMPLETED_EVENT = "forecourt.edge.activation.completed.v1"
OFFLINE_PACKAGE_USED_EVENT = "forecourt.edge.offline_package.used.v1"
#: CloudEvents 1.0 HTTP binding, batched content mode.
SYNC_BATCH_MEDIA_TYPE = "application/cloudevents-batch+json"
#: RFC 2585 §4.2: a DER CRL, as ``GET /v1/trust/crl`` answers it.
PKIX_CRL = "application/pkix-crl"
#: The largest CRL the edge takes (the car's own bound, ``forecourt.vehicle.revocation``).
MAX_CRL_BYTES = 256 * 1024


# -- errors ------------------------------------------------------------------------------------


class CloudError(Exception):
    """Root of the cloud client's errors."""


class CloudUnreachable(CloudError):
    """The cloud did not answer usefully; the edge may fall back to offline mode."""

    def __init__(self, operation: str, detail: str) -> None:
        super().__init__(f"cloud unreachable during {operation}: {detail}")
        self.operation = operation
        self.detail = detail


class CloudRefused(CloudError):
    """The cloud refused (4xx, RFC 9457 problem details); ``codes`` are its stable codes."""

    def __init__(
        self, operation: str, status: int, codes: tuple[str, ...], detail: str = ""
    ) -> None:
        shown = ", ".join(codes) or "no code"
        super().__init__(
            f"cloud refused {operation} ({status}: {shown}){': ' + detail if detail else ''}"
        )
        self.operation = operation
        self.status = status
        self.codes = codes
        self.detail = detail


# -- values ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PackageRef:
    """One image the car needs: which ECU, its content address, and where to fetch it."""

    name: str
    ecu_address: int
    sha256: str
    size: int
    url: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "ecu_address": self.ecu_address,
            "sha256": self.sha256,
            "size": self.size,
            "url": self.url,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> PackageRef:
        return cls(
            str(d["name"]), int(d["ecu_address"]), str(d["sha256"]), int(d["size"]), str(d["url"])
        )


@dataclass(frozen=True, slots=True)
class AuthorisationRequest:
    """What the edge asks the cloud to authorise. ``request_id`` makes retries idempotent."""

    request_id: str
    vin: str
    dealer_id: str
    operator_id: str
    operator_role: str
    features: tuple[str, ...]
    inventory: tuple[Mapping[str, object], ...]
    nonce_hex: str
    activation_counter: int
    consent: Mapping[str, Any]

    def to_dict(self) -> dict[str, Any]:
        """The body of ``POST /v1/activations`` as the cloud's ``ActivationIn`` reads it."""
        consent = self.consent.get("record") if self.consent else None
        return {
            "request_id": self.request_id,
            "vin": self.vin,
            "operator": {"operator_id": self.operator_id, "role": self.operator_role},
            "features": list(self.features),
            "inventory": [_ecu_in(e) for e in self.inventory],
            "nonce": self.nonce_hex,
            "consent": consent,
        }


def _ecu_in(ecu: Mapping[str, object]) -> dict[str, object]:
    """An ECU as read (address, serial, hardware, software) in the cloud's ``EcuIn`` shape."""
    address = int(str(ecu["address"]), 16)
    role = next((r.value for r in EcuRole if r.logical_address == address), f"0x{address:04X}")
    return {
        "role": role,
        "serial": ecu["serial"],
        "hardware_number": ecu["hardware"],
        "software_version": ecu.get("software", ""),
    }


@dataclass(frozen=True, slots=True)
class Authorisation:
    """A signed activation bundle for one car and the packages it refers to."""

    authorisation_id: str
    bundle: bytes
    packages: tuple[PackageRef, ...]

    @property
    def bundle_sha256(self) -> str:
        return hashlib.sha256(self.bundle).hexdigest()


@dataclass(frozen=True, slots=True)
class Assignment:
    """Which dealer the registry assigns the car to, and how often it was activated before."""

    vin: str
    dealer_id: str | None
    activations: int


@dataclass(frozen=True, slots=True)
class OfflinePackageOffer:
    """A pre-issued, single-use, VIN- and counter-bound bundle for the dealer's stock."""

    package_id: str
    vin: str
    counter: int
    bundle: bytes
    not_before: datetime
    not_after: datetime
    packages: tuple[PackageRef, ...] = ()

    @property
    def bundle_sha256(self) -> str:
        return hashlib.sha256(self.bundle).hexdigest()


@dataclass(frozen=True, slots=True)
class OutgoingEvent:
    """A CloudEvents 1.0 event from the outbox; the cloud deduplicates on ``event_id``."""

    event_id: str
    event_type: str
    subject: str | None
    time: datetime
    data: Mapping[str, Any]

    def to_cloudevent(self, source: str) -> dict[str, Any]:
        return {
            "specversion": "1.0",
            "id": self.event_id,
            "type": self.event_type,
            "source": source,
            "subject": self.subject,
            "time": self.time.isoformat(),
            "datacontenttype": "application/json",
            "data": dict(self.data),
        }


@dataclass(frozen=True, slots=True)
class DoubleUse:
    """The cloud saw one offline package used twice (here and elsewhere, or twice here)."""

    package_id: str
    vin: str
    detail: str


@dataclass(frozen=True, slots=True)
class SyncOutcome:
    """Per event: accepted now, already held (a retry), or refused for good with a code."""

    accepted: tuple[str, ...] = ()
    duplicates: tuple[str, ...] = ()
    rejected: tuple[tuple[str, str], ...] = ()
    double_uses: tuple[DoubleUse, ...] = ()


@dataclass(frozen=True, slots=True)
class TlsPeer:
    """Who answered at the other end of the last mTLS connection (for the audit trail)."""

    address: str
    certificate_sha256: str | None
    subject: str | None


class CloudClient(Protocol):
    """The edge's only way to the cloud."""

    def authorise(self, request: AuthorisationRequest) -> Authorisation: ...

    def assignment(self, vin: str) -> Assignment: ...

    def offline_packages(
        self, dealer_id: str, cursor: str | None = None
    ) -> tuple[list[OfflinePackageOffer], str | None]: ...

    def push_events(self, events: Sequence[OutgoingEvent]) -> SyncOutcome: ...

    def submit_checkpoint(self, note: str, consistency: ConsistencyProof | None) -> Receipt: ...

    def sync_operators(self, operators: Sequence[tuple[str, str]]) -> int:
        """Replace the dealer's operator list in the cloud: ``(operator_id, role)`` pairs."""
        ...

    def fetch_crl(self, etag: str | None = None) -> bytes | None:
        """The issuing CA's current CRL (DER, unverified: :mod:`forecourt.edge.crl` checks it),
        or ``None`` when it is still the one whose entity tag is ``etag`` (``crl_etag``).
        """
        ...

    def fetch_root_crl(self, etag: str | None = None) -> bytes | None:
        """The root's current CRL of revoked issuing CAs, as :meth:`fetch_crl`."""
        ...

    def peer(self) -> TlsPeer | None:
        """The TLS peer of the most recent call, if any."""
        ...


# -- the real client ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MutualTls:
    """The dealer's client certificate and key, and the OEM root that must sign the cloud's."""

    client_cert: Path
    client_key: Path
    ca_bundle: Path

    def context(self) -> ssl.SSLContext:
        """The trust layer's client context: TLS 1.2+, ECDHE with AEAD only, OEM root only."""
        return client_ssl_context(self.client_cert, self.client_key, self.ca_bundle)


_RETRY_STATUS = frozenset({429, 502, 503, 504, 500})


class HttpCloudClient:
    """:class:`CloudClient` over httpx with mutual TLS, timeouts and retries with backoff."""

    def __init__(
        self,
        base_url: str,
        *,
        tls: MutualTls | None = None,
        source: str = "forecourt-edge",
        timeout: httpx.Timeout | None = None,
        retry: RetryPolicy | None = None,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._client = httpx.Client(
            base_url=base_url,
            verify=tls.context() if tls else True,
            timeout=timeout or httpx.Timeout(10.0, connect=3.0),
            transport=transport,
            headers={"accept": "application/json, application/problem+json"},
        )
        self._source = source
        self._retry = retry or RetryPolicy(max_attempts=4, base_delay=0.2, max_delay=5.0)
        self._sleep = sleep
        self._peer: TlsPeer | None = None
        self._lock = threading.Lock()

    def close(self) -> None:
        self._client.close()

    def peer(self) -> TlsPeer | None:
        with self._lock:
            return self._peer

    def authorise(self, request: AuthorisationRequest) -> Authorisation:
        body = self._call(
            "authorise",
            "POST",
            "/v1/activations",
            json=request.to_dict(),
            headers={"idempotency-key": request.request_id},
        )
        try:
            return Authorisation(
                authorisation_id=str(body.get("authorisation_id") or body["request_id"]),
                bundle=base64.b64decode(body["bundle"], validate=True),
                packages=tuple(self._ref(p) for p in body.get("packages", [])),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise CloudRefused("authorise", 502, ("malformed_response",), repr(exc)) from exc

    def _ref(self, item: Mapping[str, Any]) -> PackageRef:
        """A package as the cloud lists it, its URL made absolute against the cloud's."""
        return PackageRef.from_dict(
            {**item, "url": str(self._client.base_url.join(str(item["url"])))}
        )

    def assignment(self, vin: str) -> Assignment:
        try:
            body = self._call("assignment", "GET", f"/v1/vehicles/{vin}/assignment")
        except CloudRefused as exc:
            if exc.status == 404 and "vehicle_unknown" in exc.codes:
                # The cloud answers an unknown car and another dealer's alike: not ours.
                return Assignment(vin, None, 0)
            raise
        try:
            dealer = body.get("dealer_id")
            return Assignment(
                vin, None if dealer is None else str(dealer), int(body["activations"])
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise CloudRefused("assignment", 502, ("malformed_response",), repr(exc)) from exc

    def offline_packages(
        self, dealer_id: str, cursor: str | None = None
    ) -> tuple[list[OfflinePackageOffer], str | None]:
        """Ask the cloud to issue a package for every car assigned to this dealer (one page).

        The dealer is the client certificate's; ``dealer_id`` and ``cursor`` are not sent.
        """
        body = self._call("offline_packages", "POST", "/v1/offline-packages", json={})
        try:
            offers = [
                OfflinePackageOffer(
                    package_id=str(item["package_id"]),
                    vin=str(item["vin"]),
                    counter=int(item["counter"]),
                    bundle=base64.b64decode(item["bundle"], validate=True),
                    not_before=datetime.fromisoformat(item["not_before"]),
                    not_after=datetime.fromisoformat(item["not_after"]),
                    packages=tuple(self._ref(p) for p in item.get("packages", [])),
                )
                for item in body["issued"]
            ]
        except (KeyError, TypeError, ValueError) as exc:
            raise CloudRefused("offline_packages", 502, ("malformed_response",), repr(exc)) from exc
        for skipped in body.get("skipped", []):
            _log.info(
                "offline_package_not_issued", vin=skipped.get("vin"), code=skipped.get("code")
            )
        return offers, None

    def push_events(self, events: Sequence[OutgoingEvent]) -> SyncOutcome:
        """Push one batch; the cloud answers per event id (a whole-batch 4xx raises)."""
        if not events:
            return SyncOutcome()
        batch = [e.to_cloudevent(self._source) for e in events]
        body = self._call(
            "push_events",
            "POST",
            "/v1/sync/events",
            content=json.dumps(batch, separators=(",", ":")).encode(),
            headers={"content-type": SYNC_BATCH_MEDIA_TYPE},
        )
        return _sync_outcome(body, {e.event_id for e in events})

    def sync_operators(self, operators: Sequence[tuple[str, str]]) -> int:
        body = self._call(
            "sync_operators",
            "PUT",
            "/v1/dealer/operators",
            json={"operators": [{"operator_id": o, "role": r} for o, r in operators]},
        )
        return int(body.get("operators", 0))

    def fetch_crl(self, etag: str | None = None) -> bytes | None:
        return self._fetch_crl("fetch_crl", "/v1/trust/crl", etag)

    def fetch_root_crl(self, etag: str | None = None) -> bytes | None:
        return self._fetch_crl("fetch_root_crl", "/v1/trust/root-crl", etag)

    def _fetch_crl(self, operation: str, url: str, etag: str | None) -> bytes | None:
        headers = {"accept": f"{PKIX_CRL}, application/problem+json"}
        if etag is not None:
            headers["if-none-match"] = etag
        response = self._send(operation, "GET", url, headers=headers)
        if response.status_code == 304:
            return None
        media_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
        if media_type != PKIX_CRL or len(response.content) > MAX_CRL_BYTES:
            raise CloudRefused(
                operation,
                502,
                ("malformed_response",),
                f"{media_type or 'no media type'}, {len(response.content)} bytes",
            )
        return response.content

    def submit_checkpoint(self, note: str, consistency: ConsistencyProof | None) -> Receipt:
        payload: dict[str, Any] = {"checkpoint": note}
        if consistency is not None:
            payload["consistency"] = consistency_to_json(consistency)
        body = self._call("submit_checkpoint", "POST", "/v1/ledger/checkpoints", json=payload)
        return Receipt.from_json(body)

    # -- transport ------------------------------------------------------------------------------

    def _call(self, operation: str, method: str, url: str, **kwargs: Any) -> dict[str, Any]:
        body = self._send(operation, method, url, **kwargs).json()
        if not isinstance(body, dict):
            raise CloudRefused(operation, 502, ("malformed_response",), "not an object")
        return body

    def _send(self, operation: str, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """One call with retries: the first answer below 400, else a refusal or unreachable."""
        failures = 0
        while True:
            try:
                response = self._client.request(method, url, **kwargs)
            except httpx.TransportError as exc:
                detail = f"{type(exc).__name__}: {exc}"
            else:
                self._remember_peer(response)
                if response.status_code < 400:
                    return response
                if response.status_code not in _RETRY_STATUS:
                    refused = _refusal(operation, response)
                    _log.warning(
                        "cloud_refused",
                        operation=operation,
                        status=refused.status,
                        codes=list(refused.codes),
                    )
                    raise refused
                detail = f"HTTP {response.status_code}"
            failures += 1
            if failures >= self._retry.max_attempts:
                _log.warning("cloud_unreachable", operation=operation, detail=detail)
                raise CloudUnreachable(operation, detail)
            self._sleep(self._retry.delay(failures))

    def _remember_peer(self, response: httpx.Response) -> None:
        stream = response.extensions.get("network_stream")
        if stream is None:
            return
        address = stream.get_extra_info("server_addr")
        ssl_object = stream.get_extra_info("ssl_object")
        der = ssl_object.getpeercert(True) if ssl_object is not None else None
        subject = None
        if ssl_object is not None:
            cert = ssl_object.getpeercert() or {}
            subject = (
                ",".join(f"{k}={v}" for rdn in cert.get("subject", ()) for k, v in rdn) or None
            )
        with self._lock:
            self._peer = TlsPeer(
                address=f"{address[0]}:{address[1]}" if address else str(response.url.host),
                certificate_sha256=hashlib.sha256(der).hexdigest() if der else None,
                subject=subject,
            )


def _sync_outcome(body: Mapping[str, Any], sent: set[str]) -> SyncOutcome:
    """Read the cloud's per-event answer; an id it does not name stays pending (not marked)."""
    try:
        accepted = tuple(str(i) for i in body["accepted"] if str(i) in sent)
        duplicates = tuple(str(i) for i in body["duplicates"] if str(i) in sent)
        rejected = tuple(
            (str(r["id"]), str(r["code"])) for r in body["rejected"] if str(r["id"]) in sent
        )
        doubles = tuple(
            DoubleUse(str(d["package_id"]), str(d["vin"]), f"{int(d['uses'])} uses")
            for d in body.get("double_uses", [])
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise CloudRefused("push_events", 502, ("malformed_response",), repr(exc)) from exc
    return SyncOutcome(accepted, duplicates, rejected, doubles)


def _refusal(operation: str, response: httpx.Response) -> CloudRefused:
    """Read RFC 9457 problem details: ``code`` or ``codes``/``reasons[].code``, ``detail``."""
    codes: list[str] = []
    detail = ""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        if isinstance(body.get("code"), str):
            codes.append(body["code"])
        for key in ("codes", "reasons", "errors"):
            for item in body.get(key) or []:
                if isinstance(item, str):
                    codes.append(item)
                elif isinstance(item, dict) and isinstance(item.get("code"), str):
                    codes.append(item["code"])
        raw_detail = body.get("detail") or body.get("title") or ""
        detail = raw_detail if isinstance(raw_detail, str) else str(raw_detail)
    return CloudRefused(operation, response.status_code, tuple(dict.fromkeys(codes)), detail)


# -- the fake ----------------------------------------------------------------------------------

AuthoriseHandler = Callable[[AuthorisationRequest], Authorisation]


@dataclass
class FakeCloudClient:
    """In-memory :class:`CloudClient` for unit tests: a fake, not the cloud.

    It keeps the contract the real cloud keeps: an authorisation is computed once per
    ``request_id`` (a retry gets the same bundle back), events are deduplicated by id, an offline
    package reported used by two different workflows is a double use. ``online = False`` makes
    every call raise :class:`CloudUnreachable`; ``fail_pushes`` fails that many pushes first.
    """

    authorise_handler: AuthoriseHandler | None = None
    submit: Callable[[str, ConsistencyProof | None], Receipt] | None = None
    online: bool = True
    fail_pushes: int = 0
    assignments: dict[str, Assignment] = field(default_factory=dict)
    stock: list[OfflinePackageOffer] = field(default_factory=list)
    refusal: CloudRefused | None = None
    authorisations: dict[str, Authorisation] = field(default_factory=dict)
    authorise_calls: list[AuthorisationRequest] = field(default_factory=list)
    received: dict[str, dict[str, Any]] = field(default_factory=dict)
    deliveries: int = 0
    offline_uses: dict[str, list[str]] = field(default_factory=dict)
    checkpoints: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _check(self, operation: str) -> None:
        if not self.online:
            raise CloudUnreachable(operation, "fake cloud is offline")

    def peer(self) -> TlsPeer | None:
        return TlsPeer("fake-cloud", None, "CN=fake cloud") if self.online else None

    def authorise(self, request: AuthorisationRequest) -> Authorisation:
        self._check("authorise")
        with self._lock:
            self.authorise_calls.append(request)
            if self.refusal is not None:
                raise self.refusal
            known = self.authorisations.get(request.request_id)
            if known is not None:
                return known
            if self.authorise_handler is None:
                raise CloudRefused("authorise", 503, ("no_handler",))
            made = self.authorise_handler(request)
            self.authorisations[request.request_id] = made
            return made

    def assignment(self, vin: str) -> Assignment:
        self._check("assignment")
        return self.assignments.get(vin, Assignment(vin, None, 0))

    def offline_packages(
        self, dealer_id: str, cursor: str | None = None
    ) -> tuple[list[OfflinePackageOffer], str | None]:
        self._check("offline_packages")
        start = int(cursor or 0)
        page = self.stock[start : start + 50]
        return list(page), (str(start + len(page)) if start + len(page) < len(self.stock) else None)

    def push_events(self, events: Sequence[OutgoingEvent]) -> SyncOutcome:
        self._check("push_events")
        with self._lock:
            if self.fail_pushes > 0:
                self.fail_pushes -= 1
                raise CloudUnreachable("push_events", "injected failure")
            accepted, duplicates, doubles = [], [], []
            for event in events:
                if event.event_id in self.received:
                    duplicates.append(event.event_id)
                    continue
                self.received[event.event_id] = event.to_cloudevent("fake")
                self.deliveries += 1
                accepted.append(event.event_id)
                if event.event_type == "forecourt.edge.offline_package.used.v1":
                    package_id = str(event.data["package_id"])
                    users = self.offline_uses.setdefault(package_id, [])
                    users.append(str(event.data["workflow_id"]))
                    if len(set(users)) > 1:
                        doubles.append(
                            DoubleUse(package_id, str(event.data["vin"]), f"used by {len(users)}")
                        )
            return SyncOutcome(tuple(accepted), tuple(duplicates), (), tuple(doubles))

    def submit_checkpoint(self, note: str, consistency: ConsistencyProof | None) -> Receipt:
        self._check("submit_checkpoint")
        if self.submit is None:
            raise CloudRefused("submit_checkpoint", 503, ("no_log_of_logs",))
        receipt = self.submit(note, consistency)
        self.checkpoints.append(note)
        return receipt

    operators: list[tuple[str, str]] = field(default_factory=list)

    def sync_operators(self, operators: Sequence[tuple[str, str]]) -> int:
        self._check("sync_operators")
        self.operators = list(operators)
        return len(self.operators)

    crl: bytes | None = None
    """What ``fetch_crl`` answers (DER, or any bytes a test wants the edge to refuse)."""

    def fetch_crl(self, etag: str | None = None) -> bytes | None:
        self._check("fetch_crl")
        if self.crl is None:
            raise CloudRefused("fetch_crl", 404, ("crl_unavailable",))
        return None if etag == crl_etag(self.crl) else self.crl

    root_crl: bytes | None = None
    """What ``fetch_root_crl`` answers (``None``: the cloud holds no root CRL, 404)."""

    def fetch_root_crl(self, etag: str | None = None) -> bytes | None:
        self._check("fetch_root_crl")
        if self.root_crl is None:
            raise CloudRefused("fetch_root_crl", 404, ("crl_unavailable",))
        return None if etag == crl_etag(self.root_crl) else self.root_crl

    def events_of_type(self, event_type: str) -> list[dict[str, Any]]:
        return [e for e in self.received.values() if e["type"] == event_type]
