"""Compatibility: the untyped enqueue that features written before services/notifications/ use.
New code declares its kind in services/notifications/kinds.py and calls
``services.notifications.enqueue(session, KIND, reader_id=..., payload=...)``."""

from services.notifications.outbox import enqueue_raw as enqueue

__all__ = ["enqueue"]
