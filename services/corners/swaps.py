"""Class reading corners (班级图书角): monitors, batches of books, and confirming every move.

A swap is one batch for one class: its 'in' items go from the library to the corner (confirmed by
a monitor of that class), its 'out' items are what the corner held when the batch was sent, going
back to the library (confirmed by the librarian at the desk). Sending a batch takes its copies off
the shelf (``in_transit``, with the corner they go to); where they end up changes only when their
item is confirmed; a missing or damaged copy reaches the librarians at once. A class without a
monitor gets no batch: nobody could confirm it (services/corners/requests.py says where a copy of
the corner cycle is).

Authority lives here, not in the handlers: every action takes the acting ``Actor`` (``None`` for
an unbound Telegram user) and refuses anyone else with a catalogue message.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.actor import (
    Actor,
    monitor_or_librarian,
    own_class,
    require_librarian,
    require_monitor,
)
from services.audit import record_audit
from services.circulation import find_copy_by_barcode, lock_record, pass_copy_on, reader_by_card
from services.codes import clean_code
from services.corners.kinds import (
    CORNER_BATCH,
    CORNER_DISCREPANCY,
    CornerBatchPayload,
    CornerDiscrepancyPayload,
)
from services.corners.requests import CORNER_STATUSES, in_corner_cycle, take_out_of_corner
from services.errors import ServiceError
from services.i18n import t
from services.notifications import enqueue
from services.policy import LoanPolicy
from services.school_order import class_key
from services.scopes import resolve_class
from services.titles import book_names, record_name
from storage.models import (
    ClassCorner,
    ClassMonitor,
    CopyStatus,
    CornerHolder,
    CornerSwap,
    CornerSwapItem,
    Hold,
    HoldStatus,
    Reader,
    Record,
    Role,
    utcnow,
)
from storage.models import Copy as CopyRow

# Named by the chat's batch views too (handlers/corners/), which reach storage only through here.
from storage.models import SwapDirection as SwapDirection
from storage.models import SwapOutcome as SwapOutcome
from storage.models import SwapStatus as SwapStatus

DEFAULT_MONITORS_PER_CLASS = 2
# A proposal avoids what this class had in its corner within this window.
PROPOSAL_MEMORY = timedelta(days=365)
MAX_BATCH = 300
BARCODE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{1,39}$")

DISCREPANCY = CORNER_DISCREPANCY.name
BATCH_SENT = CORNER_BATCH.name

# Grade level -> share of each CLC main class in a proposed batch (the rest: anything).
# Junior forms read more stories and popular science; senior forms more history and ideas.
JUNIOR_MIX = {"I": 0.45, "K": 0.15, "N": 0.05, "O": 0.05, "P": 0.05, "Q": 0.05, "G": 0.05}
SENIOR_MIX = {"I": 0.35, "K": 0.15, "B": 0.1, "D": 0.05, "O": 0.05, "Q": 0.05, "T": 0.05}
OPEN_SWAP = (SwapStatus.DRAFT.value, SwapStatus.PROPOSED.value)
# A copy that arrived in a corner (a damaged one waits there for the next batch to take it back).
IN_THE_CORNER = (CopyStatus.IN_CORNER.value, CopyStatus.DAMAGED.value)


def grade_of(class_name: str) -> str:
    """'高一(3)班' -> '高一'."""
    return re.split(r"[(（\d]", class_name, maxsplit=1)[0].strip()


# --- monitors -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MonitorView:
    class_name: str
    card_no: str
    name: str
    reader_id: int


async def appoint_monitor(
    session: AsyncSession,
    actor: Actor | None,
    *,
    card_no: str,
    class_name: str,
    limit: int = DEFAULT_MONITORS_PER_CLASS,
    now: datetime | None = None,
) -> MonitorView:
    actor = require_librarian(actor)
    now = now or utcnow()
    class_name = await resolve_class(session, class_name)
    reader = await reader_by_card(session, card_no)
    if not reader.active:
        raise ServiceError("reader.inactive", name=reader.name)
    if reader.role != Role.STUDENT.value or reader.class_name != class_name:
        raise ServiceError("corners.monitor_not_in_class", name=reader.name, class_name=class_name)
    await _corner_for(session, class_name)  # locks the class: two appointments queue up
    current = list(
        await session.scalars(
            select(ClassMonitor.reader_id).where(ClassMonitor.class_name == class_name)
        )
    )
    if reader.id in current:
        raise ServiceError("corners.already_monitor", name=reader.name, class_name=class_name)
    if len(current) >= limit:
        raise ServiceError("corners.monitor_limit", class_name=class_name, limit=limit)
    session.add(ClassMonitor(class_name=class_name, reader_id=reader.id, appointed_at=now))
    await session.flush()
    record_audit(
        session,
        actor.audit_name,
        "corner_monitor_add",
        {"card_no": reader.card_no, "class_name": class_name},
        now=now,
    )
    return MonitorView(class_name, reader.card_no, reader.name, reader.id)


async def remove_monitor(
    session: AsyncSession, actor: Actor | None, *, card_no: str, now: datetime | None = None
) -> list[str]:
    """Removes the reader from every class they monitor; returns those classes."""
    actor = require_librarian(actor)
    reader = await reader_by_card(session, card_no)
    rows = list(
        await session.scalars(select(ClassMonitor).where(ClassMonitor.reader_id == reader.id))
    )
    if not rows:
        raise ServiceError("corners.not_monitor", name=reader.name)
    classes = sorted((row.class_name for row in rows), key=class_key)
    for row in rows:
        await session.delete(row)
    await session.flush()
    record_audit(
        session,
        actor.audit_name,
        "corner_monitor_remove",
        {"card_no": reader.card_no, "classes": classes},
        now=now,
    )
    return classes


async def list_monitors(
    session: AsyncSession, actor: Actor | None, class_name: str | None = None
) -> list[MonitorView]:
    require_librarian(actor)
    query = (
        select(ClassMonitor.class_name, Reader.card_no, Reader.name, Reader.id)
        .join(Reader, Reader.id == ClassMonitor.reader_id)
        .order_by(Reader.card_no)
    )
    if class_name:
        query = query.where(ClassMonitor.class_name == await resolve_class(session, class_name))
    found = [MonitorView(*row) for row in await session.execute(query)]
    return sorted(found, key=lambda m: class_key(m.class_name))


async def _monitors_of(session: AsyncSession, class_name: str) -> list[int]:
    rows = await session.scalars(
        select(ClassMonitor.reader_id)
        .join(Reader, Reader.id == ClassMonitor.reader_id)
        .where(
            ClassMonitor.class_name == class_name,
            Reader.active.is_(True),
            Reader.class_name == class_name,
        )
        .order_by(ClassMonitor.reader_id)
    )
    return list(rows)


# --- corners and batches --------------------------------------------------------------------


async def _corner_for(
    session: AsyncSession, class_name: str, *, create: bool = True
) -> ClassCorner:
    corner = await session.scalar(
        select(ClassCorner).where(ClassCorner.class_name == class_name).with_for_update()
    )
    if corner is None:
        if not create:
            raise ServiceError("corners.no_corner", class_name=class_name)
        known = await session.scalar(
            select(Reader.id).where(Reader.class_name == class_name).limit(1)
        )
        if known is None:
            raise ServiceError("corners.unknown_class", class_name=class_name)
        corner = ClassCorner(class_name=class_name)
        session.add(corner)
        await session.flush()
    return corner


@dataclass(frozen=True, slots=True)
class ItemView:
    item_id: int
    copy_id: int
    barcode: str
    title: str
    direction: str
    outcome: str | None


@dataclass(frozen=True, slots=True)
class SwapView:
    swap_id: int
    class_name: str
    status: str
    items: tuple[ItemView, ...]

    def of(self, direction: SwapDirection, *, pending: bool = False) -> list[ItemView]:
        return [
            i
            for i in self.items
            if i.direction == direction.value and (not pending or i.outcome is None)
        ]


@dataclass(frozen=True, slots=True)
class BarcodeProblem:
    line: int
    barcode: str
    key: str


@dataclass(frozen=True, slots=True)
class AddResult:
    view: SwapView
    added: list[str]
    problems: list[BarcodeProblem] = field(default_factory=list)


async def swap_view(session: AsyncSession, swap_id: int) -> SwapView:
    swap = await session.get_one(CornerSwap, swap_id)
    corner = await session.get_one(ClassCorner, swap.corner_id)
    rows = await session.execute(
        select(
            CornerSwapItem.id,
            CopyRow.id,
            CopyRow.barcode,
            Record.id,
            CornerSwapItem.direction,
            CornerSwapItem.outcome,
        )
        .join(CopyRow, CopyRow.id == CornerSwapItem.copy_id)
        .join(Record, Record.id == CopyRow.record_pk)
        .where(CornerSwapItem.swap_id == swap_id)
        .order_by(CornerSwapItem.direction, CornerSwapItem.id)
    )
    listed = list(rows)
    names = await book_names(session, (r[3] for r in listed))
    items = tuple(ItemView(i, c, b, names[pk], d, o) for i, c, b, pk, d, o in listed)
    return SwapView(swap.id, corner.class_name, swap.status, items)


async def _open_swap(
    session: AsyncSession, corner_id: int, status: SwapStatus
) -> CornerSwap | None:
    swap: CornerSwap | None = await session.scalar(
        select(CornerSwap)
        .where(CornerSwap.corner_id == corner_id, CornerSwap.status == status.value)
        .order_by(CornerSwap.id.desc())
        .limit(1)
        .with_for_update()
    )
    return swap


async def open_draft(
    session: AsyncSession, actor: Actor | None, *, class_name: str, now: datetime | None = None
) -> SwapView:
    """The class's draft batch (a new one when there is none), for barcodes to be added to."""
    actor = require_librarian(actor)
    now = now or utcnow()
    corner = await _corner_for(session, await resolve_class(session, class_name))
    await _require_monitors(session, corner.class_name)
    draft = await _open_swap(session, corner.id, SwapStatus.DRAFT)
    if draft is None:
        draft = CornerSwap(
            corner_id=corner.id,
            status=SwapStatus.DRAFT.value,
            created_at=now,
            created_by=actor.reader_id,
        )
        session.add(draft)
        await session.flush()
        record_audit(
            session,
            actor.audit_name,
            "corner_batch_draft",
            {"swap_id": draft.id, "class_name": corner.class_name},
            now=now,
        )
    return await swap_view(session, draft.id)


