"""The reminder sweeps: read due dates from the loans and holds tables, queue pushes.

Each sweep is idempotent: a reminder's dedupe key names its loan (or hold) and its date slot, so a
sweep run twice, late, or after a week of downtime queues nothing twice and only what still
matters: the latest slot that has come (a book returned, renewed or collected has no slot left).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from pydantic_core import to_jsonable_python
from sqlalchemy import Row, Select, and_, false, func, or_, select, true
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from services.actor import Actor
from services.circulation import expire_ready_holds, renewal_refusal
from services.circulation.kinds import (
    DUE_DAY,
    DUE_SOON,
    HOLD_ENDING,
    OVERDUE,
    HoldPayload,
    LoanPayload,
)
from services.imports.calendar import is_closed
from services.notifications import Kind, enqueue_rows
from services.policy import LoanPolicy
from services.readers.reach import reachable
from services.titles import book_name
from storage.models import (
    Copy,
    Hold,
    HoldStatus,
    Loan,
    NotificationOptOut,
    Reader,
    Record,
    utcnow,
)


@dataclass(frozen=True, slots=True)
class ReminderRules:
    """The school's reminder schedule (bot/config.py builds it)."""

    tz: ZoneInfo
    due_soon_days: Sequence[int] = (3, 1)
    overdue_every_days: int = 7
    overdue_max: int = 4
    defaults_off: frozenset[str] = field(default_factory=frozenset)
    # The lending rules: with them a due reminder offers 续借 only when renew would accept it.
    policy: LoanPolicy | None = None

    def today(self, now: datetime) -> date:
        return now.astimezone(self.tz).date()

    def start_of(self, day: date) -> datetime:
        return datetime.combine(day, time(0), tzinfo=self.tz).astimezone(UTC)


def _reachable(stmt: Select[Any], reader_col: Any, kind: Kind[Any], rules: ReminderRules) -> Any:
    """Only readers who can be reached and, for optional kinds, want this kind."""
    stmt = stmt.where(reachable(reader_col))
    if not kind.optional:
        return stmt
    pref = aliased(NotificationOptOut)
    default_on = true() if kind.name not in rules.defaults_off else false()
    return stmt.outerjoin(pref, and_(pref.reader_id == reader_col, pref.kind == kind.name)).where(
        or_(pref.enabled.is_(True), and_(pref.id.is_(None), default_on))
    )


async def _open_loans(
    session: AsyncSession, kind: Kind[Any], rules: ReminderRules, first: date, last: date
) -> Sequence[Row[tuple[int, int, datetime, str, str | None, int, int, str]]]:
    """(loan id, reader id, due_at, title, subtitle, renewals, record id, reader's role) of open
    loans due on the school dates first..last."""
    stmt = (
        select(
            Loan.id,
            Loan.reader_id,
            Loan.due_at,
            Record.title,
            Record.subtitle,
            Loan.renewals,
            Record.id,
            Reader.role,
        )
        .join(Copy, Copy.id == Loan.copy_id)
        .join(Record, Record.id == Copy.record_pk)
        .join(Reader, Reader.id == Loan.reader_id)
        .where(
            Loan.returned_at.is_(None),
            Loan.due_at >= rules.start_of(first),
            Loan.due_at < rules.start_of(last + timedelta(days=1)),
        )
    )
    return (await session.execute(_reachable(stmt, Loan.reader_id, kind, rules))).all()


async def _waiting(session: AsyncSession) -> dict[int, int]:
    """Waiting holds per title (a few dozen rows in a school, where a sweep may remind of
    thousands of loans: no list of their titles in the query)."""
    rows = await session.execute(
        select(Hold.record_pk, func.count(Hold.id))
        .where(Hold.status == HoldStatus.WAITING.value)
        .group_by(Hold.record_pk)
    )
    return {record_pk: int(count) for record_pk, count in rows}


def _latest_slot(slots: Iterable[date], today: date) -> date | None:
    passed = [slot for slot in slots if slot <= today]
    return max(passed) if passed else None


# A due date's reminder: (its slot, the days it tells), or None when no slot has come.
SlotOf = Callable[[date], tuple[date, int] | None]


