"""The edge's activation workflow: a persisted, resumable state machine per car.

Public API::

    ActivationService(deps: Dependencies, settings: WorkflowSettings)
        .start / .start_batch / .progress / .subscribe / .list / .cancel / .review_decided
        .resume_all / .wait / .get / .shutdown
    WorkflowState, FailureCode, TRANSITIONS          the state machine (states.py)
    CarConnector, CarSession                          the port to the vehicle link (ports.py)
    PackageSource, CachedPackages                     the port to the package cache
    ConsentCapture                                    what the console captured

See ``docs/adr/0003-offline-activation.md`` for the offline model and the crash-safety argument.
"""

from forecourt.edge.workflow.consent import ConsentCapture
from forecourt.edge.workflow.errors import (
    StaleWorkflow,
    StepFailed,
    WorkflowError,
    WorkflowNotCancellable,
    WorkflowNotFound,
)
from forecourt.edge.workflow.packages import CachedPackages, PackageSource, PackageUnavailable
from forecourt.edge.workflow.ports import (
    ApplyOutcome,
    CarConnector,
    CarIdentity,
    CarSession,
    CarUnreachable,
    EcuIdentity,
    LinkError,
    NegativeResponse,
)
from forecourt.edge.workflow.progress import Progress, ProgressHub
from forecourt.edge.workflow.repository import StepRecord, WorkflowRecord, WorkflowStore
from forecourt.edge.workflow.runner import Dependencies, WorkflowSettings
from forecourt.edge.workflow.service import ActivationService, CarTarget
from forecourt.edge.workflow.states import (
    TRANSITIONS,
    FailureCode,
    IllegalTransition,
    WorkflowState,
)

__all__ = [
    "TRANSITIONS",
    "ActivationService",
    "ApplyOutcome",
    "CachedPackages",
    "CarConnector",
    "CarIdentity",
    "CarSession",
    "CarTarget",
    "CarUnreachable",
    "ConsentCapture",
    "Dependencies",
    "EcuIdentity",
    "FailureCode",
    "IllegalTransition",
    "LinkError",
    "NegativeResponse",
    "PackageSource",
    "PackageUnavailable",
    "Progress",
    "ProgressHub",
    "StaleWorkflow",
    "StepFailed",
    "StepRecord",
    "WorkflowError",
    "WorkflowNotCancellable",
    "WorkflowNotFound",
    "WorkflowRecord",
    "WorkflowSettings",
    "WorkflowState",
    "WorkflowStore",
]
