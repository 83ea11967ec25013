"""Runs one car's workflow from whatever state it is stored in until it ends or must wait.

Each state has one handler that does the I/O of the next step and then commits the move (with
its evidence, ledger entry and outbox message) BEFORE any further I/O. Because a handler starts
from the stored state and what the car reports, running it again after a crash is safe:

* ``requested``/``connected``: connect and identify again (reads only);
* ``identified``: the review and authorisation decisions are recorded in the context, and the
  cloud call carries the workflow's ``request_id``, so a repeated call returns the same bundle;
* ``awaiting_review``: a review executed for this workflow counts as executed (``mark_executed``
  is true once; the payload binds the review to this workflow id);
* ``authorised``/``transferring``: the car's ResumeFile position says where each file continues;
* ``applying``: the car's version report says whether this bundle is already applied, so the
  apply routine never runs twice for one bundle.

Crash points for tests: ``hook(f"after:{state}")`` after each commit and ``hook("after:apply_io")``
between the apply routine and the commit of ``verified``. An exception that is not an
:class:`Exception` (the tests' simulated crash) passes straight through, writing nothing.
"""

from __future__ import annotations

import base64
import contextlib
import io
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from forecourt.edge.audit import NetworkContext
from forecourt.edge.cloud_client import (
    AuthorisationRequest,
    CloudClient,
    CloudRefused,
    CloudUnreachable,
    PackageRef,
)
from forecourt.edge.offline import NoOfflinePackage, OfflinePackageStale, OfflineStock
from forecourt.edge.operators import (
    Operator,
    OperatorService,
    Permission,
    PermissionDenied,
    ReviewKind,
    ReviewService,
    ReviewState,
    require,
)
from forecourt.edge.operators.clock import Clock, system_clock
from forecourt.edge.outbox import ACTIVATION_COMPLETED, enqueue
from forecourt.edge.workflow.consent import record_consent_in
from forecourt.edge.workflow.errors import StaleWorkflow, StepFailed
from forecourt.edge.workflow.manifest import (
    CertificateCheck,
    already_applied,
    check_content,
    inventory_of,
    no_certificate_check,
    software_changes,
    verify_signatures,
)
from forecourt.edge.workflow.packages import PackageSource, PackageUnavailable
from forecourt.edge.workflow.ports import (
    CarConnector,
    CarSession,
    CarUnreachable,
    LinkError,
    NegativeResponse,
)
from forecourt.edge.workflow.progress import Progress, ProgressHub
from forecourt.edge.workflow.repository import StepCommit, WorkflowRecord, WorkflowStore
from forecourt.edge.workflow.states import (
    TRANSITIONS,
    FailureCode,
    WorkflowState,
    ending_for,
    is_terminal,
)
from forecourt.ledger.entry import EventKind
from forecourt.logging import get_logger
from forecourt.trust.errors import ManifestError

_log = get_logger("edge.workflow")
_S = WorkflowState
GATEWAY = 0x1000
BUNDLE_FILE = "activation.bundle"


def _no_hook(point: str) -> None:
    return None


@dataclass(frozen=True, slots=True)
class WorkflowSettings:
    dealer_id: str
    max_parallel: int = 8
    link_retries: int = 3
    allow_offline: bool = True
    certificate_check: CertificateCheck = no_certificate_check


class Cancelled(Exception):
    """Raised inside a run when the operator cancelled it."""


@dataclass
class _Run:
    """What one run holds in memory: the car session and which ECUs it authenticated."""

    session: CarSession | None = None
    authenticated: set[int] = field(default_factory=set)


@dataclass
class Dependencies:
    store: WorkflowStore
    operators: OperatorService
    reviews: ReviewService
    cloud: CloudClient
    connector: CarConnector
    packages: PackageSource
    offline: OfflineStock
    hub: ProgressHub
    clock: Clock = system_clock
    hook: Callable[[str], None] = _no_hook
    sleep: Callable[[float], None] = lambda _s: None


