"""The push kinds declared by their features: every stored row's kind still known by name, with its
dedupe key format and template (the outbox holds rows written by older code), and the
notifications machinery importable without any feature (the registry is the one place that
gathers them)."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from services.notifications.registry import KINDS, optional_kinds

WHEN = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)
BOOK = {"record_pk": 7, "title": "三体"}

# name: (a payload, its dedupe key, the template it renders with)
STORED: dict[str, tuple[dict[str, Any], str, str]] = {
    "hold_ready": (
        {"hold_id": 3, "record_pk": 7, "title": "三体", "ready_until": WHEN},
        "hold_ready:3",
        "notify.hold_ready",
    ),
    "hold_ending": (
        {"hold_id": 3, "title": "三体", "ready_until": WHEN},
        "hold-ending:3",
        "notify.hold_ending",
    ),
    "hold_expired": (
        {"hold_id": 3, "title": "三体", "ready_until": WHEN},
        "hold-expired:3",
        "notify.hold_expired",
    ),
    "due_soon": (
        {"loan_id": 5, "title": "三体", "due_at": WHEN, "slot": "2026-11-02"},
        "due-soon:5:2026-11-02",
        "notify.due_soon",
    ),
    "due_day": (
        {"loan_id": 5, "title": "三体", "due_at": WHEN, "slot": "2026-11-02"},
        "due-day:5:2026-11-02",
        "notify.due_day",
    ),
    "overdue": (
        {"loan_id": 5, "title": "三体", "due_at": WHEN, "slot": "2026-11-02"},
        "overdue:5:2026-11-02",
        "notify.overdue",
    ),
    "reserved_note": (
        {"loan_id": 5, "title": "三体", "due_at": WHEN},
        "reserved-note:5",
        "notify.reserved_note",
    ),
    "notice": (
        {"notice": "2027-w10", "reader_id": 9, "text": "闭馆"},
        "notice:2027-w10:9",
        "notify.notice",
    ),
    "reading_star": (
        {
            "month": "2026-10",
            "scope": "class",
            "group": "初一(1)班",
            "reader_id": 9,
            "name": "张一",
            "books": 4,
        },
        "star:2026-10:class:初一(1)班:9",
        "stats.star.notify",
    ),
    "reading_star_monitor": (
        {
            "month": "2026-10",
            "class_name": "初一(1)班",
            "monitor_id": 2,
            "names": "张一",
            "books": 4,
        },
        "star-monitor:2026-10:初一(1)班:2",
        "stats.star.notify_monitor",
    ),
    "suggestion_resolved": (
        {"suggestion_id": 4, "query": "三体", "status": "rejected"},
        "suggestion:4:rejected",
        "stats.suggest.notify_declined",
    ),
    "corner_batch": (
        {"swap_id": 1, "monitor_id": 2, "class_name": "初一(1)班", "incoming": 3, "outgoing": 1},
        "corner_batch:1:2",
        "notify_corners.batch",
    ),
    "corner_discrepancy": (
        {
            "item_id": 6,
            "librarian_id": 1,
            "class_name": "初一(1)班",
            "barcode": "B1",
            "title": "三体",
            "direction": "送去",
            "outcome": "缺少",
        },
        "corner_discrepancy:6:1",
        "notify_corners.discrepancy",
    ),
    "corner_bring_back": (
        {
            "hold_id": 3,
            "monitor_id": 2,
            "copy_id": 8,
            "barcode": "B1",
            "title": "三体",
            "class_name": "初一(1)班",
        },
        "corner_bring_back:3:2",
        "notify_corners.bring_back",
    ),
    "chase_monitor_list": (
        {"monitor_id": 2, "class_name": "初一(1)班", "week": "2026-W45", "lines": "…"},
        "chase_monitor_list:2:初一(1)班:2026-W45",
        "notify_corners.chase_list",
    ),
    "chase_student": (
        {"reader_id": 9, "day": "2026-11-02", "books": "三体"},
        "chase_student:9:2026-11-02",
        "notify_corners.student",
    ),
    "clearance_reminder": (
        {"reader_id": 9, "day": "2026-11-02", "books": "三体"},
        "clearance_reminder:9:2026-11-02",
        "notify_corners.clearance",
    ),
    "weekly_new_books": (
        {"reader_id": 9, "week": "2026-W45", "books": [BOOK]},
        "weekly:9:2026-W45",
        "recommend.weekly_title",
    ),
    "reading_list": (
        {"send_id": 1, "reader_id": 9, "list_id": 2, "name": "科幻", "books": [BOOK]},
        "list:1:9",
        "lists.sent_title",
    ),
}


def test_every_stored_kind_keeps_its_name_dedupe_key_and_template() -> None:
    assert set(KINDS) == set(STORED)
    for name, (data, dedupe, template) in STORED.items():
        kind = KINDS[name]
        payload = kind.load(kind.dump(kind.load(data)))
        assert kind.dedupe(payload) == dedupe, name
        assert kind.template_for(payload) == template, name


def test_settings_lists_the_optional_kinds_in_the_old_order() -> None:
    assert [kind.name for kind in optional_kinds()] == ["hold_ending", "due_soon", "due_day"]


def test_the_machinery_imports_no_feature() -> None:
    # A fresh interpreter: the features must be free to import the package while they load.
    probe = (
        "import sys, services.notifications, services.notifications.quiet\n"
        "print(sorted(m for m in sys.modules if m.startswith('services.') and "
        "not m.startswith(('services.notifications', 'services.i18n'))))"
    )
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run(  # noqa: S603 (our own interpreter and probe)
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        check=True,
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},
    ).stdout
    assert out.strip() == "[]"
