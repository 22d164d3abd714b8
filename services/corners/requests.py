"""Asking class monitors to bring a corner copy back when a reader reserves its title, where a
copy is in the corner cycle, and taking one out of it when the desk lends it.

Kept apart from services.corners.swaps so the circulation rules can call it without an import cycle.

A copy is in the corner cycle from the moment its batch is sent until the librarian confirms it
back: on its way there (``in_transit`` with ``corner_id``, a pending 'in' item), in the corner
(``in_corner``), or on its way back (``in_corner`` with a pending 'out' item). None of these is on
the shelf (``CopyStatus.ON_SHELF`` is the only status that is)."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Integer, bindparam, delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.actor import Actor
from services.audit import record_audit
from services.corners.kinds import CORNER_BRING_BACK, CornerBringBackPayload
from services.notifications import enqueue
from services.titles import record_name
from storage.models import (
    ClassCorner,
    ClassMonitor,
    Copy,
    CopyStatus,
    CornerHolder,
    CornerSwap,
    CornerSwapItem,
    Hold,
    Reader,
    Record,
    SwapDirection,
    SwapOutcome,
    SwapStatus,
)

BRING_BACK = CORNER_BRING_BACK.name
# Statuses of a copy that belongs to a class corner (with ``corner_id`` set) and could be lent
# once taken out of it.
CORNER_STATUSES = (CopyStatus.IN_TRANSIT.value, CopyStatus.IN_CORNER.value)


class CornerStage(enum.StrEnum):
    TO = "to"  # sent, not yet confirmed by a monitor
    IN = "in"  # in the corner
    BACK = "back"  # sent back with a batch, not yet confirmed at the desk


@dataclass(frozen=True, slots=True)
class CornerPlace:
    class_name: str
    stage: CornerStage


def in_corner_cycle(copy: Copy) -> bool:
    return copy.corner_id is not None and copy.status in CORNER_STATUSES


async def corner_place(session: AsyncSession, copy: Copy) -> CornerPlace | None:
    """Where a copy of the corner cycle is (None for any other copy)."""
    if not in_corner_cycle(copy):
        return None
    class_name = await session.scalar(
        select(ClassCorner.class_name).where(ClassCorner.id == copy.corner_id)
    )
    if copy.status == CopyStatus.IN_TRANSIT.value:
        return CornerPlace(str(class_name), CornerStage.TO)
    back = await session.scalar(
        select(CornerSwapItem.id)
        .join(CornerSwap, CornerSwap.id == CornerSwapItem.swap_id)
        .where(CornerSwapItem.copy_id == copy.id, CornerSwapItem.outcome.is_(None))
        .where(CornerSwapItem.direction == SwapDirection.OUT.value)
        .where(CornerSwap.status == SwapStatus.PROPOSED.value)
        .limit(1)
    )
    return CornerPlace(str(class_name), CornerStage.BACK if back else CornerStage.IN)


async def corner_places(session: AsyncSession, record_pk: int) -> list[CornerPlace]:
    """The class corners a title's copies are in or on their way to (for the book card)."""
    rows = await session.execute(
        select(ClassCorner.class_name, Copy.status)
        .join(Copy, Copy.corner_id == ClassCorner.id)
        .where(Copy.record_pk == record_pk, Copy.status.in_(CORNER_STATUSES))
        .distinct()
        .order_by(ClassCorner.class_name, Copy.status)
    )
    places: dict[str, CornerStage] = {}
    for class_name, status in rows:
        stage = CornerStage.TO if status == CopyStatus.IN_TRANSIT.value else CornerStage.IN
        if places.get(class_name) != CornerStage.IN:
            places[class_name] = stage
    return [CornerPlace(name, stage) for name, stage in places.items()]