class WorkflowRunner:
    def __init__(self, deps: Dependencies, settings: WorkflowSettings) -> None:
        self._d = deps
        self._settings = settings
        self._cancel: set[str] = set()
        self._lock = threading.Lock()

    # -- entry points ---------------------------------------------------------------------------

    def request_cancel(self, workflow_id: str) -> None:
        with self._lock:
            self._cancel.add(workflow_id)

    def cancel_requested(self, workflow_id: str) -> bool:
        with self._lock:
            return workflow_id in self._cancel

    def run(self, workflow_id: str) -> WorkflowRecord:
        """Advance until the workflow ends or waits for a review; returns the stored record."""
        wf = self._d.store.get(workflow_id)
        run = _Run()
        try:
            while not is_terminal(wf.state):
                if self.cancel_requested(wf.id) and _S.CANCELLED in _cancellable(wf.state):
                    wf = self._end(
                        wf, run, _S.CANCELLED, "cancelled", detail="cancelled by operator"
                    )
                    break
                handler = self._handlers[wf.state]
                try:
                    moved = handler(self, wf, run)
                except Cancelled:
                    wf = self._d.store.get(wf.id)
                    wf = self._end(
                        wf, run, _S.CANCELLED, "cancelled", detail="cancelled by operator"
                    )
                    break
                if moved is None:
                    return wf  # waiting (review pending)
                wf = moved
        except StepFailed as failure:
            wf = self._fail(self._d.store.get(wf.id), run, failure)
        except StaleWorkflow:
            _log.info("workflow_run_superseded", workflow_id=wf.id)
            return self._d.store.get(wf.id)
        except Exception as exc:  # anything unforeseen ends the workflow, recorded, not hidden
            _log.exception("workflow_internal_error", workflow_id=wf.id)
            internal = StepFailed(wf.id, FailureCode.INTERNAL_ERROR, f"{type(exc).__name__}: {exc}")
            wf = self._fail(self._d.store.get(wf.id), run, internal)
        finally:
            self._close(run)
            with self._lock:
                self._cancel.discard(workflow_id)
        return wf

    # -- handlers, one per stored state ----------------------------------------------------------

    def _connect(self, wf: WorkflowRecord, run: _Run) -> WorkflowRecord:
        started = self._d.clock()
        session: CarSession = self._with_link(wf, run, lambda s: s)
        return self._commit(
            wf,
            run,
            _S.CONNECTED,
            started,
            evidence={"car_address": session.address, "interface": session.local_interface},
            context={"address": session.address},
        )

    def _identify(self, wf: WorkflowRecord, run: _Run) -> WorkflowRecord:
        started = self._d.clock()
        operator = self._operator(wf)
        self._require(wf, operator, Permission.ACTIVATION_START)
        if wf.context.get("consent") is not None:
            self._require(wf, operator, Permission.CONSENT_RECORD)
        # The car issues a nonce (FD00) only to an authenticated tester: authenticate on the
        # gateway first, then identify (identify -> authenticate -> nonce).
        self._authenticate(wf, run, GATEWAY)
        identity = self._with_link(wf, run, lambda s: s.identify())
        wanted = wf.context.get("vin")
        if wanted and wanted != identity.vin:
            raise StepFailed(
                wf.id,
                FailureCode.VIN_MISMATCH,
                f"car at {wf.context.get('address')} is {identity.vin}, expected {wanted}",
                {"vin_read": identity.vin, "vin_expected": wanted},
            )
        ecus = [e.to_dict() for e in identity.ecus]
        consent_ctx = wf.context.get("consent")

        def extra(session: Any) -> Mapping[str, Any] | None:
            if consent_ctx is None:
                return None
            ids = record_consent_in(
                session,
                consent_ctx,
                vin=identity.vin,
                dealer_id=wf.dealer_id,
                operator_id=wf.operator_id,
                now=self._d.clock(),
            )
            return {"consent_record_ids": ids}

        return self._commit(
            wf,
            run,
            _S.IDENTIFIED,
            started,
            vin=identity.vin,
            evidence={
                "vin": identity.vin,
                "ecus": ecus,
                "nonce": identity.nonce.hex(),
                "activation_counter": identity.activation_counter,
            },
            context={
                "identity": {
                    "vin": identity.vin,
                    "ecus": ecus,
                    "nonce": identity.nonce.hex(),
                    "activation_counter": identity.activation_counter,
                }
            },
            extra=extra,
        )

    def _decide(self, wf: WorkflowRecord, run: _Run) -> WorkflowRecord | None:
        """Reviews needed? Then ask for them. Else authorise, online or from offline stock."""
        started = self._d.clock()
        operator = self._operator(wf)
        self._require(wf, operator, Permission.ACTIVATION_START)
        ctx = dict(wf.context)
        updates: dict[str, Any] = {}
        offline = bool(ctx.get("offline_mode"))
        if "assignment" not in ctx and not offline:
            try:
                assignment = self._d.cloud.assignment(wf.vin)
                updates["assignment"] = {
                    "dealer_id": assignment.dealer_id,
                    "activations": assignment.activations,
                }
            except CloudUnreachable:
                offline = self._go_offline(wf)
                updates["offline_mode"] = True
            except CloudRefused as exc:
                raise StepFailed(
                    wf.id, FailureCode.CLOUD_REFUSED, str(exc), {"codes": list(exc.codes)}
                ) from exc
        ctx.update(updates)
        needed = self._needed_reviews(wf, ctx, offline)
        reviews: dict[str, dict[str, Any]] = {k: dict(v) for k, v in ctx.get("reviews", {}).items()}
        missing = [k for k in needed if reviews.get(k.value, {}).get("state") != "executed"]
        if missing:
            for kind in missing:
                if kind.value not in reviews:
                    review = self._d.reviews.request(
                        operator,
                        kind,
                        {
                            "workflow_id": wf.id,
                            "vin": wf.vin,
                            "dealer_id": wf.dealer_id,
                            "features": list(ctx.get("features", [])),
                        },
                        dealer_id=wf.dealer_id,
                        reason=_REVIEW_REASONS[kind],
                    )
                    reviews[kind.value] = {"id": review.id, "state": review.state.value}
            return self._commit(
                wf,
                run,
                _S.AWAITING_REVIEW,
                started,
                status="review_requested",
                offline=offline,
                evidence={"reviews": {k: v["id"] for k, v in sorted(reviews.items())}},
                context={**updates, "reviews": reviews},
            )
        if offline:
            return self._authorise_offline(wf, run, started, updates)
        return self._authorise_online(wf, run, started, updates)

    def _await_reviews(self, wf: WorkflowRecord, run: _Run) -> WorkflowRecord | None:
        started = self._d.clock()
        operator = self._operator(wf)
        reviews = {k: dict(v) for k, v in wf.context.get("reviews", {}).items()}
        reviewer: str | None = None
        for kind, info in sorted(reviews.items()):
            if info.get("state") == "executed":
                reviewer = reviewer or info.get("reviewer_id")
                continue
            review = self._d.reviews.get(operator, info["id"])
            state = review.state
            if state is ReviewState.PENDING and review.expires_at <= self._d.clock():
                state = ReviewState.EXPIRED
            if state is ReviewState.PENDING:
                return None
            if state is ReviewState.REJECTED:
                raise StepFailed(
                    wf.id,
                    FailureCode.REVIEW_REJECTED,
                    f"{kind} review {review.id} rejected",
                    {"review_id": review.id, "kind": kind},
                )
            if state is ReviewState.EXPIRED:
                raise StepFailed(
                    wf.id,
                    FailureCode.REVIEW_EXPIRED,
                    f"{kind} review {review.id} expired",
                    {"review_id": review.id, "kind": kind},
                )
            if state is ReviewState.APPROVED:
                self._d.reviews.mark_executed(operator, review.id)
                review = self._d.reviews.get(operator, review.id)
            if not _binds(review.payload, wf.id):
                raise StepFailed(
                    wf.id,
                    FailureCode.REVIEW_REJECTED,
                    f"review {review.id} was approved for another operation",
                    {"review_id": review.id},
                )
            info.update(
                state="executed",
                reviewer_id=review.reviewer_id,
                payload_sha256=review.payload_sha256,
            )
            reviewer = reviewer or review.reviewer_id
        return self._commit(
            wf,
            run,
            _S.IDENTIFIED,
            started,
            status="reviews_executed",
            reviewer_id=reviewer,
            evidence={
                "reviews": {
                    k: {"id": v["id"], "payload_sha256": v.get("payload_sha256")}
                    for k, v in sorted(reviews.items())
                }
            },
            context={"reviews": reviews},
        )

    def _prepare(self, wf: WorkflowRecord, run: _Run) -> WorkflowRecord:
        """Make every image present and verified in the cache before the car is touched."""
        started = self._d.clock()
        refs = _refs(wf)
        for ref in refs:
            try:
                self._d.packages.ensure(ref)
            except PackageUnavailable as exc:
                raise StepFailed(
                    wf.id, FailureCode.PACKAGE_UNAVAILABLE, str(exc), {"sha256": ref.sha256}
                ) from exc
        total = len(_bundle(wf)) + sum(r.size for r in refs)
        return self._commit(
            wf,
            run,
            _S.TRANSFERRING,
            started,
            evidence={
                "bundle_sha256": wf.context["authorisation"]["bundle_sha256"],
                "packages": [{"name": r.name, "sha256": r.sha256, "size": r.size} for r in refs],
                "bytes_total": total,
            },
        )

    def _transfer(self, wf: WorkflowRecord, run: _Run) -> WorkflowRecord:
        started = self._d.clock()
        bundle = _bundle(wf)
        refs = _refs(wf)
        total = len(bundle) + sum(r.size for r in refs)
        targets = sorted({GATEWAY, *(r.ecu_address for r in refs)})
        for address in targets:
            self._authenticate(wf, run, address)
        done_before = 0
        files: list[dict[str, Any]] = []
        items: list[tuple[str, int, PackageRef | None]] = [(BUNDLE_FILE, len(bundle), None)]
        items += [(r.name, r.size, r) for r in refs]
        for name, size, ref in items:
            resumed_from = self._send(
                wf,
                run,
                name=name,
                size=size,
                ref=ref,
                bundle=bundle,
                done_before=done_before,
                total=total,
            )
            files.append(
                {"name": name, "size": size, "resumed_from": resumed_from, "confirmed": size}
            )
            done_before += size
        return self._commit(
            wf,
            run,
            _S.APPLYING,
            started,
            evidence={"files": files, "bytes_confirmed": total, "authenticated": targets},
        )

    def _apply(self, wf: WorkflowRecord, run: _Run) -> WorkflowRecord:
        started = self._d.clock()
        identity = wf.context["identity"]
        counter_before = int(identity["activation_counter"])
        refs = _refs(wf)
        evidence: dict[str, Any] = {}
        try:
            inventory = inventory_of(identity["ecus"], self._settings.certificate_check, vin=wf.vin)
            before = self._with_link(wf, run, lambda s: s.version_report())
            first = verify_signatures(before, vin=wf.vin, inventory=inventory, previous_counters={})
        except ManifestError as exc:
            raise StepFailed(
                wf.id, FailureCode.MANIFEST_REJECTED, str(exc), {"manifest_code": exc.code}
            ) from exc
        if already_applied(
            first, before, inventory=inventory, counter_before=counter_before, packages=refs
        ):
            evidence["already_applied"] = True  # applied before a crash: never apply twice
            report, previous = before, {s: c - 1 for s, c in first.counters.items()}
        else:
            self._authenticate(wf, run, GATEWAY)
            try:
                outcome = self._with_link(wf, run, lambda s: s.apply())
            except NegativeResponse as exc:
                raise StepFailed(
                    wf.id,
                    FailureCode.CAR_REFUSED_BUNDLE,
                    str(exc),
                    {"nrc": f"0x{exc.nrc:02X}", "service": f"0x{exc.service:02X}"},
                ) from exc
            evidence["results"] = [[f"0x{a:04X}", c] for a, c in outcome.results]
            if not outcome.applied:
                raise StepFailed(
                    wf.id, FailureCode.APPLY_FAILED, "an ECU did not apply", dict(evidence)
                )
            self._d.hook("after:apply_io")
            report = self._with_link(wf, run, lambda s: s.version_report())
            previous = first.counters
        try:
            signed = verify_signatures(
                report, vin=wf.vin, inventory=inventory, previous_counters=previous
            )
            manifest = check_content(
                signed, report, inventory=inventory, counter_before=counter_before, packages=refs
            )
        except ManifestError as exc:
            raise StepFailed(
                wf.id, FailureCode.MANIFEST_REJECTED, str(exc), {"manifest_code": exc.code}
            ) from exc
        evidence["manifest"] = manifest.to_evidence()
        # Before: what the car reported before this apply (after a crash past the apply, the
        # images were already there; the counters then tell the change).
        software = software_changes(first, signed, inventory=inventory, ecus=identity["ecus"])
        return self._commit(
            wf,
            run,
            _S.VERIFIED,
            started,
            evidence=evidence,
            context={
                "software": software,
                "activation_counter_after": manifest.activation_counter,
            },
            extra_hashes=(manifest.report_sha256,),
        )

    def _finish(self, wf: WorkflowRecord, run: _Run) -> WorkflowRecord:
        started = self._d.clock()
        auth = wf.context["authorisation"]

        def extra(session: Any) -> None:
            enqueue(
                session,
                ACTIVATION_COMPLETED,
                {
                    "workflow_id": wf.id,
                    "vin": wf.vin,
                    "dealer_id": wf.dealer_id,
                    "features": list(wf.context.get("features", [])),
                    "bundle_sha256": auth["bundle_sha256"],
                    "authorisation_id": auth.get("authorisation_id"),
                    "offline_package_id": auth.get("offline_package_id"),
                    "offline": wf.offline,
                    "activation_counter": wf.context.get("activation_counter_after"),
                    "software": list(wf.context.get("software", [])),
                },
                now=self._d.clock(),
                subject=wf.vin,
            )

        total_ms = int((self._d.clock() - wf.created_at).total_seconds() * 1000)
        return self._commit(
            wf,
            run,
            _S.DONE,
            started,
            evidence={"bundle_sha256": auth["bundle_sha256"], "total_ms": max(0, total_ms)},
            extra=extra,
            extra_hashes=(auth["bundle_sha256"],),
        )

    _handlers: Mapping[
        WorkflowState, Callable[[WorkflowRunner, WorkflowRecord, _Run], WorkflowRecord | None]
    ] = {
        _S.REQUESTED: _connect,
        _S.CONNECTED: _identify,
        _S.IDENTIFIED: _decide,
        _S.AWAITING_REVIEW: _await_reviews,
        _S.AUTHORISED: _prepare,
        _S.TRANSFERRING: _transfer,
        _S.APPLYING: _apply,
        _S.VERIFIED: _finish,
    }

    # -- authorisation ---------------------------------------------------------------------------

    def _authorise_online(
        self, wf: WorkflowRecord, run: _Run, started: datetime, updates: dict[str, Any]
    ) -> WorkflowRecord:
        operator = self._operator(wf)
        identity = wf.context["identity"]
        request = AuthorisationRequest(
            request_id=str(wf.context["request_id"]),
            vin=wf.vin,
            dealer_id=wf.dealer_id,
            operator_id=operator.id,
            operator_role=operator.role.value,
            features=tuple(wf.context.get("features", [])),
            inventory=tuple(identity["ecus"]),
            nonce_hex=str(identity["nonce"]),
            activation_counter=int(identity["activation_counter"]),
            consent=dict(wf.context.get("consent") or {}),
        )
        try:
            auth = self._d.cloud.authorise(request)
        except CloudUnreachable:
            if not self._settings.allow_offline:
                raise StepFailed(
                    wf.id, FailureCode.CLOUD_UNREACHABLE, "cloud unreachable"
                ) from None
            self._go_offline(wf)
            wf = self._d.store.save_context(wf, {**updates, "offline_mode": True}, self._d.clock())
            decided = self._decide(wf, run)
            assert decided is not None
            return decided
        except CloudRefused as exc:
            raise StepFailed(
                wf.id,
                FailureCode.CLOUD_REFUSED,
                str(exc),
                {"codes": list(exc.codes), "status": exc.status},
            ) from exc
        return self._commit(
            wf,
            run,
            _S.AUTHORISED,
            started,
            evidence={
                "authorisation_id": auth.authorisation_id,
                "bundle_sha256": auth.bundle_sha256,
                "request_id": request.request_id,
            },
            context={
                **updates,
                "authorisation": {
                    "authorisation_id": auth.authorisation_id,
                    "bundle": base64.b64encode(auth.bundle).decode(),
                    "bundle_sha256": auth.bundle_sha256,
                    "packages": [p.to_dict() for p in auth.packages],
                },
            },
            extra_hashes=(auth.bundle_sha256,),
        )

    def _authorise_offline(
        self, wf: WorkflowRecord, run: _Run, started: datetime, updates: dict[str, Any]
    ) -> WorkflowRecord:
        identity = wf.context["identity"]
        review = wf.context.get("reviews", {}).get(ReviewKind.OFFLINE_USE.value, {})

        def claim(session: Any) -> Mapping[str, Any]:
            package = self._d.offline.claim_in(
                session,
                vin=wf.vin,
                car_counter=int(identity["activation_counter"]),
                workflow_id=wf.id,
                operator_id=wf.operator_id,
                review_request_id=review.get("id"),
            )
            return {
                "authorisation": {
                    "authorisation_id": None,
                    "offline_package_id": package.package_id,
                    "bundle": base64.b64encode(package.bundle).decode(),
                    "bundle_sha256": package.bundle_sha256,
                    "packages": [p.to_dict() for p in package.packages],
                    "counter": package.counter,
                }
            }

        try:
            return self._commit(
                wf,
                run,
                _S.AUTHORISED,
                started,
                status="offline_package",
                offline=True,
                kind=EventKind.OFFLINE_USE,
                evidence={"source": "offline_stock", "review_id": review.get("id")},
                context=updates,
                extra=claim,
            )
        except NoOfflinePackage as exc:
            raise StepFailed(wf.id, FailureCode.NO_OFFLINE_PACKAGE, str(exc)) from exc
        except OfflinePackageStale as exc:
            raise StepFailed(
                wf.id,
                FailureCode.OFFLINE_PACKAGE_STALE,
                str(exc),
                {
                    "package_id": exc.package_id,
                    "counter": exc.counter,
                    "car_counter": exc.car_counter,
                },
            ) from exc

    def _go_offline(self, wf: WorkflowRecord) -> bool:
        if not self._settings.allow_offline:
            raise StepFailed(
                wf.id, FailureCode.CLOUD_UNREACHABLE, "cloud unreachable, offline mode off"
            )
        if not self._d.offline.has_valid(wf.vin):
            raise StepFailed(
                wf.id,
                FailureCode.NO_OFFLINE_PACKAGE,
                f"cloud unreachable and no valid offline package for {wf.vin}",
            )
        _log.warning("workflow_offline", workflow_id=wf.id, vin=wf.vin)
        return True

    def _needed_reviews(
        self, wf: WorkflowRecord, ctx: Mapping[str, Any], offline: bool
    ) -> list[ReviewKind]:
        kinds: list[ReviewKind] = []
        assignment = ctx.get("assignment")
        identity = ctx["identity"]
        if assignment is not None and assignment.get("dealer_id") != wf.dealer_id:
            kinds.append(ReviewKind.FOREIGN_VEHICLE)
        previous = int(assignment.get("activations", 0)) if assignment else 0
        if int(identity["activation_counter"]) > 0 or previous > 0:
            kinds.append(ReviewKind.REACTIVATION)
        if offline:
            kinds.append(ReviewKind.OFFLINE_USE)
        if ctx.get("batch_id"):
            kinds.append(ReviewKind.BATCH_ACTIVATION)
        return kinds

    # -- the car ---------------------------------------------------------------------------------

    def _session(self, wf: WorkflowRecord, run: _Run) -> CarSession:
        if run.session is not None:
            return run.session
        address = wf.context.get("address")
        if not address:
            address = self._d.connector.discover(str(wf.context["vin"]))
        run.session = self._d.connector.connect(str(address))
        run.authenticated.clear()
        return run.session

    def _with_link(self, wf: WorkflowRecord, run: _Run, op: Callable[[CarSession], Any]) -> Any:
        """Run ``op`` on the car, reconnecting (and re-authenticating) after a dropped link."""
        failures = 0
        while True:
            try:
                return op(self._session(wf, run))
            except CarUnreachable as exc:
                failures += 1
                was_authenticated = sorted(run.authenticated)
                self._close(run)
                if failures > self._settings.link_retries:
                    raise StepFailed(
                        wf.id, FailureCode.CAR_UNREACHABLE, str(exc), {"attempts": failures}
                    ) from exc
                _log.warning("car_link_lost", workflow_id=wf.id, attempt=failures)
                self._d.sleep(min(2.0, 0.1 * 2**failures))
                for address in was_authenticated:
                    self._authenticate(wf, run, address)

    def _authenticate(self, wf: WorkflowRecord, run: _Run, address: int) -> None:
        if address in run.authenticated and run.session is not None:
            return
        try:
            self._with_link(wf, run, lambda s: s.authenticate(address))
        except NegativeResponse as exc:
            raise StepFailed(
                wf.id,
                FailureCode.AUTHENTICATION_FAILED,
                str(exc),
                {"ecu": f"0x{address:04X}", "nrc": f"0x{exc.nrc:02X}"},
            ) from exc
        run.authenticated.add(address)

    def _send(
        self,
        wf: WorkflowRecord,
        run: _Run,
        *,
        name: str,
        size: int,
        ref: PackageRef | None,
        bundle: bytes,
        done_before: int,
        total: int,
    ) -> int:
        """Send one file from the car-confirmed position; returns where it resumed from."""
        first_offset: int | None = None

        def progress(confirmed: int) -> None:
            self._d.hub.set_bytes(wf.id, done_before + confirmed, total)
            self._publish(wf, done_before + confirmed, total)
            if self.cancel_requested(wf.id):
                raise Cancelled()

        def attempt(session: CarSession) -> None:
            nonlocal first_offset
            offset = session.confirmed_bytes(name, size)
            if first_offset is None:
                first_offset = offset
            progress(offset)
            # Even at offset == size the file goes through the link: it checks with the car
            # that the complete file is this one (its SHA-256) and then sends nothing.
            if ref is None:
                session.send_file(name, io.BytesIO(bundle), size, offset, progress)
            else:
                with self._d.packages.open(ref) as handle:
                    session.send_file(name, handle, size, offset, progress)

        try:
            self._with_link(wf, run, attempt)
        except NegativeResponse as exc:
            raise StepFailed(
                wf.id,
                FailureCode.TRANSFER_FAILED,
                str(exc),
                {"file": name, "nrc": f"0x{exc.nrc:02X}"},
            ) from exc
        except PackageUnavailable as exc:
            raise StepFailed(wf.id, FailureCode.PACKAGE_UNAVAILABLE, str(exc)) from exc
        return first_offset or 0

    def _close(self, run: _Run) -> None:
        if run.session is not None:
            with contextlib.suppress(LinkError):
                run.session.close()
            run.session = None
        run.authenticated.clear()

    # -- commits ---------------------------------------------------------------------------------

    def _network(self, wf: WorkflowRecord, run: _Run, offline: bool) -> NetworkContext:
        peer = None if offline else self._d.cloud.peer()
        return NetworkContext(
            online=not offline,
            client_address=wf.context.get("client_address"),
            car_address=run.session.address if run.session else wf.context.get("address"),
            interface=run.session.local_interface if run.session else None,
            cloud_tls_peer=(
                f"{peer.address} {peer.subject or ''} {peer.certificate_sha256 or ''}".strip()
                if peer
                else None
            ),
        )

    def _commit(
        self,
        wf: WorkflowRecord,
        run: _Run,
        target: WorkflowState,
        started: datetime,
        *,
        evidence: Mapping[str, Any],
        status: str = "ok",
        context: Mapping[str, Any] | None = None,
        vin: str | None = None,
        offline: bool | None = None,
        reviewer_id: str | None = None,
        kind: EventKind = EventKind.ACTIVATION,
        extra: Callable[[Any], Mapping[str, Any] | None] | None = None,
        extra_hashes: tuple[str, ...] = (),
        error: tuple[str, str] | None = None,
    ) -> WorkflowRecord:
        is_offline = wf.offline if offline is None else offline
        record, step = self._d.store.commit_step(
            wf,
            StepCommit(
                target=target,
                status=status,
                evidence=evidence,
                started_at=started,
                finished_at=self._d.clock(),
                network=self._network(wf, run, is_offline),
                context=context or {},
                vin=vin,
                offline=offline,
                error_code=error[0] if error else None,
                error_detail=error[1] if error else None,
                kind=kind,
                reviewer_id=reviewer_id,
                extra_evidence_hashes=extra_hashes,
                writes=extra,
            ),
        )
        _log.info(
            "workflow_step",
            workflow_id=wf.id,
            vin=record.vin,
            from_state=wf.state.value,
            to_state=target.value,
            status=status,
            duration_ms=step.duration_ms,
        )
        done = self._d.hub.bytes_of(wf.id)
        self._publish(record, *(done or (0, 0)))
        self._d.hook(f"after:{target.value}")
        return record

    def _fail(self, wf: WorkflowRecord, run: _Run, failure: StepFailed) -> WorkflowRecord:
        target = ending_for(failure.code)
        if is_terminal(wf.state):
            return wf
        log = _log.warning if target is _S.REFUSED else _log.error
        log(
            "workflow_refused" if target is _S.REFUSED else "workflow_failed",
            workflow_id=wf.id,
            vin=wf.vin,
            state=wf.state.value,
            code=failure.code.value,
            detail=failure.detail,
        )
        return self._end(
            wf, run, target, failure.code.value, detail=failure.detail, evidence=failure.evidence
        )

    def _end(
        self,
        wf: WorkflowRecord,
        run: _Run,
        target: WorkflowState,
        code: str,
        *,
        detail: str,
        evidence: Mapping[str, Any] | None = None,
    ) -> WorkflowRecord:
        return self._commit(
            wf,
            run,
            target,
            self._d.clock(),
            status=code,
            evidence={"code": code, "detail": detail, **(evidence or {})},
            error=(code, detail),
        )

    def _publish(self, wf: WorkflowRecord, done: int, total: int) -> None:
        self._d.hub.publish(
            Progress(
                workflow_id=wf.id,
                vin=wf.vin,
                state=wf.state,
                status=None,
                offline=wf.offline,
                bytes_done=done,
                bytes_total=total,
                error_code=wf.error_code,
                error_detail=wf.error_detail,
            )
        )

    # -- helpers ---------------------------------------------------------------------------------

    def _operator(self, wf: WorkflowRecord) -> Operator:
        return self._d.operators.get(wf.operator_id)

    def _require(self, wf: WorkflowRecord, operator: Operator, permission: Permission) -> None:
        try:
            require(operator, permission, wf.dealer_id)
        except PermissionDenied as exc:
            raise StepFailed(
                wf.id,
                FailureCode.PERMISSION_DENIED,
                str(exc),
                {"permission": permission.value, "reason": exc.reason},
            ) from exc


def _cancellable(state: WorkflowState) -> frozenset[WorkflowState]:
    return TRANSITIONS[state]


def _binds(payload: Mapping[str, Any], workflow_id: str) -> bool:
    """A review counts for a workflow only if its approved payload names that workflow."""
    return payload.get("workflow_id") == workflow_id or workflow_id in (
        payload.get("workflow_ids") or []
    )


def _bundle(wf: WorkflowRecord) -> bytes:
    return base64.b64decode(wf.context["authorisation"]["bundle"])


def _refs(wf: WorkflowRecord) -> list[PackageRef]:
    return [PackageRef.from_dict(p) for p in wf.context["authorisation"]["packages"]]


_REVIEW_REASONS: Mapping[ReviewKind, str] = {
    ReviewKind.FOREIGN_VEHICLE: "the car is not assigned to this dealer",
    ReviewKind.REACTIVATION: "the car was activated before",
    ReviewKind.OFFLINE_USE: "the cloud is unreachable; activation from an offline package",
    ReviewKind.BATCH_ACTIVATION: "several cars activated as one batch",
    ReviewKind.FEATURE_REVOCATION: "feature revocation",
    ReviewKind.OVERRIDE: "override",
}
