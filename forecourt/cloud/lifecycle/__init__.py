"""The car's life after the dealer: handover, service visits, change of owner, scrapping.

:mod:`.rules` (pure), :mod:`.service` (registry and ledger in one transaction), :mod:`.history`
(the provable history a buyer or insurer verifies offline), :mod:`.routes` (HTTP).
"""

from forecourt.cloud.lifecycle.history import history_document, verify_history
from forecourt.cloud.lifecycle.rules import LifecycleRefused
from forecourt.cloud.lifecycle.service import LifecycleResult, LifecycleService

__all__ = [
    "LifecycleRefused",
    "LifecycleResult",
    "LifecycleService",
    "history_document",
    "verify_history",
]