async def _require_monitors(session: AsyncSession, class_name: str) -> None:
    """A batch goes to the class's monitors: without one, nobody could confirm it arrived."""
    if not await _monitors_of(session, class_name):
        raise ServiceError("corners.no_monitor", class_name=class_name)


async def current_draft(session: AsyncSession, actor: Actor | None) -> SwapView | None:
    """The draft this librarian opened last (barcodes they scan go there)."""
    if actor is None or not actor.is_librarian:
        return None
    swap_id = await session.scalar(
        select(CornerSwap.id)
        .where(CornerSwap.status == SwapStatus.DRAFT.value)
        .where(CornerSwap.created_by == actor.reader_id)
        .order_by(CornerSwap.created_at.desc(), CornerSwap.id.desc())
        .limit(1)
    )
    return await swap_view(session, swap_id) if swap_id is not None else None


async def _batch_problem(session: AsyncSession, copy: CopyRow | None) -> str | None:
    """Why this copy cannot go into a batch for that corner, or None."""
    if copy is None:
        return "corners.problem_unknown"
    busy = await session.scalar(
        select(CornerSwapItem.id)
        .join(CornerSwap, CornerSwap.id == CornerSwapItem.swap_id)
        .where(CornerSwapItem.copy_id == copy.id, CornerSwapItem.outcome.is_(None))
        .where(CornerSwap.status.in_(OPEN_SWAP))
        .limit(1)
    )
    if busy is not None:
        return "corners.problem_in_other_batch"
    if copy.status != CopyStatus.ON_SHELF.value:
        return "corners.problem_not_on_shelf"
    return None


