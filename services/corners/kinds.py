"""The pushes of class corners and the chase: a swap's batch to the monitor, a discrepancy to the
librarian, a held corner copy to bring back, the week's list of late books to the monitor, a
student's reminder, and the clearance reminder before the term ends. List-shaped payloads arrive
pre-rendered as one text field."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from services.notifications.kinds import Kind


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


CORNER_BATCH = Kind(
    name="corner_batch",
    payload=CornerBatchPayload,
    template="notify_corners.batch",
    dedupe=lambda p: f"corner_batch:{p.swap_id}:{p.monitor_id}",
    variant=lambda p: "notify_corners.batch_return" if not p.incoming else None,
    label="notify_corners.kind_batch",
)
CORNER_DISCREPANCY = Kind(
    name="corner_discrepancy",
    payload=CornerDiscrepancyPayload,
    template="notify_corners.discrepancy",
    dedupe=lambda p: f"corner_discrepancy:{p.item_id}:{p.librarian_id}",
    label="notify_corners.kind_discrepancy",
)
CORNER_BRING_BACK = Kind(
    name="corner_bring_back",
    payload=CornerBringBackPayload,
    template="notify_corners.bring_back",
    dedupe=lambda p: f"corner_bring_back:{p.hold_id}:{p.monitor_id}",
    label="notify_corners.kind_bring_back",
)
CHASE_MONITOR_LIST = Kind(
    name="chase_monitor_list",
    payload=ChaseListPayload,
    template="notify_corners.chase_list",
    dedupe=lambda p: f"chase_monitor_list:{p.monitor_id}:{p.class_name}:{p.week}",
    label="notify_corners.kind_chase_list",
)
CHASE_STUDENT = Kind(
    name="chase_student",
    payload=ChaseStudentPayload,
    template="notify_corners.student",
    dedupe=lambda p: f"chase_student:{p.reader_id}:{p.day}",
    label="notify_corners.kind_student",
)
CLEARANCE_REMINDER = Kind(
    name="clearance_reminder",
    payload=ClearancePayload,
    template="notify_corners.clearance",
    dedupe=lambda p: f"clearance_reminder:{p.reader_id}:{p.day}",
    label="notify_corners.kind_clearance",
)

KINDS: tuple[Kind[Any], ...] = (
    CORNER_BATCH,
    CORNER_DISCREPANCY,
    CORNER_BRING_BACK,
    CHASE_MONITOR_LIST,
    CHASE_STUDENT,
    CLEARANCE_REMINDER,
)
