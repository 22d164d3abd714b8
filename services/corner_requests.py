"""Asking class monitors to bring a corner copy back when a reader reserves its title.

Kept apart from services.corners so the hold rules can call it without an import cycle."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.notifications import CORNER_BRING_BACK, enqueue
from services.notifications.kinds import CornerBringBackPayload
from services.titles import record_name
from storage.models import ClassCorner, ClassMonitor, Copy, CopyStatus, Hold, Reader, Record

BRING_BACK = CORNER_BRING_BACK.name


async def request_bring_back(
    session: AsyncSession, *, hold: Hold, record: Record, now: datetime
) -> str | None:
    """When no copy is on the shelf but one sits in a class corner, that class's monitors are
    asked (privately) to bring it to the desk. Returns the class asked, if any."""
    found = (
        await session.execute(
            select(Copy.id, Copy.barcode, ClassCorner.class_name)
            .join(ClassCorner, ClassCorner.id == Copy.corner_id)
            .where(Copy.record_pk == record.id, Copy.status == CopyStatus.IN_CORNER.value)
            .order_by(Copy.id)
            .limit(1)
        )
    ).first()
    if found is None:
        return None
    copy_id, barcode, class_name = found
    monitors = await session.scalars(
        select(ClassMonitor.reader_id)
        .join(Reader, Reader.id == ClassMonitor.reader_id)
        .where(ClassMonitor.class_name == class_name, Reader.active.is_(True))
        .order_by(ClassMonitor.reader_id)
    )
    for monitor_id in monitors:
        payload = CornerBringBackPayload(
            hold_id=hold.id,
            monitor_id=monitor_id,
            copy_id=copy_id,
            barcode=barcode,
            title=record_name(record),
            class_name=class_name,
        )
        await enqueue(session, CORNER_BRING_BACK, reader_id=monitor_id, payload=payload, now=now)
    return str(class_name)