async def add_barcodes(
    session: AsyncSession,
    actor: Actor | None,
    *,
    swap_id: int,
    barcodes: Sequence[tuple[int, str]],
    now: datetime | None = None,
) -> AddResult:
    """Add (line number, barcode) pairs to a draft; what cannot go in is reported by line."""
    actor = require_librarian(actor)
    now = now or utcnow()
    swap = await session.get(CornerSwap, swap_id, with_for_update=True)
    if swap is None or swap.status != SwapStatus.DRAFT.value:
        raise ServiceError("corners.no_draft")
    present = set(
        await session.scalars(
            select(CornerSwapItem.copy_id).where(CornerSwapItem.swap_id == swap.id)
        )
    )
    added: list[str] = []
    problems: list[BarcodeProblem] = []
    for line, raw in barcodes:
        barcode = clean_code(raw)
        copy = await find_copy_by_barcode(session, barcode)
        problem = await _batch_problem(session, copy)
        if copy is not None and copy.id in present:
            problem = "corners.problem_duplicate"
        if problem is None and len(present) >= MAX_BATCH:
            problem = "corners.problem_batch_full"
        if problem is not None or copy is None:
            problems.append(BarcodeProblem(line, barcode, problem or "corners.problem_unknown"))
            continue
        session.add(
            CornerSwapItem(swap_id=swap.id, copy_id=copy.id, direction=SwapDirection.IN.value)
        )
        present.add(copy.id)
        added.append(copy.barcode)
    await session.flush()
    if added:
        record_audit(
            session,
            actor.audit_name,
            "corner_batch_add",
            {"swap_id": swap.id, "barcodes": added},
            now=now,
        )
    return AddResult(await swap_view(session, swap.id), added, problems)


