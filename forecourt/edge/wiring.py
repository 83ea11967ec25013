"""Assembling the real edge from settings: one call gives the services the console and CLI use.

Usage (the CLI, the demo and the end-to-end tests do exactly this)::

    from forecourt.edge.wiring import EdgeSettings, start_edge

    settings = EdgeSettings(
        data_dir=Path("/var/lib/forecourt-edge"),
        dealer_id="DE-MUC-01",
        edge_id="edge-de-muc-01",
        cloud_url="https://cloud.example:8443",
        tls_cert=Path("edge.crt"), tls_key=Path("edge.key"), tls_ca=Path("oem-root.pem"),
        car_addresses=("192.168.50.255",),          # or each car's DoIP address
        cloud_ledger_vkey="forecourt.example/cloud-ledger+…",
    )
    with start_edge(settings) as edge:             # migrated, resumed, background running
        wf = edge.activations.start(operator, vin=vin, features=[...], consent=capture)
        edge.activations.wait(wf)
        edge.sync_now()                            # push the outbox (tests; else periodic)

``start_edge`` = :func:`build_edge` (nothing runs yet) + :meth:`Edge.start`:

1. the edge database is migrated (``migrate(engine, EDGE_BRANCHES)``, SQLite WAL by default in
   ``data_dir/edge.sqlite3``);
2. the dealer's operators are pushed to the cloud (``PUT /v1/dealer/operators``) so the cloud's
   re-check of the operator named in each authorisation passes; a change of the operator list
   is pushed again by the background loop;
3. when the cloud answered, the outbox is drained first (an offline activation reaches the
   cloud before the refill, so its car is not stocked again); then the offline package stock is
   refilled (best effort: the cloud may be down);
4. ``resume_all()`` picks up every workflow a previous process left unfinished;
5. one background thread drains the outbox every ``sync_interval``, queues a ledger
   checkpoint every ``checkpoint_interval`` when the log grew, and refreshes the CRL every
   ``crl_refresh_interval``; :meth:`Edge.close` stops it, waits for running workflows, closes
   the cloud client and the database.

When the cloud answered at start, the issuing CA's CRL is refreshed too (before workflows
resume): ``crl.pem`` beside the TLS certificate, which the edge writes to every car after 0x29,
is replaced by the cloud's newer CRL once it is checked (:mod:`forecourt.edge.crl`); so is
``root-crl.pem`` beside it, the root's CRL of revoked issuing CAs, checked against the pinned root.

The dealer's TLS certificate and key (issued by the OEM PKI, ``forecourt pki issue-dealer``)
serve twice: mutual TLS to the cloud, and UDS 0x29 to cars (the certificate is presented, the key
proves possession over each ECU's challenge bound to VIN and serial). ECU identity certificates
read at identification are verified against ``tls_ca`` (the OEM root) before their keys are
trusted to verify the version manifest.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
    load_pem_private_key,
)
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from forecourt.blobs import ResumableDownloader
from forecourt.edge.audit import EdgeAudit
from forecourt.edge.cache import PackageCache
from forecourt.edge.cloud_client import CloudError, HttpCloudClient, MutualTls, PackageRef
from forecourt.edge.crl import CrlRefresh, CrlRefresher
from forecourt.edge.link.connector import ConnectorSettings, DoipCarConnector
from forecourt.edge.link.doip import LinkConfig
from forecourt.edge.link.protocol import DealerCredentials
from forecourt.edge.offline import OfflineStock, PackageState
from forecourt.edge.operators import OperatorService, ReviewService
from forecourt.edge.operators.sealing import TOTP_KEY_ATTRIBUTE, TotpKey
from forecourt.edge.outbox import LEDGER_CHECKPOINT, DrainReport, OutboxDispatcher
from forecourt.edge.workflow import (
    ActivationService,
    CachedPackages,
    Dependencies,
    PackageUnavailable,
    ProgressHub,
    WorkflowSettings,
    WorkflowStore,
)
from forecourt.edge.workflow.consent import SubjectKey
from forecourt.edge.workflow.manifest import CertificateCheck
from forecourt.ledger.checkpoint import NoteVerifier, SoftwareNoteSigner, verifier_for
from forecourt.ledger.log import TransparencyLog
from forecourt.ledger.repository import MerkleLogStore
from forecourt.logging import get_logger
from forecourt.store.edge import EdgeOfflinePackage, EdgeOperator
from forecourt.store.engine import EDGE_BRANCHES, create_engine_for, migrate, session_factory
from forecourt.trust import CertificatePurpose, ecu_identity, verify_chain
from forecourt.trust.crl_reload import ROOT_CRL_FILE
from forecourt.trust.errors import CertificateError, ManifestInventoryMismatch
from forecourt.trust.uds_auth import EcuContext, prove_possession

_log = get_logger("edge.wiring")
LEDGER_KEY_FILE = "ledger-signing.key"


@dataclass(frozen=True)
class EdgeSettings:
    """Everything a dealer's edge box is built from. Nothing is read at import time."""

    data_dir: Path
    dealer_id: str
    edge_id: str
    cloud_url: str
    tls_cert: Path
    """The dealer certificate (PEM; leaf first, chain after) for mTLS and UDS 0x29."""
    tls_key: Path
    """Its private key (PEM, unencrypted, mode 0600)."""
    tls_ca: Path
    """The OEM root (PEM): the cloud's server certificate and ECU certificates chain to it."""
    car_addresses: tuple[str, ...]
    cloud_ledger_vkey: str
    """The cloud log's checkpoint verifier key (``name+hash+key``): receipts are checked with it."""
    database_url: str | None = None
    """``None``: SQLite in ``data_dir/edge.sqlite3``."""
    ledger_origin: str | None = None
    """The edge log's origin line; ``None``: ``<edge_id>.<dealer_id>.forecourt.edge``."""
    cache_budget_bytes: int = 8 * 1024**3
    sync_interval: float = 5.0
    checkpoint_interval: float = 60.0
    crl_refresh_interval: float = 3600.0
    """Seconds between CRL refreshes in the background loop (also run at start)."""
    max_parallel: int = 8
    allow_offline: bool = True
    link: LinkConfig = field(default_factory=LinkConfig)
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))

    @property
    def origin(self) -> str:
        return self.ledger_origin or f"{self.edge_id}.{self.dealer_id}.forecourt.edge".lower()

    @property
    def sqlite_path(self) -> Path:
        return self.data_dir / "edge.sqlite3"


