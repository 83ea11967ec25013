"""ActivationService: what the console and the CLI call to activate cars at this dealership.

::

    service = ActivationService(sessions, audit=..., operators=..., reviews=..., cloud=...,
                                connector=..., packages=..., offline=..., settings=...)
    wf_id = service.start(operator, vin="…" | address="…", features=[…], consent=capture)
    ids   = service.start_batch(operator, targets=[…], features=[…], reason="…")
    service.progress(wf_id)            # state, bytes done/total, timings per step
    service.subscribe(callback, wf_id) # live progress; returns unsubscribe
    service.list(operator)             # this dealer's workflows, newest first
    service.review_decided(wf_id)      # a reviewer decided: continue if it waits for that
    service.cancel(operator, wf_id)
    service.resume_all()               # after an edge restart: pick up every unfinished one
    service.wait(wf_id)                # block until the current run of it returns (CLI, tests)

Runs execute on a bounded thread pool (``settings.max_parallel`` cars at once; the link and the
database calls are blocking). A workflow is run by at most one thread of this process at a time;
another process racing on the same row loses on the version check and stops quietly.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from forecourt.edge.operators import (
    Operator,
    Permission,
    ReviewKind,
    require,
)
from forecourt.edge.workflow.consent import ConsentCapture
from forecourt.edge.workflow.errors import WorkflowNotCancellable, WorkflowNotFound
from forecourt.edge.workflow.progress import Progress, Subscriber
from forecourt.edge.workflow.repository import WorkflowRecord
from forecourt.edge.workflow.runner import Dependencies, WorkflowRunner, WorkflowSettings
from forecourt.edge.workflow.states import TERMINAL, WorkflowState, is_terminal
from forecourt.logging import get_logger

_log = get_logger("edge.workflow.service")
_NOT_CANCELLABLE = frozenset({WorkflowState.APPLYING, WorkflowState.VERIFIED}) | TERMINAL


@dataclass(frozen=True, slots=True)
class CarTarget:
    """A car to activate: by VIN (discovered on the network) or by its DoIP address."""

    vin: str | None = None
    address: str | None = None

    def __post_init__(self) -> None:
        if not (self.vin or self.address):
            raise ValueError("a car is named by its VIN or its address")


class ActivationService:
    def __init__(self, deps: Dependencies, settings: WorkflowSettings) -> None:
        self._d = deps
        self._settings = settings
        self._runner = WorkflowRunner(deps, settings)
        self._pool = ThreadPoolExecutor(
            max_workers=settings.max_parallel, thread_name_prefix="activation"
        )
        self._lock = threading.Lock()
        self._running: dict[str, Future[WorkflowRecord]] = {}
        self._again: set[str] = set()

    # -- starting -------------------------------------------------------------------------------

    def start(
        self,
        operator: Operator,
        *,
        features: Sequence[str],
        vin: str | None = None,
        address: str | None = None,
        consent: ConsentCapture | None = None,
        client_address: str | None = None,
    ) -> str:
        """Create the workflow (checked: permission, dealer scope) and run it in the background."""
        target = CarTarget(vin, address)
        wf = self._create(operator, target, features, consent, client_address, batch=None)
        self._submit(wf.id)
        return wf.id

    def start_batch(
        self,
        operator: Operator,
        *,
        targets: Sequence[CarTarget],
        features: Sequence[str],
        reason: str,
        consent: ConsentCapture | None = None,
        client_address: str | None = None,
    ) -> list[str]:
        """Start several cars under ONE ``batch_activation`` review (no unauthorised batches)."""
        require(operator, Permission.ACTIVATION_BATCH_REQUEST, self._settings.dealer_id)
        batch_id = str(uuid.uuid4())
        records = [
            self._create(operator, t, features, consent, client_address, batch=batch_id)
            for t in targets
        ]
        review = self._d.reviews.request(
            operator,
            ReviewKind.BATCH_ACTIVATION,
            {
                "batch_id": batch_id,
                "workflow_ids": [r.id for r in records],
                "cars": [t.vin or t.address for t in targets],
                "features": sorted(features),
            },
            dealer_id=self._settings.dealer_id,
            reason=reason,
        )
        for record in records:
            self._d.store.save_context(
                record,
                {
                    "reviews": {
                        ReviewKind.BATCH_ACTIVATION.value: {"id": review.id, "state": "pending"}
                    }
                },
                self._d.clock(),
            )
            self._submit(record.id)
        return [r.id for r in records]

    def _create(
        self,
        operator: Operator,
        target: CarTarget,
        features: Sequence[str],
        consent: ConsentCapture | None,
        client_address: str | None,
        *,
        batch: str | None,
    ) -> WorkflowRecord:
        require(operator, Permission.ACTIVATION_START, self._settings.dealer_id)
        if consent is not None:
            require(operator, Permission.CONSENT_RECORD, self._settings.dealer_id)
        context = {
            "request_id": str(uuid.uuid4()),
            "vin": target.vin,
            "address": target.address,
            "features": sorted(set(features)),
            "consent": consent.to_context() if consent else None,
            "client_address": client_address,
            "batch_id": batch,
        }
        wf = self._d.store.create(
            dealer_id=self._settings.dealer_id,
            vin=target.vin or "",
            operator_id=operator.id,
            context=context,
            now=self._d.clock(),
        )
        _log.info(
            "workflow_started",
            workflow_id=wf.id,
            vin=target.vin,
            address=target.address,
            operator_id=operator.id,
            batch_id=batch,
        )
        return wf

    # -- running --------------------------------------------------------------------------------

    def _submit(self, workflow_id: str) -> None:
        with self._lock:
            if workflow_id in self._running and not self._running[workflow_id].done():
                self._again.add(workflow_id)  # run once more when the current run returns
                return
            self._running[workflow_id] = self._pool.submit(self._run, workflow_id)

    def _run(self, workflow_id: str) -> WorkflowRecord:
        while True:
            record = self._runner.run(workflow_id)
            with self._lock:
                if workflow_id not in self._again:
                    return record
                self._again.discard(workflow_id)

    def resume_all(self) -> list[str]:
        """Pick up every unfinished workflow of this dealer (after a restart); returns their ids."""
        ids = [
            wf.id for wf in self._d.store.unfinished() if wf.dealer_id == self._settings.dealer_id
        ]
        for workflow_id in ids:
            self._submit(workflow_id)
        _log.info("workflows_resumed", count=len(ids))
        return ids

    def review_decided(self, workflow_id: str) -> None:
        """Continue a workflow that waits for a review (the console calls this after a decision)."""
        if self._d.store.get(workflow_id).state is WorkflowState.AWAITING_REVIEW:
            self._submit(workflow_id)

    def wait(self, workflow_id: str, timeout: float | None = 30.0) -> WorkflowRecord:
        """Block until the current run returns (it may be waiting for a review, not ended)."""
        with self._lock:
            future = self._running.get(workflow_id)
        if future is not None:
            future.result(timeout=timeout)
        return self._d.store.get(workflow_id)

    def cancel(self, operator: Operator, workflow_id: str) -> WorkflowRecord:
        """Stop a workflow before the car starts applying; refused from ``applying`` on."""
        wf = self._d.store.get(workflow_id)
        require(operator, Permission.ACTIVATION_START, wf.dealer_id)
        if wf.state in _NOT_CANCELLABLE:
            raise WorkflowNotCancellable(workflow_id, wf.state)
        self._runner.request_cancel(workflow_id)
        _log.info("workflow_cancel_requested", workflow_id=workflow_id, operator_id=operator.id)
        self._submit(workflow_id)
        return self.wait(workflow_id)

    def shutdown(self, wait: bool = True) -> None:
        self._pool.shutdown(wait=wait, cancel_futures=not wait)

    # -- reading --------------------------------------------------------------------------------

    def get(self, workflow_id: str) -> WorkflowRecord:
        return self._d.store.get(workflow_id)

    def list(
        self, viewer: Operator, states: frozenset[WorkflowState] | None = None
    ) -> list[WorkflowRecord]:
        require(viewer, Permission.VEHICLE_READ, self._settings.dealer_id)
        return self._d.store.for_dealer(self._settings.dealer_id, states=states)

    def progress(self, workflow_id: str) -> Progress:
        wf = self._d.store.get(workflow_id)
        steps = self._d.store.steps(workflow_id)
        timings: dict[str, int] = {}
        for step in steps:
            timings[step.to_state.value] = timings.get(step.to_state.value, 0) + step.duration_ms
        live = self._d.hub.bytes_of(workflow_id)
        total = int(
            next(
                (
                    s.evidence["step"].get("bytes_total", 0)
                    for s in steps
                    if s.to_state is WorkflowState.TRANSFERRING
                ),
                0,
            )
        )
        done = live[0] if live else 0
        if wf.state in (WorkflowState.APPLYING, WorkflowState.VERIFIED, WorkflowState.DONE):
            done = total
        reviews = wf.context.get("reviews") or {}
        return Progress(
            workflow_id=wf.id,
            vin=wf.vin,
            state=wf.state,
            status=steps[-1].status if steps else None,
            offline=wf.offline,
            bytes_done=done,
            bytes_total=live[1] if live and not total else total,
            timings_ms=timings,
            error_code=wf.error_code,
            error_detail=wf.error_detail,
            review_ids=tuple(v["id"] for _, v in sorted(reviews.items())),
        )

    def subscribe(self, callback: Subscriber, workflow_id: str | None = None) -> Callable[[], None]:
        """Live progress of one workflow (or all); returns the function that unsubscribes."""
        return self._d.hub.subscribe(callback, workflow_id)

    def is_finished(self, workflow_id: str) -> bool:
        try:
            return is_terminal(self._d.store.get(workflow_id).state)
        except WorkflowNotFound:
            return False