def mix_for(class_name: str) -> dict[str, float]:
    return JUNIOR_MIX if grade_of(class_name).startswith("初") else SENIOR_MIX


async def propose(
    session: AsyncSession,
    actor: Actor | None,
    *,
    class_name: str,
    size: int,
    now: datetime | None = None,
) -> AddResult:
    """Shuxiang's proposal into the class's draft: copies on the shelf now, one per title, a CLC
    mix suited to the grade, nothing this class had in the last year, nothing others wait for."""
    actor = require_librarian(actor)
    now = now or utcnow()
    if not 1 <= size <= MAX_BATCH:
        raise ServiceError("corners.bad_size", limit=MAX_BATCH)
    draft = await open_draft(session, actor, class_name=class_name, now=now)
    corner = await _corner_for(session, draft.class_name)
    had = (
        select(CopyRow.record_pk)
        .join(CornerSwapItem, CornerSwapItem.copy_id == CopyRow.id)
        .join(CornerSwap, CornerSwap.id == CornerSwapItem.swap_id)
        .where(CornerSwap.corner_id == corner.id, CornerSwap.created_at >= now - PROPOSAL_MEMORY)
    )
    waited_for = select(Hold.record_pk).where(Hold.status == HoldStatus.WAITING.value)
    in_batches = (
        select(CornerSwapItem.copy_id)
        .join(CornerSwap, CornerSwap.id == CornerSwapItem.swap_id)
        .where(CornerSwap.status.in_(OPEN_SWAP), CornerSwapItem.outcome.is_(None))
    )
    rows = await session.execute(
        select(func.min(CopyRow.barcode), Record.clc)
        .join(Record, Record.id == CopyRow.record_pk)
        .where(CopyRow.status == CopyStatus.ON_SHELF.value)
        .where(CopyRow.record_pk.not_in(had), CopyRow.record_pk.not_in(waited_for))
        .where(CopyRow.id.not_in(in_batches))
        .group_by(Record.id, Record.clc, Record.loan_count)
        .order_by(Record.loan_count.desc(), Record.id)
    )
    chosen = pick_mix([(barcode, clc) for barcode, clc in rows], mix_for(corner.class_name), size)
    result = await add_barcodes(
        session,
        actor,
        swap_id=draft.swap_id,
        barcodes=list(enumerate(chosen, 1)),
        now=now,
    )
    if not result.added:
        raise ServiceError("corners.nothing_to_propose", class_name=corner.class_name)
    return result


def pick_mix(
    candidates: Sequence[tuple[str, str | None]], mix: dict[str, float], size: int
) -> list[str]:
    """Fill each CLC main class's share in candidate order, then top up from whatever is left."""
    by_class: dict[str, list[str]] = {}
    for barcode, clc in candidates:
        by_class.setdefault((clc or "?")[:1].upper(), []).append(barcode)
    chosen: list[str] = []
    for letter, share in mix.items():
        chosen += by_class.get(letter, [])[: int(size * share)]
    taken = set(chosen)
    rest = [b for b, _ in candidates if b not in taken]
    return (chosen + rest)[:size]


