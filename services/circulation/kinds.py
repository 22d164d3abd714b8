"""The pushes of lending and holds: a hold set aside (still wanted? about to end, ended), a loan
due soon, due today, overdue, and the note that someone is waiting for a borrowed book.

Names, dedupe keys, payload fields and templates are stored in outbox rows: keep them as they are.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from services.notifications.kinds import Action, Button, Kind


class HoldReadyPayload(BaseModel):
    hold_id: int
    record_pk: int
    title: str
    ready_until: datetime
    deliver_to_office: bool = False
    # The reader has as many books out as allowed when the copy is set aside: 取书前请先还一本.
    at_limit: bool = False
    max_loans: int = 0


class HoldPayload(BaseModel):
    hold_id: int
    title: str
    ready_until: datetime


class LoanPayload(BaseModel):
    loan_id: int
    title: str
    due_at: datetime
    # The reminder's own date slot (school date, ISO): part of the dedupe key.
    slot: str
    days: int = 0
    # Why renewal would be refused when the reminder was queued (RenewalRefusal.reason and its
    # numbers, services.circulation.renewal_refusal): then no 续借 button, and the text says why.
    no_renew: str | None = None
    no_renew_params: dict[str, int] = Field(default_factory=dict)


class ReservedPayload(BaseModel):
    loan_id: int
    title: str
    due_at: datetime


def _renewable(p: LoanPayload) -> bool:
    return p.no_renew is None


def _why_no_renew(p: LoanPayload) -> tuple[str, dict[str, Any]] | None:
    return None if p.no_renew is None else (f"renewal.refused_{p.no_renew}", p.no_renew_params)


def _hold_ready_variant(p: HoldReadyPayload) -> str | None:
    if p.at_limit:
        return (
            "notify.hold_ready_office_at_limit"
            if p.deliver_to_office
            else "notify.hold_ready_at_limit"
        )
    return "notify.hold_ready_office" if p.deliver_to_office else None


HOLD_READY = Kind(
    name="hold_ready",
    payload=HoldReadyPayload,
    template="notify.hold_ready",
    dedupe=lambda p: f"hold_ready:{p.hold_id}",
    buttons=(
        Button("notify.keep_button", Action.KEEP_HOLD, "hold_id"),
        Button("notify.drop_button", Action.DROP_HOLD, "hold_id"),
    ),
    variant=_hold_ready_variant,
    label="notify.kind_hold_ready",
)
HOLD_ENDING = Kind(
    name="hold_ending",
    payload=HoldPayload,
    template="notify.hold_ending",
    dedupe=lambda p: f"hold-ending:{p.hold_id}",
    buttons=(Button("notify.drop_button", Action.DROP_HOLD, "hold_id"),),
    optional=True,
    label="notify.kind_hold_ending",
)
HOLD_EXPIRED = Kind(
    name="hold_expired",
    payload=HoldPayload,
    template="notify.hold_expired",
    dedupe=lambda p: f"hold-expired:{p.hold_id}",
    label="notify.kind_hold_expired",
)
DUE_SOON = Kind(
    name="due_soon",
    payload=LoanPayload,
    template="notify.due_soon",
    dedupe=lambda p: f"due-soon:{p.loan_id}:{p.slot}",
    buttons=(Button("notify.renew_button", Action.RENEW, "loan_id", shown=_renewable),),
    variant=lambda p: None if p.no_renew is None else "notify.due_soon_no_renew",
    note=_why_no_renew,
    optional=True,
    label="notify.kind_due_soon",
)
DUE_DAY = Kind(
    name="due_day",
    payload=LoanPayload,
    template="notify.due_day",
    dedupe=lambda p: f"due-day:{p.loan_id}:{p.slot}",
    buttons=(Button("notify.renew_button", Action.RENEW, "loan_id", shown=_renewable),),
    variant=lambda p: None if p.no_renew is None else "notify.due_day_no_renew",
    note=_why_no_renew,
    optional=True,
    label="notify.kind_due_day",
)
OVERDUE = Kind(
    name="overdue",
    payload=LoanPayload,
    template="notify.overdue",
    dedupe=lambda p: f"overdue:{p.loan_id}:{p.slot}",
    label="notify.kind_overdue",
)
RESERVED_NOTE = Kind(
    name="reserved_note",
    payload=ReservedPayload,
    template="notify.reserved_note",
    dedupe=lambda p: f"reserved-note:{p.loan_id}",
    label="notify.kind_reserved_note",
)

KINDS: tuple[Kind[Any], ...] = (
    HOLD_READY,
    HOLD_ENDING,
    HOLD_EXPIRED,
    DUE_SOON,
    DUE_DAY,
    OVERDUE,
    RESERVED_NOTE,
)