async def take_out_of_corner(
    session: AsyncSession, copy: Copy, *, actor: Actor, now: datetime
) -> str | None:
    """A corner copy is at the desk and is being lent: it leaves its corner and its batch for
    good (a copy on its way there is dropped from the batch, one on its way back counts as
    received), so the monitor's 收到 and the corner's lists never show it again. The copy is
    left on the shelf for the caller to lend. Returns the class it left, or None."""
    if not in_corner_cycle(copy):
        return None
    class_name = str(
        await session.scalar(select(ClassCorner.class_name).where(ClassCorner.id == copy.corner_id))
    )
    items = list(
        await session.scalars(
            select(CornerSwapItem)
            .join(CornerSwap, CornerSwap.id == CornerSwapItem.swap_id)
            .where(CornerSwapItem.copy_id == copy.id, CornerSwapItem.outcome.is_(None))
            .where(CornerSwap.status == SwapStatus.PROPOSED.value)
            .with_for_update()
        )
    )
    swaps = {item.swap_id for item in items}
    for item in items:
        if item.direction == SwapDirection.IN.value:
            await session.delete(item)
        else:
            item.outcome = SwapOutcome.RECEIVED.value
            item.confirmed_at = now
            item.confirmed_by = actor.reader_id
    await session.execute(delete(CornerHolder).where(CornerHolder.copy_id == copy.id))
    copy.corner_id = None
    copy.status = CopyStatus.ON_SHELF.value
    await session.flush()
    for swap_id in sorted(swaps):
        pending = await session.scalar(
            select(func.count(CornerSwapItem.id)).where(
                CornerSwapItem.swap_id == swap_id, CornerSwapItem.outcome.is_(None)
            )
        )
        if not pending:
            swap = await session.get_one(CornerSwap, swap_id, with_for_update=True)
            swap.status = SwapStatus.CONFIRMED.value
            swap.confirmed_at = now
            swap.confirmed_by = actor.reader_id
    await session.flush()
    record_audit(
        session,
        actor.audit_name,
        "corner_take_out",
        {"barcode": copy.barcode, "class_name": class_name, "swaps": sorted(swaps)},
        now=now,
    )
    return class_name


# Every hold placed runs these: built once (building them cost more than running them).
_IN_A_CORNER = (
    select(Copy.id, Copy.barcode, ClassCorner.class_name)
    .join(ClassCorner, ClassCorner.id == Copy.corner_id)
    .where(Copy.record_pk == bindparam("record_pk", type_=Integer))
    .where(Copy.status.in_(CORNER_STATUSES))
    # A copy already in a corner first; one still on its way there after.
    .order_by((Copy.status == CopyStatus.IN_TRANSIT.value), Copy.id)
    .limit(1)
)
_COMING_BACK = (
    select(CornerSwapItem.id)
    .join(CornerSwap, CornerSwap.id == CornerSwapItem.swap_id)
    .join(Copy, Copy.id == CornerSwapItem.copy_id)
    .where(Copy.record_pk == bindparam("record_pk", type_=Integer))
    .where(CornerSwapItem.outcome.is_(None))
    .where(CornerSwapItem.direction == SwapDirection.OUT.value)
    .where(CornerSwap.status == SwapStatus.PROPOSED.value)
    .where(Copy.status == CopyStatus.IN_CORNER.value)
    .limit(1)
)


async def request_bring_back(
    session: AsyncSession, *, hold: Hold, record: Record, now: datetime
) -> str | None:
    """When no copy is on the shelf but one is in a class corner (or on its way there), that
    class's monitors are asked (privately) to bring it to the desk. Nobody is asked when a copy
    is already on its way back with a batch: it comes to this hold when the desk confirms it.
    Returns the class asked, if any."""
    # No copy in a corner (the usual case): nothing to ask, and none coming back either.
    found = (await session.execute(_IN_A_CORNER, {"record_pk": record.id})).first()
    if found is None:
        return None
    coming_back = await session.scalar(_COMING_BACK, {"record_pk": record.id})
    if coming_back is not None:
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