async def cancel_draft(
    session: AsyncSession, actor: Actor | None, *, swap_id: int, now: datetime | None = None
) -> SwapView:
    actor = require_librarian(actor)
    swap = await session.get(CornerSwap, swap_id, with_for_update=True)
    if swap is None or swap.status != SwapStatus.DRAFT.value:
        raise ServiceError("corners.no_draft")
    swap.status = SwapStatus.CANCELLED.value
    await session.flush()
    record_audit(session, actor.audit_name, "corner_batch_cancel", {"swap_id": swap.id}, now=now)
    return await swap_view(session, swap.id)


async def send_batch(
    session: AsyncSession, actor: Actor | None, *, swap_id: int, now: datetime | None = None
) -> SwapView:
    """The draft goes out: what the corner holds now comes back with it; monitors are told."""
    actor = require_librarian(actor)
    now = now or utcnow()
    swap = await session.get(CornerSwap, swap_id, with_for_update=True)
    if swap is None or swap.status != SwapStatus.DRAFT.value:
        raise ServiceError("corners.no_draft")
    corner = await _corner_for(
        session, (await session.get_one(ClassCorner, swap.corner_id)).class_name
    )
    if await _open_swap(session, corner.id, SwapStatus.PROPOSED) is not None:
        raise ServiceError("corners.previous_open", class_name=corner.class_name)
    await _require_monitors(session, corner.class_name)
    # A copy lent (or reserved) since it was scanned into the draft stays where it is.
    items = list(
        await session.scalars(select(CornerSwapItem).where(CornerSwapItem.swap_id == swap.id))
    )
    incoming: list[CopyRow] = []
    for item in items:
        copy = await session.get_one(CopyRow, item.copy_id, with_for_update=True)
        if copy.status == CopyStatus.ON_SHELF.value:
            incoming.append(copy)
        else:
            await session.delete(item)
    held = list(
        await session.scalars(
            select(CopyRow.id)
            .where(CopyRow.corner_id == corner.id)
            .where(CopyRow.status.in_(IN_THE_CORNER))
            .order_by(CopyRow.id)
        )
    )
    if not incoming and not held:
        raise ServiceError("corners.empty_batch")
    for copy_id in held:
        session.add(
            CornerSwapItem(swap_id=swap.id, copy_id=copy_id, direction=SwapDirection.OUT.value)
        )
    for copy in incoming:  # off the shelf from now on: on its way to this corner
        copy.status, copy.corner_id = CopyStatus.IN_TRANSIT.value, corner.id
    swap.status = SwapStatus.PROPOSED.value
    await session.flush()
    record_audit(
        session,
        actor.audit_name,
        "corner_batch_send",
        {
            "swap_id": swap.id,
            "class_name": corner.class_name,
            "in": len(incoming),
            "out": len(held),
        },
        now=now,
    )
    for monitor_id in await _monitors_of(session, corner.class_name):
        payload = CornerBatchPayload(
            swap_id=swap.id,
            monitor_id=monitor_id,
            class_name=corner.class_name,
            incoming=len(incoming),
            outgoing=len(held),
        )
        await enqueue(session, CORNER_BATCH, reader_id=monitor_id, payload=payload, now=now)
    return await swap_view(session, swap.id)


async def open_batch(session: AsyncSession, class_name: str) -> SwapView | None:
    corner = await session.scalar(select(ClassCorner).where(ClassCorner.class_name == class_name))
    if corner is None:
        return None
    swap_id = await session.scalar(
        select(CornerSwap.id)
        .where(CornerSwap.corner_id == corner.id, CornerSwap.status == SwapStatus.PROPOSED.value)
        .order_by(CornerSwap.id.desc())
        .limit(1)
    )
    return await swap_view(session, swap_id) if swap_id is not None else None


async def batch_for(
    session: AsyncSession, actor: Actor | None, class_name: str | None = None
) -> SwapView | None:
    """The open batch of a class: monitors see their own class, librarians any class."""
    if class_name is None:
        class_name = own_class(actor)
    class_name = await resolve_class(session, class_name)
    monitor_or_librarian(actor, class_name)
    return await open_batch(session, class_name)


# --- confirming -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Confirmed:
    item: ItemView
    swap_id: int
    class_name: str
    swap_done: bool
    copy_status: str


def _authorise(actor: Actor | None, direction: str, class_name: str) -> Actor:
    """Monitors confirm what arrives in their corner; the librarian what comes back to the desk."""
    if direction == SwapDirection.IN.value:
        return require_monitor(actor, class_name)
    return require_librarian(actor)


