"""Reminder sweeps, the outbox's claims and outcomes, preferences and the school calendar, on
SQLite and PostgreSQL, driven by explicit times (no sleeping)."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select, update

from services import circulation as circ
from services.actor import Actor
from services.circulation.kinds import DUE_SOON, OVERDUE
from services.errors import ServiceError
from services.imports.calendar import import_calendar
from services.imports.files import ImportRejected
from services.notifications import (
    QuietHours,
    claim,
    enqueue_raw,
    mark_retry,
    mark_sent,
    mark_unreachable,
    release_claims,
    set_preference,
)
from services.notifications.registry import KINDS
from services.notifications.reminders import (
    ReminderRules,
    sweep_due_day,
    sweep_due_soon,
    sweep_hold_ending,
    sweep_hold_expiry,
    sweep_overdue,
)
from services.notifications.render import render
from storage.db import Database
from storage.models import Endpoint, Loan, Notification, OutboxStatus
from tests.factories import POLICY, World, lend, make_world, telegram_endpoint
from tests.roles import as_reader

TZ = ZoneInfo("Asia/Shanghai")
RULES = ReminderRules(tz=TZ)
T0 = datetime(2027, 3, 1, 2, 0, tzinfo=UTC)  # Monday 10:00 in Shanghai
READERS = {"S1": ("张三", "student"), "S2": ("李四", "student"), "S3": ("王五", "student")}
RECORDS = {"r1": ("追风筝的人", ["B1"]), "r2": ("三体", ["B2"])}


def at(day: str, clock: str = "07:30") -> datetime:
    """A school-time moment as UTC."""
    hh, mm = clock.split(":")
    local = datetime.combine(date.fromisoformat(day), datetime.min.time(), tzinfo=TZ)
    return local.replace(hour=int(hh), minute=int(mm)).astimezone(UTC)


async def world_with_bindings(db: Database) -> World:
    world = await make_world(db, records=RECORDS, readers=READERS)
    async with db.transaction() as s:
        for n, reader_id in enumerate(world.reader_ids.values(), 1):
            s.add(telegram_endpoint(reader_id, 7000 + n))
    return world


async def run(db: Database, sweep, now: datetime, rules: ReminderRules = RULES) -> int:  # type: ignore[no-untyped-def]
    async with db.transaction() as s:
        return int(await sweep(s, rules, now))


async def keys(db: Database, kind: str | None = None) -> list[str]:
    async with db.transaction(read_only=True) as s:
        stmt = select(Notification.dedupe_key).order_by(Notification.id)
        if kind:
            stmt = stmt.where(Notification.kind == kind)
        return list(await s.scalars(stmt))


async def test_due_soon_is_sent_once_per_slot_and_only_what_still_matters(db: Database) -> None:
    await world_with_bindings(db)
    loan = (await lend(db, "S1", "B1", now=T0)).loan_id  # due 2027-03-31
    assert await run(db, sweep_due_soon, at("2027-03-27")) == 0  # four days before: nothing
    assert await run(db, sweep_due_soon, at("2027-03-28")) == 1  # three days before
    assert await run(db, sweep_due_soon, at("2027-03-28", "15:00")) == 0  # run twice
    assert await run(db, sweep_due_soon, at("2027-03-29")) == 0  # the 3-day slot is done
    assert await run(db, sweep_due_soon, at("2027-03-30")) == 1  # one day before
    assert await run(db, sweep_due_day, at("2027-03-31")) == 1
    assert await run(db, sweep_due_day, at("2027-03-31", "12:00")) == 0
    assert await keys(db) == [
        f"due-soon:{loan}:2027-03-28",
        f"due-soon:{loan}:2027-03-30",
        f"due-day:{loan}:2027-03-31",
    ]
    async with db.transaction(read_only=True) as s:
        note = await s.scalar(select(Notification).where(Notification.kind == DUE_SOON.name))
        assert note is not None and note.payload["days"] == 3


async def test_after_a_week_of_downtime_only_the_latest_slot_goes_out(db: Database) -> None:
    await world_with_bindings(db)
    loan = (await lend(db, "S1", "B1", now=T0)).loan_id
    # The sweeps did not run from 03-25 to 03-30: the 1-day reminder, not the stale 3-day one.
    assert await run(db, sweep_due_soon, at("2027-03-30", "11:00")) == 1
    assert await keys(db) == [f"due-soon:{loan}:2027-03-30"]


async def test_returned_or_renewed_books_get_no_stale_reminder(db: Database) -> None:
    world = await world_with_bindings(db)
    await lend(db, "S1", "B1", now=T0)
    loan2 = (await lend(db, "S2", "B2", now=T0)).loan_id
    async with db.transaction() as s:
        await circ.return_copy(
            s, actor=Actor.cli(), barcode="B1", policy=POLICY, now=at("2027-03-20")
        )
        renewed = await circ.renew(
            s,
            actor=await as_reader(s, world.reader_ids["S2"]),
            loan_id=loan2,
            policy=POLICY,
            now=at("2027-03-20"),
        )
    assert renewed.due_at.astimezone(TZ).date() == date(2027, 4, 15)
    assert await run(db, sweep_due_soon, at("2027-03-28")) == 0
    assert await run(db, sweep_due_soon, at("2027-04-12")) == 1
    assert await keys(db) == [f"due-soon:{loan2}:2027-04-12"]


async def test_overdue_day_one_then_weekly_at_most_four_paused_on_closed_days(
    db: Database, tmp_path: Path
) -> None:
    await world_with_bindings(db)
    loan = (
        await lend(db, "S1", "B1", now=T0)
    ).loan_id  # due 03-31: slots 04-01, 04-08, 04-15, 04-22
    assert await run(db, sweep_overdue, at("2027-03-31")) == 0
    assert await run(db, sweep_overdue, at("2027-04-01")) == 1
    assert await run(db, sweep_overdue, at("2027-04-05")) == 0
    csv_file = tmp_path / "calendar.csv"
    csv_file.write_text("start,end,name\n2027-04-08,2027-04-09,清明调休\n", encoding="utf-8")
    async with db.transaction() as s:
        await import_calendar(s, csv_file, TZ)
    assert await run(db, sweep_overdue, at("2027-04-08")) == 0  # closed: paused
    assert await run(db, sweep_overdue, at("2027-04-10")) == 1  # next open day: the late slot
    for day in ("2027-04-15", "2027-04-22", "2027-04-29", "2027-05-20"):
        await run(db, sweep_overdue, at(day))
    assert await keys(db, OVERDUE.name) == [
        f"overdue:{loan}:2027-04-01",
        f"overdue:{loan}:2027-04-08",
        f"overdue:{loan}:2027-04-15",
        f"overdue:{loan}:2027-04-22",
    ]


async def test_settings_switch_optional_reminders_but_never_overdue(db: Database) -> None:
    world = await world_with_bindings(db)
    await lend(db, "S1", "B1", now=T0)
    await lend(db, "S2", "B2", now=T0)
    async with db.transaction() as s:
        await set_preference(s, world.reader_ids["S1"], DUE_SOON.name, False)
    assert await run(db, sweep_due_soon, at("2027-03-28")) == 1  # S2 only
    async with db.transaction() as s:
        await set_preference(s, world.reader_ids["S1"], OVERDUE.name, False)
    assert await run(db, sweep_overdue, at("2027-04-01")) == 2  # overdue cannot be switched off
    # The librarian's default off: only readers who switched it on get it.
    rules = ReminderRules(tz=TZ, defaults_off=frozenset({DUE_SOON.name}))
    async with db.transaction() as s:
        await set_preference(s, world.reader_ids["S1"], DUE_SOON.name, True)
        await s.execute(update(Notification).values(dedupe_key=Notification.dedupe_key + ":old"))
    assert await run(db, sweep_due_soon, at("2027-03-28"), rules) == 1
    async with db.transaction(read_only=True) as s:
        newest = await s.scalar(select(Notification).order_by(Notification.id.desc()).limit(1))
        assert newest is not None and newest.reader_id == world.reader_ids["S1"]


async def test_hold_ending_and_expiry_tell_both_readers(db: Database) -> None:
    world = await world_with_bindings(db)
    await lend(db, "S1", "B1", now=T0)
    rec = world.record_pks["r1"]
    async with db.transaction() as s:
        await circ.place_hold(
            s,
            actor=await as_reader(s, world.reader_ids["S2"]),
            reader_id=world.reader_ids["S2"],
            record_pk=rec,
            policy=POLICY,
        )
        await circ.place_hold(
            s,
            actor=await as_reader(s, world.reader_ids["S3"]),
            reader_id=world.reader_ids["S3"],
            record_pk=rec,
            policy=POLICY,
        )
        await circ.return_copy(
            s, actor=Actor.cli(), barcode="B1", policy=POLICY, now=at("2027-03-10", "10:00")
        )
    # Ready until 03-13: the day before, S2 is reminded; on 03-14 the hold expires, S3 is told.
    assert await run(db, sweep_hold_ending, at("2027-03-11")) == 0
    assert await run(db, sweep_hold_ending, at("2027-03-12")) == 1
    async with db.transaction() as s:
        assert (
            await sweep_hold_expiry(
                s, POLICY, at("2027-03-14", "00:10"), actor=Actor.system("job:hold-expiry")
            )
            == 1
        )
    async with db.transaction(read_only=True) as s:
        rows = (await s.execute(select(Notification.kind, Notification.reader_id))).all()
    ids = world.reader_ids
    assert sorted(rows) == sorted(
        [
            ("reserved_note", ids["S1"]),
            ("hold_ready", ids["S2"]),
            ("hold_ending", ids["S2"]),
            ("hold_expired", ids["S2"]),
            ("hold_ready", ids["S3"]),
        ]
    )


async def test_every_sweep_stores_its_kinds_own_payload_and_queues_nothing_twice(
    db: Database,
) -> None:
    """The sweeps build payloads and keys without a pydantic model per row: what they store is
    exactly what the kind would dump and key, and a second run adds nothing."""
    world = await world_with_bindings(db)
    await lend(db, "S1", "B1", now=T0)  # due 03-31
    await lend(db, "S2", "B2", now=T0 + timedelta(days=3))  # due 04-03
    rec = world.record_pks["r1"]
    async with db.transaction() as s:
        await circ.place_hold(
            s,
            actor=await as_reader(s, world.reader_ids["S3"]),
            reader_id=world.reader_ids["S3"],
            record_pk=rec,
            policy=POLICY,
        )
        await circ.return_copy(
            s, actor=Actor.cli(), barcode="B1", policy=POLICY, now=at("2027-03-30", "10:00")
        )
    sweeps = [
        (sweep_due_soon, at("2027-03-31")),  # S2's loan: 3 days before
        (sweep_due_day, at("2027-04-03")),
        (sweep_overdue, at("2027-04-04")),
        (sweep_hold_ending, at("2027-04-01")),  # S3's hold, ready until 04-02
    ]
    for sweep, now in sweeps:
        assert await run(db, sweep, now) == 1, sweep.__name__
        assert await run(db, sweep, now) == 0, sweep.__name__
    async with db.transaction(read_only=True) as s:
        swept = ("due_day", "due_soon", "hold_ending", "overdue")
        notes = list(await s.scalars(select(Notification).where(Notification.kind.in_(swept))))
    assert sorted(n.kind for n in notes) == ["due_day", "due_soon", "hold_ending", "overdue"]
    for note in notes:
        kind = KINDS[note.kind]
        payload = kind.load(note.payload)
        assert kind.dump(payload) == note.payload
        assert kind.dedupe(payload) == note.dedupe_key
    overdue = next(n for n in notes if n.kind == OVERDUE.name)
    assert overdue.payload["days"] == 1 and overdue.payload["slot"] == "2027-04-04"


async def test_a_sender_starting_alone_takes_back_a_killed_senders_claims(db: Database) -> None:
    world = await world_with_bindings(db)
    await lend(db, "S1", "B1", now=T0)
    await lend(db, "S2", "B2", now=T0)
    now = at("2027-03-28")
    await run(db, sweep_due_soon, now)
    async with db.transaction() as s:
        assert len(await claim(s, now=now)) == 2  # leased for 30 s to a sender since killed
        # Queued earlier than the claims' new due time: still, the dead sender's go first.
        await enqueue_raw(
            s,
            kind="notice",
            reader_id=world.reader_ids["S3"],
            dedupe_key="notice:older",
            payload={"notice": "older", "reader_id": world.reader_ids["S3"], "text": "x"},
            now=now - timedelta(hours=1),
        )
    async with db.role("sender") as alone:
        assert alone
        async with db.role("sender") as second:
            assert not second  # a second sender beside a live one cannot tell whose claims are
        async with db.transaction() as s:
            assert await release_claims(s, now + timedelta(seconds=1)) == 2
    async with db.transaction() as s:
        again = await claim(s, now=now + timedelta(seconds=1), limit=2)
    assert [(c.kind, c.attempts) for c in again] == [(DUE_SOON.name, 2)] * 2  # attempt counted
    async with db.role("sender") as alone:
        assert alone  # the holds ended with their blocks


async def test_unreachable_readers_get_nothing_more(db: Database) -> None:
    world = await world_with_bindings(db)
    await lend(db, "S1", "B1", now=T0)
    await lend(db, "S2", "B2", now=T0)
    assert await run(db, sweep_due_soon, at("2027-03-28")) == 2
    async with db.transaction() as s:
        claimed = await claim(s, now=at("2027-03-28"))
        assert len(claimed) == 2
        first = next(c for c in claimed if c.reader_id == world.reader_ids["S1"])
        await mark_unreachable(
            s, first.notification_id, first.reader_id, error="403", now=at("2027-03-28")
        )
    assert await run(db, sweep_due_soon, at("2027-03-30")) == 1  # S2 only
    async with db.transaction(read_only=True) as s:
        binding = await s.scalar(
            select(Endpoint).where(Endpoint.reader_id == world.reader_ids["S1"])
        )
        assert binding is not None and binding.unreachable_at is not None


async def test_claims_lease_quiet_hours_and_attempt_cap(db: Database) -> None:
    await world_with_bindings(db)
    await lend(db, "S1", "B1", now=T0)
    await run(db, sweep_due_soon, at("2027-03-28", "06:00"))
    quiet = QuietHours.parse("21:30-07:00", TZ)
    async with db.transaction() as s:
        assert await claim(s, now=at("2027-03-28", "06:00"), quiet=quiet) == []
        (first,) = await claim(s, now=at("2027-03-28", "07:00"), quiet=quiet)
    lease = timedelta(seconds=30)
    async with db.transaction() as s:
        # Claimed and leased: nobody else gets it until the lease runs out.
        assert await claim(s, now=at("2027-03-28", "07:00") + lease / 2) == []
        (again,) = await claim(s, now=at("2027-03-28", "07:00") + lease)
    assert again.notification_id == first.notification_id and again.attempts == 2
    async with db.transaction() as s:
        assert not await mark_retry(s, again.notification_id, at=T0, error="boom", max_attempts=2)
    async with db.transaction(read_only=True) as s:
        note = await s.get_one(Notification, again.notification_id)
        assert note.status == OutboxStatus.FAILED and note.last_error == "boom"


@pytest.mark.postgres
@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
async def test_concurrent_claims_on_postgresql_never_overlap(db: Database) -> None:
    world = await make_world(db, readers={f"S{i}": (f"学生{i}", "student") for i in range(60)})
    async with db.transaction() as s:
        for n, reader_id in enumerate(world.reader_ids.values()):
            s.add(telegram_endpoint(reader_id, n + 1))
            s.add(
                Notification(
                    kind=OVERDUE.name,
                    reader_id=reader_id,
                    dedupe_key=f"k{n}",
                    payload={},
                    next_attempt_at=T0,
                    created_at=T0,
                )
            )

    async def claimer() -> list[int]:
        got: list[int] = []
        while True:
            async with db.transaction() as s:
                batch = await claim(s, now=T0, limit=7)
                await asyncio.sleep(0)  # hold the row locks while the others claim
            if not batch:
                return got
            got += [c.notification_id for c in batch]
            async with db.transaction() as s:
                for c in batch:
                    await mark_sent(s, c.notification_id, T0)

    results = await asyncio.gather(*(claimer() for _ in range(4)))
    claimed = [i for r in results for i in r]
    assert len(claimed) == len(set(claimed)) == 60


async def test_calendar_moves_due_dates_and_rejects_bad_files_whole(
    db: Database, tmp_path: Path
) -> None:
    await world_with_bindings(db)
    loan = (await lend(db, "S1", "B1", now=T0)).loan_id  # due 03-31
    bad = tmp_path / "bad.csv"
    bad.write_text("date,name\n2027-03-31,a\n2027-13-01,b\nnext monday,c\n", encoding="utf-8")
    async with db.transaction() as s:
        with pytest.raises(ImportRejected) as err:
            await import_calendar(s, bad, TZ)
    assert [p.line for p in err.value.problems] == [3, 4]
    good = tmp_path / "good.csv"
    good.write_text("date,name\n2027/3/31,校庆\n2027-04-01,校庆\n", encoding="utf-8")
    async with db.transaction() as s:
        report = await import_calendar(s, good, TZ)
    assert (report.days, report.loans_moved) == (2, 1)
    async with db.transaction(read_only=True) as s:
        due = (await s.get_one(Loan, loan)).due_at.astimezone(TZ)
    assert due.date() == date(2027, 4, 2)
    # A new loan due on a closed day moves too.
    async with db.transaction() as s:
        result = await circ.checkout(
            s,
            actor=Actor.cli(),
            card_no="S2",
            barcode="B2",
            policy=POLICY,
            now=datetime(2027, 3, 1, 8, tzinfo=UTC),
        )
    assert result.due_at.astimezone(TZ).date() == date(2027, 4, 2)


def test_every_kind_renders_from_its_template() -> None:
    samples = {
        "hold_id": 1,
        "record_pk": 2,
        "loan_id": 3,
        "title": "<三体>",
        "ready_until": "2027-03-13T15:59:59+00:00",
        "due_at": "2027-03-31T15:59:59+00:00",
        "slot": "2027-03-28",
        "days": 3,
        "notice": "2027-w10",
        "reader_id": 5,
        "text": "<三体>",
        # Class corners: class names and pre-rendered lists are escaped too.
        "swap_id": 6,
        "item_id": 7,
        "copy_id": 8,
        "monitor_id": 9,
        "librarian_id": 10,
        "class_name": "<三体>",
        "incoming": 3,
        "outgoing": 2,
        "barcode": "B1",
        "direction": "送去",
        "outcome": "缺少",
        "week": "2027-W10",
        "day": "2027-03-28",
        "lines": "<三体>",
        "books": "<三体>",
        # statistics (issue 14): stars and purchase suggestions
        "month": "2027-02",
        "scope": "class",
        "group": "<三体>",
        "name": "李明",
        "names": "<三体>",
        "suggestion_id": 7,
        "query": "<三体>",
        "status": "purchased",
    }
    for name, kind in KINDS.items():
        data = {k: v for k, v in samples.items() if k in kind.payload.model_fields}
        if name.startswith("reading_star"):
            data["books"] = 4  # a count there, a pre-rendered list in the chase kinds
        elif name in ("weekly_new_books", "reading_list"):
            data["books"] = [{"record_pk": 2, "title": "<三体>"}]  # items with their own buttons
            data.update(week="2027-W10", send_id=1, list_id=1)
        rendered = render(name, data, TZ)
        assert "{" not in rendered.text and "&lt;三体&gt;" in rendered.text, name
        assert all(b.label and not b.label.startswith("notify.") for b in rendered.buttons)
    assert "2027-03-31" in render("due_soon", {**samples}, TZ).text


async def test_due_reminders_offer_renewal_only_when_renew_would_accept_it(db: Database) -> None:
    """Issue 19 item 4: the sweep asks the same rule as renew (renewal_refusal); a loan at its
    renewal limit or with readers waiting gets no 续借 button, and the text says why."""
    world = await world_with_bindings(db)
    free = (await lend(db, "S1", "B1", now=T0)).loan_id  # due 2027-03-31
    waited_for = (await lend(db, "S2", "B2", now=T0)).loan_id  # 三体: S3 will wait for it
    async with db.transaction() as s:
        await s.execute(
            update(Loan).where(Loan.id == free).values(renewals=POLICY.for_role("student").renewals)
        )
        await circ.place_hold(
            s,
            actor=await as_reader(s, world.reader_ids["S3"]),
            reader_id=world.reader_ids["S3"],
            record_pk=world.record_pks["r2"],
            policy=POLICY,
        )
    rules = ReminderRules(tz=TZ, policy=POLICY)
    assert await run(db, sweep_due_soon, at("2027-03-28"), rules) == 2
    async with db.transaction(read_only=True) as s:
        notes = {
            n.payload["loan_id"]: n
            for n in await s.scalars(select(Notification).where(Notification.kind == "due_soon"))
        }
    at_limit = render("due_soon", notes[free].payload, TZ)
    assert at_limit.buttons == ()
    assert f"已续借 {POLICY.for_role('student').renewals} 次，达到上限" in at_limit.text
    assert "点下面的按钮续借" not in at_limit.text and "请按时归还" in at_limit.text
    waiting = render("due_soon", notes[waited_for].payload, TZ)
    assert waiting.buttons == () and "有 1 位同学在排队预约" in waiting.text
    # renew refuses both for the same reasons.
    for card, loan_id, key in (
        ("S1", free, "renew.limit"),
        ("S2", waited_for, "renew.others_waiting"),
    ):
        async with db.transaction() as s:
            with pytest.raises(ServiceError) as refused:
                await circ.renew(
                    s,
                    actor=await as_reader(s, world.reader_ids[card]),
                    loan_id=loan_id,
                    policy=POLICY,
                    now=at("2027-03-28"),
                )
        assert refused.value.key == key
    # A renewable loan keeps its button (and the usual text).
    async with db.transaction() as s:
        await s.execute(update(Loan).where(Loan.id == free).values(renewals=0))
    assert await run(db, sweep_due_soon, at("2027-03-30"), rules) == 2
    async with db.transaction(read_only=True) as s:
        latest = await s.scalar(
            select(Notification).where(Notification.dedupe_key == f"due-soon:{free}:2027-03-30")
        )
    assert latest is not None
    fine = render("due_soon", latest.payload, TZ)
    assert [b.label for b in fine.buttons] == ["🔁 续借"] and "点下面的按钮续借" in fine.text