@dataclass
class Edge:
    """The assembled edge. ``activations`` is what the console and the CLI drive."""

    settings: EdgeSettings
    engine: Engine
    sessions: sessionmaker[Session]
    operators: OperatorService
    reviews: ReviewService
    activations: ActivationService
    offline: OfflineStock
    outbox: OutboxDispatcher
    audit: EdgeAudit
    log: TransparencyLog
    cloud: HttpCloudClient
    cache: PackageCache
    hub: ProgressHub
    connector: DoipCarConnector
    crl: CrlRefresher
    root_crl: CrlRefresher | None = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _operators_digest: str | None = None
    _anchored_size: int = 0
    _crl_answered: bool = False
    _closed: bool = False

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self, *, background: bool = True) -> list[str]:
        """Sync operators, refill offline stock, resume unfinished workflows, start the loop."""
        self.sync_operators()
        if self._operators_digest is not None:  # the link is up: report what waited first,
            self.outbox.drain()  # so a car activated offline is not stocked again
            # and carry the newest revocations to the cars from now on
            self._crl_answered = self.refresh_crl() is not None
        self.refill_offline_stock()
        resumed = self.activations.resume_all()
        if background:
            self._thread = threading.Thread(target=self._loop, name="edge-sync", daemon=True)
            self._thread.start()
        _log.info("edge_started", edge_id=self.settings.edge_id, resumed=len(resumed))
        return resumed

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        self.activations.shutdown(wait=True)
        self.cloud.close()
        self.engine.dispose()
        _log.info("edge_stopped", edge_id=self.settings.edge_id)

    def __enter__(self) -> Edge:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- what the loop does (callable directly: tests, the CLI's "sync now") --------------------

    def sync_operators(self, *, force: bool = False) -> bool:
        """Push the active operators to the cloud when the list changed; True when pushed.

        The first success after a failure means the link is back: the outbox's backed-off
        messages are made due at once, so reconciliation does not wait out the backoff."""
        operators = self._operator_claims()
        digest = hashlib.sha256(repr(operators).encode()).hexdigest()
        if digest == self._operators_digest and not force:
            return False
        try:
            self.cloud.sync_operators(operators)
        except CloudError as exc:
            _log.warning("operators_not_synced", error=str(exc))
            self._operators_digest = None  # push again, and retry the outbox, once it is back
            return False
        if self._operators_digest is None:
            self.outbox.retry_now()
        self._operators_digest = digest
        _log.info("operators_synced", count=len(operators))
        return True

    def refill_offline_stock(self) -> int:
        """Pull offline packages and fetch the images they name into the package cache now,
        while the link is up: an offline activation cannot download anything."""
        try:
            added = self.offline.refill(self.cloud)
        except CloudError as exc:
            _log.warning("offline_stock_not_refilled", error=str(exc))
            return 0
        packages = CachedPackages(self.cache)
        with self.sessions() as s:
            refs = s.execute(
                select(EdgeOfflinePackage.packages).where(
                    EdgeOfflinePackage.dealer_id == self.settings.dealer_id,
                    EdgeOfflinePackage.state == PackageState.AVAILABLE.value,
                )
            ).scalars()
            wanted = {PackageRef.from_dict(p) for listed in refs for p in listed}
        for ref in sorted(wanted, key=lambda r: r.sha256):
            try:
                packages.ensure(ref)
            except PackageUnavailable as exc:
                _log.warning("offline_image_not_cached", sha256=ref.sha256, error=str(exc))
        return added

    def refresh_crl(self) -> CrlRefresh | None:
        """Replace ``crl.pem`` with the cloud's CRL if it is checked and newer
        (:mod:`forecourt.edge.crl`); ``None`` when the cloud did not answer (logged)."""
        try:
            refreshed = self.crl.refresh()
            if self.root_crl is not None:
                self.root_crl.refresh()  # the root's CRL rides along, same rules and logs
        except CloudError as exc:
            _log.warning("crl_not_refreshed", error=str(exc))
            return None
        return refreshed

    def queue_checkpoint(self) -> bool:
        """Queue a checkpoint of the edge log for anchoring if it grew since the last one."""
        size = self.log.store.size()
        if size in (0, self._anchored_size):
            return False
        self.audit.queue_checkpoint(self.sessions, self.settings.clock())
        self._anchored_size = size
        return True

    def sync_now(self) -> DrainReport:
        """Operators, a checkpoint if due, and every outbox message due now."""
        self.sync_operators()
        self.queue_checkpoint()
        return self.outbox.drain()

    def ledger_vkey(self) -> str:
        """This edge log's checkpoint verifier key (``origin+hash+key``): what the OEM registers
        (``forecourt cloud register-edge-log`` or ``PUT /v1/dealers/{d}/edges/{e}/ledger-key``)
        so the cloud accepts this edge's checkpoints into the log of logs."""
        return ledger_verifier(self.settings).to_vkey()

    def _loop(self) -> None:
        last_checkpoint = 0.0
        last_crl: float | None = 0.0 if self._crl_answered else None
        elapsed = 0.0
        interval = self.settings.sync_interval
        while not self._stop.wait(interval):
            elapsed += interval
            try:
                self.sync_operators()
                if elapsed - last_checkpoint >= self.settings.checkpoint_interval:
                    self.queue_checkpoint()
                    last_checkpoint = elapsed
                self.outbox.drain()
                due = last_crl is None or elapsed - last_crl >= self.settings.crl_refresh_interval
                if due and self.refresh_crl() is not None:  # None: unreachable, next pass again
                    last_crl = elapsed
            except Exception:  # the loop must survive anything; what failed is logged
                _log.exception("edge_sync_pass_failed")

    def _operator_claims(self) -> list[tuple[str, str]]:
        with self.sessions() as s:
            rows = s.execute(
                select(EdgeOperator.id, EdgeOperator.role)
                .where(
                    EdgeOperator.dealer_id == self.settings.dealer_id,
                    EdgeOperator.active.is_(True),
                )
                .order_by(EdgeOperator.id)
            ).all()
        return [(str(i), str(r)) for i, r in rows]


def build_edge(settings: EdgeSettings) -> Edge:
    """Every service over the real adapters; the database is migrated, nothing runs yet."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    url = settings.database_url or f"sqlite:///{settings.sqlite_path.as_posix()}"
    engine = create_engine_for(url)
    totp_key = TotpKey.load_or_create(settings.data_dir)
    migrate(engine, EDGE_BRANCHES, {TOTP_KEY_ATTRIBUTE: totp_key})
    sessions = session_factory(engine)
    totp_key.bind(sessions)
    clock = settings.clock
    operators = OperatorService(sessions, clock=clock)
    reviews = ReviewService(sessions, operators, clock=clock)
    log = TransparencyLog(
        MerkleLogStore(engine), settings.origin, _ledger_signer(settings.data_dir), clock
    )
    audit = EdgeAudit(log, settings.edge_id)
    audit.bind(sessions)  # consent written in a workflow step is ledgered in its transaction
    SubjectKey.load_or_create(settings.data_dir).bind(sessions)
    tls = MutualTls(settings.tls_cert, settings.tls_key, settings.tls_ca)
    cloud = HttpCloudClient(
        settings.cloud_url, tls=tls, source=f"forecourt-edge/{settings.edge_id}"
    )
    downloads = httpx.Client(verify=tls.context(), timeout=httpx.Timeout(30.0, connect=3.0))
    cache = PackageCache(
        settings.data_dir / "packages",
        budget_bytes=settings.cache_budget_bytes,
        downloader=ResumableDownloader(downloads),
    )
    offline = OfflineStock(sessions, settings.dealer_id, clock=clock)
    connector = DoipCarConnector(
        ConnectorSettings(
            settings.car_addresses,
            link=settings.link,
            current_crl=dealer_crl(settings),
            current_root_crl=dealer_crl(settings, ROOT_CRL_FILE),
        ),
        dealer_credentials(settings),
    )
    hub = ProgressHub()
    deps = Dependencies(
        store=WorkflowStore(sessions, audit),
        operators=operators,
        reviews=reviews,
        cloud=cloud,
        connector=connector,
        packages=CachedPackages(cache),
        offline=offline,
        hub=hub,
        clock=clock,
    )
    activations = ActivationService(
        deps,
        WorkflowSettings(
            settings.dealer_id,
            max_parallel=settings.max_parallel,
            allow_offline=settings.allow_offline,
            certificate_check=ecu_certificate_check(settings.tls_ca, settings.tls_cert, clock),
        ),
    )
    outbox = OutboxDispatcher(
        sessions,
        cloud,
        clock=clock,
        handlers={
            LEDGER_CHECKPOINT: audit.checkpoint_handler(
                sessions, cloud, NoteVerifier.from_vkey(settings.cloud_ledger_vkey)
            )
        },
        on_double_use=offline.mark_double_use,
    )
    return Edge(
        settings=settings,
        engine=engine,
        sessions=sessions,
        operators=operators,
        reviews=reviews,
        activations=activations,
        offline=offline,
        outbox=outbox,
        audit=audit,
        log=log,
        cloud=cloud,
        cache=cache,
        hub=hub,
        connector=connector,
        crl=CrlRefresher(cloud, dealer_crl_path(settings), issuing_ca(settings), clock),
        root_crl=root_crl_refresher(settings, cloud, clock),
    )


def root_crl_refresher(
    settings: EdgeSettings, cloud: HttpCloudClient, clock: Callable[[], datetime]
) -> CrlRefresher:
    """The refresher of ``root-crl.pem`` beside the dealer's ``crl.pem``: signed by the pinned
    OEM root (the first certificate of ``ca.pem``); a cloud holding none is no refusal."""
    return CrlRefresher(
        cloud,
        dealer_crl_path(settings).with_name(ROOT_CRL_FILE),
        x509.load_pem_x509_certificates(settings.tls_ca.read_bytes())[0],
        clock,
        fetch=cloud.fetch_root_crl,
        optional=True,
    )


@contextlib.contextmanager
def start_edge(settings: EdgeSettings, *, background: bool = True) -> Iterator[Edge]:
    """Build, start (operators, offline stock, resume, loop) and close on exit."""
    edge = build_edge(settings)
    try:
        edge.start(background=background)
        yield edge
    finally:
        edge.close()


def dealer_credentials(settings: EdgeSettings) -> DealerCredentials:
    """The dealer certificate (DER, as 0x29 carries it) and proof of possession of its key."""
    certificate = x509.load_pem_x509_certificates(settings.tls_cert.read_bytes())[0]
    key = load_pem_private_key(settings.tls_key.read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ValueError(f"{settings.tls_key} is not the EC key of a dealer certificate")

    def prove(challenge: bytes, vin: str, ecu_serial: str) -> bytes:
        return prove_possession(key, challenge, EcuContext(vin, ecu_serial))

    return DealerCredentials(certificate.public_bytes(Encoding.DER), prove)


def dealer_crl_path(settings: EdgeSettings) -> Path:
    """``crl.pem`` beside ``tls_cert``, where ``forecourt cloud dealer-cert`` / ``pki
    issue-dealer`` write the issuing CA's CRL and :class:`CrlRefresher` replaces it."""
    return settings.tls_cert.parent / "crl.pem"


def issuing_ca(settings: EdgeSettings) -> x509.Certificate:
    """The issuing CA certificate of the dealer's chain (the intermediate after the leaf in
    ``tls_cert``), checked to be signed by the pinned OEM root: what a CRL must be signed by.

    Raises ``ValueError`` when the bundle holds no issuer of the leaf signed by the root."""
    chain = x509.load_pem_x509_certificates(settings.tls_cert.read_bytes())
    root = x509.load_pem_x509_certificates(settings.tls_ca.read_bytes())[0]
    for candidate in chain[1:]:
        if candidate.subject != chain[0].issuer:
            continue
        try:
            candidate.verify_directly_issued_by(root)
        except (ValueError, TypeError, InvalidSignature) as exc:
            raise ValueError(
                f"{settings.tls_cert}: issuing CA {candidate.subject.rfc4514_string()} is not "
                f"signed by the OEM root in {settings.tls_ca}"
            ) from exc
        return candidate
    raise ValueError(f"{settings.tls_cert} holds no issuing CA certificate after the leaf")


def dealer_crl(settings: EdgeSettings, name: str = "crl.pem") -> Callable[[], bytes | None]:
    """The issuing CA's CRL (or, by ``name``, the root's) among the dealer TLS files
    (:func:`dealer_crl_path`), read at each car session so a replaced (refreshed) file is
    delivered without a restart; ``None`` when the edge holds none."""
    path = dealer_crl_path(settings).with_name(name)

    def read() -> bytes | None:
        return path.read_bytes() if path.is_file() else None

    return read


def ecu_certificate_check(
    root_pem: Path, dealer_chain_pem: Path, clock: Callable[[], datetime]
) -> CertificateCheck:
    """ECU identity certificates must chain to the OEM root and name the car, ECU and key read.

    The OEM issuing CA(s) come from the dealer certificate's own chain (the same PKI issues
    dealer and ECU certificates); only ``root_pem`` is trusted as an anchor."""
    root = x509.load_pem_x509_certificates(root_pem.read_bytes())[0]
    intermediates = x509.load_pem_x509_certificates(dealer_chain_pem.read_bytes())[1:]

    def check(certificate_pem: str, vin: str, serial: str, signing_key: bytes) -> None:
        if not certificate_pem.strip():
            raise ManifestInventoryMismatch(f"ECU {serial} presented no identity certificate")
        chain = x509.load_pem_x509_certificates(certificate_pem.encode())
        try:
            verify_chain(
                chain[0], chain[1:] + intermediates, root, CertificatePurpose.ECU_IDENTITY,
                clock(), None,
            )  # fmt: skip
            identity = ecu_identity(chain[0])
        except CertificateError as exc:
            raise ManifestInventoryMismatch(f"ECU {serial} certificate refused: {exc}") from exc
        raw = identity.signing_key.public_bytes(Encoding.Raw, PublicFormat.Raw)
        if identity.vin != vin:
            raise ManifestInventoryMismatch(
                f"ECU {serial} certificate was issued for car {identity.vin}, not {vin}"
            )
        if identity.ecu_serial != serial or raw != signing_key:
            raise ManifestInventoryMismatch(
                f"ECU {serial} certificate names serial {identity.ecu_serial} or another key"
            )

    return check


def _ledger_signer(data_dir: Path) -> SoftwareNoteSigner:
    """The edge log's checkpoint key, created on first start (mode 0600) and kept."""
    path = data_dir / LEDGER_KEY_FILE
    if path.exists():
        key = load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(key, ed25519.Ed25519PrivateKey):
            raise ValueError(f"{path} is not an Ed25519 key")
        return SoftwareNoteSigner(key)
    signer = SoftwareNoteSigner.generate()
    pem = signer.private_key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)
    return signer


def ledger_verifier(settings: EdgeSettings) -> NoteVerifier:
    """The edge log's verifier key: what the OEM registers for this edge's origin."""
    return verifier_for(settings.origin, _ledger_signer(settings.data_dir))