async def confirm_item(
    session: AsyncSession,
    actor: Actor | None,
    *,
    item_id: int,
    outcome: SwapOutcome,
    policy: LoanPolicy,
    now: datetime | None = None,
) -> Confirmed:
    now = now or utcnow()
    item = await session.get(CornerSwapItem, item_id)
    if item is None:
        raise ServiceError("corners.no_item")
    swap = await session.get_one(CornerSwap, item.swap_id)
    corner = await session.get_one(ClassCorner, swap.corner_id)
    actor = _authorise(actor, item.direction, corner.class_name)
    if swap.status != SwapStatus.PROPOSED.value:
        raise ServiceError("corners.batch_closed")
    copy = await session.get_one(CopyRow, item.copy_id)
    record = await lock_record(session, copy.record_pk)
    await session.refresh(item, with_for_update=True)
    await session.refresh(copy, with_for_update=True)
    if item.outcome is not None:
        raise ServiceError(
            "corners.already_confirmed", barcode=copy.barcode, outcome=_outcome_word(item.outcome)
        )
    await _apply(session, item, copy, record, corner, outcome, policy, now)
    item.outcome = outcome.value
    item.confirmed_at = now
    item.confirmed_by = actor.reader_id
    await session.flush()
    record_audit(
        session,
        actor.audit_name,
        "corner_confirm",
        {
            "swap_id": swap.id,
            "item_id": item.id,
            "barcode": copy.barcode,
            "direction": item.direction,
            "outcome": outcome.value,
            "copy_status": copy.status,
        },
        now=now,
    )
    if outcome != SwapOutcome.RECEIVED:
        await _alert_librarians(session, item, copy, record, corner, outcome, now)
    done = await _close_if_done(session, swap, actor, now)
    view = ItemView(
        item.id, copy.id, copy.barcode, record_name(record), item.direction, item.outcome
    )
    return Confirmed(view, swap.id, corner.class_name, done, copy.status)


def _outcome_word(outcome: str) -> str:
    from services.i18n import t

    return t(f"corners.outcome_{outcome}")


async def _apply(
    session: AsyncSession,
    item: CornerSwapItem,
    copy: CopyRow,
    record: Record,
    corner: ClassCorner,
    outcome: SwapOutcome,
    policy: LoanPolicy,
    now: datetime,
) -> None:
    """The copy's new status: exactly what was confirmed."""
    if item.direction == SwapDirection.IN.value:
        _apply_arrival(copy, record, corner, outcome)
        return
    await session.execute(delete(CornerHolder).where(CornerHolder.copy_id == copy.id))
    copy.corner_id = None
    if outcome == SwapOutcome.MISSING:
        copy.status = CopyStatus.LOST.value
    elif outcome == SwapOutcome.DAMAGED or copy.status == CopyStatus.DAMAGED.value:
        # Reported damaged now or on arrival: back at the library, but for repair.
        copy.status = CopyStatus.DAMAGED.value
    else:
        # Back at the library: the first reader waiting for the title gets it.
        await pass_copy_on(session, copy, record, policy, now)


def _apply_arrival(
    copy: CopyRow, record: Record, corner: ClassCorner, outcome: SwapOutcome
) -> None:
    movable = copy.status in (CopyStatus.ON_SHELF.value, CopyStatus.IN_TRANSIT.value)
    if outcome == SwapOutcome.MISSING:
        # Lent at the desk after the batch was packed: it is with a reader, not lost.
        if movable:
            copy.status, copy.corner_id = CopyStatus.LOST.value, None
        return
    if not movable:
        raise ServiceError("corners.copy_busy", barcode=copy.barcode, title=record_name(record))
    copy.corner_id = corner.id
    copy.status = (
        CopyStatus.IN_CORNER.value if outcome == SwapOutcome.RECEIVED else CopyStatus.DAMAGED.value
    )


