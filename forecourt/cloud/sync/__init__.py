"""Edge → cloud sync: the CloudEvents an edge's outbox pushes, held once and applied once."""

from forecourt.cloud.sync.events import (
    ACTIVATION_COMPLETED,
    CONSENT_RECORDED,
    EVENT_TYPES,
    OFFLINE_PACKAGE_USED,
    WORKFLOW_STEP,
)
from forecourt.cloud.sync.service import BatchResult, EventRefused, SyncService

__all__ = [
    "ACTIVATION_COMPLETED",
    "CONSENT_RECORDED",
    "EVENT_TYPES",
    "OFFLINE_PACKAGE_USED",
    "WORKFLOW_STEP",
    "BatchResult",
    "EventRefused",
    "SyncService",
]
