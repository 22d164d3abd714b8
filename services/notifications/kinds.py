"""Every kind of push, declared once: its payload, its dedupe key, its template, its buttons.

A kind's payload is a pydantic model stored as JSON in the outbox row. The template is a locale key
whose placeholders are the payload's fields (titles escaped, datetimes shown as school dates).
Buttons are described without aiogram: a locale key for the label and an action the handlers carry
out with the id found in the payload's ``ref`` field (handlers/notify.py turns them into a
keyboard). A push listing several things (the weekly new books) names the payload's list in
``items`` and gives ``item_buttons``: one numbered button per item, its id read from the item.
A text richer than one template (books with their reasons) is built by ``compose``. Another
feature declares its kind here, next to the others, with ``declare``.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, Field

from services.recommend.text import Tr, render_reading_list, render_weekly
from storage.models import SuggestionStatus


class Action(enum.StrEnum):
    RENEW = "renew"
    KEEP_HOLD = "keep"
    DROP_HOLD = "drop"
    RESERVE = "reserve"  # a hold on the record
    DETAILS = "details"  # the record's book card
    STOP_WEEKLY = "wstop"  # 退订 the weekly list
    FEWER_WEEKLY = "wfewer"  # 少一点


@dataclass(frozen=True, slots=True)
class Button:
    label: str  # locale key (an item's button gets the item's number as ``n``)
    action: Action
    # The payload (or item) field holding the id the action works on; none: it acts on the reader.
    ref: str | None = None
    # Shown only when the rule behind the action would accept it (the payload says so); the
    # kind's ``note`` then says why not.
    shown: Callable[[Any], bool] = field(default=lambda _p: True)


P = TypeVar("P", bound=BaseModel)


@dataclass(frozen=True, slots=True)
class Kind(Generic[P]):
    name: str
    payload: type[P]
    template: str
    dedupe: Callable[[P], str]
    buttons: tuple[Button, ...] = ()
    # A reader may switch it off in /settings (overdue reminders, for one, cannot be).
    optional: bool = False
    # Another template for some payloads (e.g. a teacher's book delivered to the office).
    variant: Callable[[P], str | None] = field(default=lambda _p: None)
    # Shown in /settings and by `shuxiang scheduler --list`.
    label: str = ""
    # The payload's list field whose items each get ``item_buttons`` (ids read from the item).
    items: str | None = None
    item_buttons: tuple[Button, ...] = ()
    # Builds the text instead of ``template`` when one template cannot say it.
    compose: Callable[[P, Tr], str] | None = None
    # A line added under the text (a locale key and its parameters), e.g. why a button is absent.
    note: Callable[[P], tuple[str, dict[str, Any]] | None] = field(default=lambda _p: None)

    def template_for(self, payload: P) -> str:
        return self.variant(payload) or self.template

    def dump(self, payload: P) -> dict[str, Any]:
        return payload.model_dump(mode="json")

    def load(self, data: dict[str, Any]) -> P:
        return self.payload.model_validate(data)


KINDS: dict[str, Kind[Any]] = {}


def declare(kind: Kind[P]) -> Kind[P]:
    if kind.name in KINDS:
        raise ValueError(f"notification kind {kind.name!r} declared twice")
    KINDS[kind.name] = kind
    return kind


def kind_named(name: str) -> Kind[Any] | None:
    return KINDS.get(name)


# -- payloads ----------------------------------------------------------------------------------


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


def _renewable(p: LoanPayload) -> bool:
    return p.no_renew is None


def _why_no_renew(p: LoanPayload) -> tuple[str, dict[str, Any]] | None:
    return None if p.no_renew is None else (f"renewal.refused_{p.no_renew}", p.no_renew_params)


class ReservedPayload(BaseModel):
    loan_id: int
    title: str
    due_at: datetime


class NoticePayload(BaseModel):
    # Names the broadcast (e.g. "2027-w10"): with the reader, the dedupe key.
    notice: str
    reader_id: int
    text: str


class BookItem(BaseModel):
    record_pk: int
    title: str
    authors: str | None = None
    # services/recommend/reasons.py puts them in words.
    reasons: list[dict[str, Any]] = Field(default_factory=list)
    blurb: str | None = None
    # Why nobody may reserve it when the list was queued (the last part of the refusal key of
    # services.circulation.title_hold_refusal, e.g. on_shelf): then no 预约 N, and the line says so.
    no_reserve: str | None = None


def _reservable(item: BookItem) -> bool:
    return item.no_reserve is None


class WeeklyPayload(BaseModel):
    reader_id: int
    # ISO week ("2026-W48"): with the reader, the dedupe key (one list a week).
    week: str
    books: list[BookItem]


class ReadingListPayload(BaseModel):
    # The librarian's send of a themed list: with the reader, the dedupe key.
    send_id: int
    reader_id: int
    list_id: int
    name: str
    books: list[BookItem]


def _books(payload: WeeklyPayload | ReadingListPayload) -> list[dict[str, Any]]:
    return [book.model_dump() for book in payload.books]


def _hold_ready_variant(p: HoldReadyPayload) -> str | None:
    if p.at_limit:
        return (
            "notify.hold_ready_office_at_limit"
            if p.deliver_to_office
            else "notify.hold_ready_at_limit"
        )
    return "notify.hold_ready_office" if p.deliver_to_office else None


# -- kinds -------------------------------------------------------------------------------------

HOLD_READY = declare(
    Kind(
        name="hold_ready",
        payload=HoldReadyPayload,
        template="notify.hold_ready",
        dedupe=lambda p: f"hold_ready:{p.hold_id}",
        buttons=(
            Button("notify.keep_button", Action.KEEP_HOLD, "hold_id"),
            Button("notify.drop_button", Action.DROP_HOLD, "hold_id"),
        ),
        variant=lambda p: _hold_ready_variant(p),
        label="notify.kind_hold_ready",
    )
)
HOLD_ENDING = declare(
    Kind(
        name="hold_ending",
        payload=HoldPayload,
        template="notify.hold_ending",
        dedupe=lambda p: f"hold-ending:{p.hold_id}",
        buttons=(Button("notify.drop_button", Action.DROP_HOLD, "hold_id"),),
        optional=True,
        label="notify.kind_hold_ending",
    )
)
HOLD_EXPIRED = declare(
    Kind(
        name="hold_expired",
        payload=HoldPayload,
        template="notify.hold_expired",
        dedupe=lambda p: f"hold-expired:{p.hold_id}",
        label="notify.kind_hold_expired",
    )
)
DUE_SOON = declare(
    Kind(
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
)
DUE_DAY = declare(
    Kind(
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
)
OVERDUE = declare(
    Kind(
        name="overdue",
        payload=LoanPayload,
        template="notify.overdue",
        dedupe=lambda p: f"overdue:{p.loan_id}:{p.slot}",
        label="notify.kind_overdue",
    )
)
RESERVED_NOTE = declare(
    Kind(
        name="reserved_note",
        payload=ReservedPayload,
        template="notify.reserved_note",
        dedupe=lambda p: f"reserved-note:{p.loan_id}",
        label="notify.kind_reserved_note",
    )
)

NOTICE = declare(
    Kind(
        name="notice",
        payload=NoticePayload,
        template="notify.notice",
        dedupe=lambda p: f"notice:{p.notice}:{p.reader_id}",
        label="notify.kind_notice",
    )
)

# -- statistics (issue 14): 读书之星 and purchase suggestions -------------------------------------


class StarPayload(BaseModel):
    month: str  # "2026-10"
    scope: str  # ScopeKind: grade or class
    group: str
    reader_id: int
    name: str
    books: int


class StarMonitorPayload(BaseModel):
    month: str
    class_name: str
    monitor_id: int
    names: str  # the winners, already joined
    books: int


class SuggestionResolvedPayload(BaseModel):
    suggestion_id: int
    query: str
    status: SuggestionStatus


READING_STAR = declare(
    Kind(
        name="reading_star",
        payload=StarPayload,
        template="stats.star.notify",
        dedupe=lambda p: f"star:{p.month}:{p.scope}:{p.group}:{p.reader_id}",
        label="stats.kind_reading_star",
    )
)
READING_STAR_MONITOR = declare(
    Kind(
        name="reading_star_monitor",
        payload=StarMonitorPayload,
        template="stats.star.notify_monitor",
        dedupe=lambda p: f"star-monitor:{p.month}:{p.class_name}:{p.monitor_id}",
        label="stats.kind_reading_star_monitor",
    )
)
SUGGESTION_RESOLVED = declare(
    Kind(
        name="suggestion_resolved",
        payload=SuggestionResolvedPayload,
        template="stats.suggest.notify_declined",
        dedupe=lambda p: f"suggestion:{p.suggestion_id}:{p.status.value}",
        variant=lambda p: (
            "stats.suggest.notify_bought" if p.status == SuggestionStatus.PURCHASED else None
        ),
        label="stats.kind_suggestion_resolved",
    )
)
# -- class corners and the chase (list-shaped payloads arrive pre-rendered as one text field) --


class CornerBatchPayload(BaseModel):
    swap_id: int
    monitor_id: int
    class_name: str
    incoming: int
    outgoing: int


class CornerDiscrepancyPayload(BaseModel):
    item_id: int
    librarian_id: int
    class_name: str
    barcode: str
    title: str
    direction: str  # shown as is (送去 / 还回)
    outcome: str  # shown as is (缺少 / 破损)


class CornerBringBackPayload(BaseModel):
    hold_id: int
    monitor_id: int
    copy_id: int
    barcode: str
    title: str
    class_name: str


class ChaseListPayload(BaseModel):
    monitor_id: int
    class_name: str
    week: str  # ISO week, e.g. "2026-W48": one list per monitor, class and week
    lines: str


class ChaseStudentPayload(BaseModel):
    reader_id: int
    day: str  # school date, ISO: one reminder per student and day
    books: str


class ClearancePayload(BaseModel):
    reader_id: int
    day: str
    books: str


CORNER_BATCH = declare(
    Kind(
        name="corner_batch",
        payload=CornerBatchPayload,
        template="notify_corners.batch",
        dedupe=lambda p: f"corner_batch:{p.swap_id}:{p.monitor_id}",
        variant=lambda p: "notify_corners.batch_return" if not p.incoming else None,
        label="notify_corners.kind_batch",
    )
)
CORNER_DISCREPANCY = declare(
    Kind(
        name="corner_discrepancy",
        payload=CornerDiscrepancyPayload,
        template="notify_corners.discrepancy",
        dedupe=lambda p: f"corner_discrepancy:{p.item_id}:{p.librarian_id}",
        label="notify_corners.kind_discrepancy",
    )
)
CORNER_BRING_BACK = declare(
    Kind(
        name="corner_bring_back",
        payload=CornerBringBackPayload,
        template="notify_corners.bring_back",
        dedupe=lambda p: f"corner_bring_back:{p.hold_id}:{p.monitor_id}",
        label="notify_corners.kind_bring_back",
    )
)
CHASE_MONITOR_LIST = declare(
    Kind(
        name="chase_monitor_list",
        payload=ChaseListPayload,
        template="notify_corners.chase_list",
        dedupe=lambda p: f"chase_monitor_list:{p.monitor_id}:{p.class_name}:{p.week}",
        label="notify_corners.kind_chase_list",
    )
)
CHASE_STUDENT = declare(
    Kind(
        name="chase_student",
        payload=ChaseStudentPayload,
        template="notify_corners.student",
        dedupe=lambda p: f"chase_student:{p.reader_id}:{p.day}",
        label="notify_corners.kind_student",
    )
)
CLEARANCE_REMINDER = declare(
    Kind(
        name="clearance_reminder",
        payload=ClearancePayload,
        template="notify_corners.clearance",
        dedupe=lambda p: f"clearance_reminder:{p.reader_id}:{p.day}",
        label="notify_corners.kind_clearance",
    )
)
WEEKLY_NEW_BOOKS = declare(
    Kind(
        name="weekly_new_books",
        payload=WeeklyPayload,
        template="recommend.weekly_title",
        dedupe=lambda p: f"weekly:{p.reader_id}:{p.week}",
        compose=lambda p, tr: render_weekly(tr, _books(p)),
        items="books",
        item_buttons=(
            Button("recommend.reserve_button", Action.RESERVE, "record_pk", shown=_reservable),
            Button("recommend.details_button", Action.DETAILS, "record_pk"),
        ),
        buttons=(
            Button("recommend.unsubscribe_button", Action.STOP_WEEKLY),
            Button("recommend.fewer_button", Action.FEWER_WEEKLY),
        ),
        label="recommend.kind_weekly",
    )
)
READING_LIST = declare(
    Kind(
        name="reading_list",
        payload=ReadingListPayload,
        template="lists.sent_title",
        dedupe=lambda p: f"list:{p.send_id}:{p.reader_id}",
        compose=lambda p, tr: render_reading_list(
            tr, {"name": p.name, "books": _books(p)}, sent=True
        ),
        items="books",
        item_buttons=(Button("recommend.details_button", Action.DETAILS, "record_pk"),),
        label="lists.kind_list",
    )
)


def optional_kinds() -> list[Kind[Any]]:
    return [kind for kind in KINDS.values() if kind.optional]