async def _queue_loans(
    session: AsyncSession,
    kind: Kind[LoanPayload],
    rules: ReminderRules,
    now: datetime,
    span: tuple[date, date],
    slot_of: SlotOf,
) -> int:
    """Queue ``kind`` for the open loans due in ``span``: the slot and the payload's JSON form
    are worked out once per due time, not per loan (a pydantic model and a time-zone
    conversion per loan were most of a 10,000-loan sweep). The payload is LoanPayload's JSON
    form and the dedupe key the kind's own."""
    per_due: dict[datetime, tuple[str, str, int] | None] = {}
    # One unvalidated payload, its fields set per loan, only to ask the kind for its dedupe key:
    # a model per loan was 10,000 more objects for the garbage collector to walk.
    probe: LoanPayload | None = None
    rows = []
    loans = await _open_loans(session, kind, rules, *span)
    waiting = await _waiting(session) if rules.policy is not None and loans else {}
    for loan_id, reader_id, due_at, bare, subtitle, renewals, record_pk, role in loans:
        title = book_name(bare, subtitle)
        if due_at not in per_due:
            found = slot_of(due_at.astimezone(rules.tz).date())
            per_due[due_at] = (
                None
                if found is None
                else (to_jsonable_python(due_at), found[0].isoformat(), found[1])
            )
        known = per_due[due_at]
        if known is None:
            continue
        due_json, slot, days = known
        if probe is None:
            probe = LoanPayload.model_construct(
                loan_id=loan_id, title=title, due_at=due_at, slot=slot, days=days
            )
        probe.loan_id, probe.slot = loan_id, slot
        payload = {
            "loan_id": loan_id,
            "title": title,
            "due_at": due_json,
            "slot": slot,
            "days": days,
            "no_renew": None,
            "no_renew_params": {},
        }
        if rules.policy is not None:
            refusal = renewal_refusal(
                due_at=due_at,
                renewals=renewals,
                allowed=rules.policy.for_role(role).renewals,
                waiting=waiting.get(record_pk, 0),
                now=now,
            )
            if refusal is not None:
                payload["no_renew"] = refusal.reason
                payload["no_renew_params"] = refusal.params
        rows.append((reader_id, kind.dedupe(probe), payload))
    return await enqueue_rows(session, kind, rows, now=now)


async def sweep_due_soon(session: AsyncSession, rules: ReminderRules, now: datetime) -> int:
    if not rules.due_soon_days:
        return 0
    today = rules.today(now)
    furthest = max(rules.due_soon_days)

    def slot_of(due_day: date) -> tuple[date, int] | None:
        slot = _latest_slot((due_day - timedelta(days=n) for n in rules.due_soon_days), today)
        return None if slot is None else (slot, (due_day - today).days)

    span = (today + timedelta(days=1), today + timedelta(days=furthest))
    return await _queue_loans(session, DUE_SOON, rules, now, span, slot_of)


async def sweep_due_day(session: AsyncSession, rules: ReminderRules, now: datetime) -> int:
    today = rules.today(now)
    return await _queue_loans(
        session, DUE_DAY, rules, now, (today, today), lambda _due_day: (today, 0)
    )


async def sweep_overdue(session: AsyncSession, rules: ReminderRules, now: datetime) -> int:
    """Day 1 after the due date, then every ``overdue_every_days``, at most ``overdue_max``
    times; paused while the school is closed (the latest slot goes out on the next open day)."""
    today = rules.today(now)
    if await is_closed(session, today):
        return 0
    every, count = rules.overdue_every_days, rules.overdue_max
    span = 1 + every * count  # past the last slot a loan has nothing new to say

    def slot_of(due_day: date) -> tuple[date, int] | None:
        slots = [due_day + timedelta(days=1 + every * k) for k in range(count)]
        slot = _latest_slot(slots, today)
        return None if slot is None else (slot, (today - due_day).days)

    days = (today - timedelta(days=span), today - timedelta(days=1))
    return await _queue_loans(session, OVERDUE, rules, now, days, slot_of)


async def sweep_hold_ending(session: AsyncSession, rules: ReminderRules, now: datetime) -> int:
    """Ready holds whose pickup ends tomorrow (or today, when the sweep ran late)."""
    today = rules.today(now)
    stmt = (
        select(Hold.id, Hold.reader_id, Hold.ready_until, Record.title, Record.subtitle)
        .join(Record, Record.id == Hold.record_pk)
        .where(
            Hold.status == HoldStatus.READY.value,
            Hold.deliver_to_office.is_(False),
            Hold.ready_until > now,
            Hold.ready_until < rules.start_of(today + timedelta(days=2)),
        )
    )
    rows = await session.execute(_reachable(stmt, Hold.reader_id, HOLD_ENDING, rules))
    # HoldPayload's JSON form, built directly as for the loans.
    items = [
        (
            reader_id,
            HOLD_ENDING.dedupe(
                HoldPayload.model_construct(
                    hold_id=hold_id, title=book_name(*title), ready_until=until
                )
            ),
            {
                "hold_id": hold_id,
                "title": book_name(*title),
                "ready_until": to_jsonable_python(until),
            },
        )
        for hold_id, reader_id, until, *title in rows
        if until is not None
    ]
    return await enqueue_rows(session, HOLD_ENDING, items, now=now)


async def sweep_hold_expiry(
    session: AsyncSession, policy: LoanPolicy, now: datetime | None = None, *, actor: Actor | None
) -> int:
    """Uncollected holds expire; their copies pass to the next reader, who is told."""
    return await expire_ready_holds(session, actor=actor, policy=policy, now=now or utcnow())
