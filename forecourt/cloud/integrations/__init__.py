"""Signed webhooks to partner systems (owner app, digital key, after-sales CRM).

Only the outbox is re-exported here, so any service can add an event without importing the
routes or the delivery worker (``routes``, ``delivery`` and ``verify`` are imported by path).
"""

from __future__ import annotations

from forecourt.cloud.integrations.outbox import EventType, enqueue_event

__all__ = ["EventType", "enqueue_event"]
