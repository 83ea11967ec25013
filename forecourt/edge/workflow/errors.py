"""Errors of the activation workflow service, each naming the workflow it concerns.

::

    WorkflowError
    ├── WorkflowNotFound
    ├── StaleWorkflow          another runner moved the workflow first (optimistic concurrency)
    ├── WorkflowNotCancellable the car is applying or the workflow has ended
    └── StepFailed             a step ended the workflow; ``code`` is a FailureCode
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from forecourt.edge.workflow.states import FailureCode, WorkflowState


class WorkflowError(Exception):
    def __init__(self, workflow_id: str, message: str) -> None:
        super().__init__(f"workflow {workflow_id}: {message}")
        self.workflow_id = workflow_id


class WorkflowNotFound(WorkflowError):
    def __init__(self, workflow_id: str) -> None:
        super().__init__(workflow_id, "not found")


class StaleWorkflow(WorkflowError):
    def __init__(self, workflow_id: str, version: int) -> None:
        super().__init__(workflow_id, f"version {version} is stale; another runner moved it")
        self.version = version


class WorkflowNotCancellable(WorkflowError):
    def __init__(self, workflow_id: str, state: WorkflowState) -> None:
        super().__init__(workflow_id, f"cannot be cancelled in state {state.value}")
        self.state = state


class StepFailed(WorkflowError):
    """Raised inside a step to end the workflow with ``code`` and the evidence of why."""

    def __init__(
        self,
        workflow_id: str,
        code: FailureCode,
        detail: str,
        evidence: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(workflow_id, f"{code.value}: {detail}")
        self.code = code
        self.detail = detail
        self.evidence = dict(evidence or {})
