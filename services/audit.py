"""The audit log: who did what. Written inside the caller's unit of work."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import AuditEntry, utcnow


def actor_for(reader_id: int | None) -> str:
    """How the audit log names a reader (``Actor.audit_name`` for a bound reader, too)."""
    return f"reader:{reader_id}" if reader_id is not None else "cli"


def record_audit(
    session: AsyncSession,
    actor: str,
    action: str,
    detail: dict[str, Any] | None = None,
    *,
    now: datetime | None = None,
) -> None:
    session.add(AuditEntry(actor=actor, action=action, detail=detail or {}, at=now or utcnow()))