async def _alert_librarians(
    session: AsyncSession,
    item: CornerSwapItem,
    copy: CopyRow,
    record: Record,
    corner: ClassCorner,
    outcome: SwapOutcome,
    now: datetime,
) -> None:
    librarians = await session.scalars(
        select(Reader.id).where(Reader.role == Role.LIBRARIAN.value, Reader.active.is_(True))
    )
    for librarian_id in librarians:
        payload = CornerDiscrepancyPayload(
            item_id=item.id,
            librarian_id=librarian_id,
            class_name=corner.class_name,
            barcode=copy.barcode,
            title=record_name(record),
            direction=t(f"notify_corners.direction_{item.direction}"),
            outcome=t(f"corners.outcome_{outcome.value}"),
        )
        await enqueue(session, CORNER_DISCREPANCY, reader_id=librarian_id, payload=payload, now=now)


async def _close_if_done(
    session: AsyncSession, swap: CornerSwap, actor: Actor, now: datetime
) -> bool:
    pending = await session.scalar(
        select(func.count(CornerSwapItem.id)).where(
            CornerSwapItem.swap_id == swap.id, CornerSwapItem.outcome.is_(None)
        )
    )
    if pending:
        return False
    await session.refresh(swap, with_for_update=True)
    swap.status = SwapStatus.CONFIRMED.value
    swap.confirmed_at = now
    swap.confirmed_by = actor.reader_id
    record_audit(session, actor.audit_name, "corner_batch_done", {"swap_id": swap.id}, now=now)
    return True


@dataclass(frozen=True, slots=True)
class BarcodeConfirmation:
    confirmed: list[Confirmed]
    problems: list[BarcodeProblem]
    brought_back: list[tuple[str, str]]  # (barcode, the class whose corner it left)


async def confirm_barcodes(
    session: AsyncSession,
    actor: Actor | None,
    *,
    barcodes: Sequence[tuple[int, str]],
    policy: LoanPolicy,
    class_name: str | None = None,
    now: datetime | None = None,
) -> BarcodeConfirmation:
    """Barcodes sent or scanned count as 收到. A monitor confirms what arrives in their corner;
    the librarian what comes back to the desk, including single copies brought back for a hold."""
    now = now or utcnow()
    if actor is None:
        raise ServiceError("actor.need_binding")
    direction = SwapDirection.OUT if actor.is_librarian else SwapDirection.IN
    if direction == SwapDirection.IN:
        class_name = own_class(actor)
    confirmed: list[Confirmed] = []
    problems: list[BarcodeProblem] = []
    brought: list[tuple[str, str]] = []
    for line, raw in barcodes:
        barcode = clean_code(raw)  # as stored (services/codes.py), whatever the scanner typed
        item_id = await _pending_item(session, barcode, direction, class_name)
        if item_id is not None:
            confirmed.append(
                await confirm_item(
                    session,
                    actor,
                    item_id=item_id,
                    outcome=SwapOutcome.RECEIVED,
                    policy=policy,
                    now=now,
                )
            )
        elif direction == SwapDirection.OUT and await _in_some_corner(session, barcode):
            left = await receive_from_corner(
                session, actor, barcode=barcode, policy=policy, now=now
            )
            brought.append((barcode, left))
        else:
            problems.append(BarcodeProblem(line, barcode, "corners.problem_not_in_batch"))
    return BarcodeConfirmation(confirmed, problems, brought)


async def _pending_item(
    session: AsyncSession, barcode: str, direction: SwapDirection, class_name: str | None
) -> int | None:
    query = (
        select(CornerSwapItem.id)
        .join(CornerSwap, CornerSwap.id == CornerSwapItem.swap_id)
        .join(ClassCorner, ClassCorner.id == CornerSwap.corner_id)
        .join(CopyRow, CopyRow.id == CornerSwapItem.copy_id)
        .where(CopyRow.barcode == barcode, CornerSwapItem.direction == direction.value)
        .where(CornerSwapItem.outcome.is_(None), CornerSwap.status == SwapStatus.PROPOSED.value)
    )
    if class_name:
        query = query.where(ClassCorner.class_name == class_name)
    item_id: int | None = await session.scalar(query.limit(1))
    return item_id


async def _in_some_corner(session: AsyncSession, barcode: str) -> bool:
    """In a corner, or on its way to one (a monitor may bring it before confirming it)."""
    found = await session.scalar(
        select(CopyRow.id).where(
            CopyRow.barcode == barcode,
            CopyRow.corner_id.is_not(None),
            CopyRow.status.in_(CORNER_STATUSES),
        )
    )
    return found is not None


