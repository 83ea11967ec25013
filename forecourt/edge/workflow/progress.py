"""Live progress of workflows for progress bars: a snapshot type and a tiny publish/subscribe hub.

Durable facts (state, steps and their timings) come from the database; bytes sent during a
transfer are held in memory only (the car's confirmed position is the durable truth there).
Callbacks run on the runner's thread and must be quick; one that raises is logged and dropped
from nothing else (the workflow never fails because a console tab closed).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from forecourt.edge.workflow.states import WorkflowState
from forecourt.logging import get_logger

_log = get_logger("edge.workflow.progress")


@dataclass(frozen=True, slots=True)
class Progress:
    workflow_id: str
    vin: str
    state: WorkflowState
    status: str | None
    offline: bool
    bytes_done: int
    bytes_total: int
    #: Milliseconds spent reaching each state, by state name, in the order reached.
    timings_ms: Mapping[str, int] = field(default_factory=dict)
    error_code: str | None = None
    error_detail: str | None = None
    review_ids: tuple[str, ...] = ()


Subscriber = Callable[[Progress], None]


class ProgressHub:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._subscribers: dict[int, tuple[str | None, Subscriber]] = {}
        self._next = 0
        self._bytes: dict[str, tuple[int, int]] = {}

    def subscribe(self, callback: Subscriber, workflow_id: str | None = None) -> Callable[[], None]:
        """Call ``callback`` on every change (of one workflow, or all); returns unsubscribe."""
        with self._lock:
            key = self._next
            self._next += 1
            self._subscribers[key] = (workflow_id, callback)

        def unsubscribe() -> None:
            with self._lock:
                self._subscribers.pop(key, None)

        return unsubscribe

    def set_bytes(self, workflow_id: str, done: int, total: int) -> None:
        with self._lock:
            self._bytes[workflow_id] = (done, total)

    def bytes_of(self, workflow_id: str) -> tuple[int, int] | None:
        with self._lock:
            return self._bytes.get(workflow_id)

    def publish(self, progress: Progress) -> None:
        with self._lock:
            targets = [
                cb for wf, cb in self._subscribers.values() if wf in (None, progress.workflow_id)
            ]
        for callback in targets:
            try:
                callback(progress)
            except Exception:  # a subscriber's bug must not stop an activation
                _log.exception("progress_subscriber_failed", workflow_id=progress.workflow_id)