async def receive_from_corner(
    session: AsyncSession,
    actor: Actor | None,
    *,
    barcode: str,
    policy: LoanPolicy,
    now: datetime | None = None,
) -> str:
    """A monitor brought one corner copy to the desk (usually for a hold): it leaves the corner."""
    actor = require_librarian(actor)
    now = now or utcnow()
    copy = await find_copy_by_barcode(session, barcode)
    if copy is None or not in_corner_cycle(copy):
        raise ServiceError("corners.not_in_corner", barcode=barcode.strip())
    record = await lock_record(session, copy.record_pk)
    await session.refresh(copy, with_for_update=True)
    # Out of its corner and of any batch it was in (services/corners/requests.py).
    class_name = await take_out_of_corner(session, copy, actor=actor, now=now)
    hold = await pass_copy_on(session, copy, record, policy, now)
    record_audit(
        session,
        actor.audit_name,
        "corner_bring_back",
        {
            "barcode": copy.barcode,
            "class_name": class_name,
            "hold_id": hold.id if hold else None,
        },
        now=now,
    )
    return str(class_name)


# --- who has a corner book (optional) -------------------------------------------------------


async def record_holder(
    session: AsyncSession,
    actor: Actor | None,
    *,
    barcode: str,
    card_no: str | None,
    now: datetime | None = None,
) -> tuple[str, str | None]:
    """A monitor notes who took a corner book (card given) or that it is back (no card)."""
    now = now or utcnow()
    class_name = own_class(actor)
    actor = require_monitor(actor, class_name)
    copy = await find_copy_by_barcode(session, barcode)
    corner = await session.scalar(select(ClassCorner).where(ClassCorner.class_name == class_name))
    if (
        copy is None
        or corner is None
        or copy.corner_id != corner.id
        or copy.status not in IN_THE_CORNER
    ):
        raise ServiceError("corners.not_in_your_corner", barcode=barcode.strip())
    title = record_name(await session.get_one(Record, copy.record_pk))
    await session.execute(delete(CornerHolder).where(CornerHolder.copy_id == copy.id))
    holder_name = None
    if card_no:
        reader = await reader_by_card(session, card_no)
        if reader.class_name != class_name:
            raise ServiceError("corners.holder_other_class", name=reader.name)
        session.add(
            CornerHolder(
                copy_id=copy.id, reader_id=reader.id, since=now, recorded_by=actor.reader_id
            )
        )
        holder_name = reader.name
    await session.flush()
    record_audit(
        session,
        actor.audit_name,
        "corner_holder",
        {"barcode": copy.barcode, "card_no": card_no},
        now=now,
    )
    return title, holder_name


@dataclass(frozen=True, slots=True)
class CornerBook:
    barcode: str
    title: str
    status: str
    holder: str | None


async def corner_contents(
    session: AsyncSession, actor: Actor | None, class_name: str | None = None
) -> tuple[str, list[CornerBook]]:
    class_name = (
        own_class(actor) if class_name is None else await resolve_class(session, class_name)
    )
    monitor_or_librarian(actor, class_name)
    rows = await session.execute(
        select(CopyRow.barcode, Record.id, CopyRow.status, Reader.name)
        .join(ClassCorner, ClassCorner.id == CopyRow.corner_id)
        .join(Record, Record.id == CopyRow.record_pk)
        .outerjoin(CornerHolder, CornerHolder.copy_id == CopyRow.id)
        .outerjoin(Reader, Reader.id == CornerHolder.reader_id)
        .where(ClassCorner.class_name == class_name, CopyRow.status.in_(IN_THE_CORNER))
        .order_by(CopyRow.barcode)
    )
    listed = list(rows)
    names = await book_names(session, (r[1] for r in listed))
    return class_name, [CornerBook(r[0], names[r[1]], *r[2:]) for r in listed]


def parse_barcodes(text: str) -> list[tuple[int, str]]:
    """Barcodes one per line (or separated by spaces/commas), with their line numbers."""
    found = []
    for number, line in enumerate(text.splitlines(), 1):
        for token in re.split(r"[\s,，;；]+", line.strip()):
            if token:
                found.append((number, token))
    return found


def looks_like_barcodes(text: str) -> bool:
    tokens = [b for _, b in parse_barcodes(text)]
    return bool(tokens) and all(
        BARCODE_RE.match(tok) and any(ch.isdigit() for ch in tok) for tok in tokens
    )
