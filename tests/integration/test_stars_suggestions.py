"""读书之星 and purchase-suggestion decisions on the fixed library of tests/stats_world.py."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from services.errors import ServiceError
from services.notifications import (
    READING_STAR,
    READING_STAR_MONITOR,
    SUGGESTION_RESOLVED,
    render,
)
from services.stats.stars import announce_stars, monthly_stars
from services.stats.figures import ScopeKind
from services.suggestions import pending_groups, resolve
from storage.db import Database
from storage.models import Notification, PurchaseSuggestion, SuggestionStatus
from tests.stats_world import TZ, build_stats_world


async def test_september_stars(db: Database) -> None:
    await build_stats_world(db)
    async with db.transaction(read_only=True) as s:
        stars = await monthly_stars(s, year=2026, month=9, tz=TZ)
    # 张一: 三体 and 红楼梦. 李二: 三体 twice counts once. 王三: back the same day, nothing.
    # 赵四: 无分类之书 and 红楼梦 (lent in August, returned in September).
    assert [(st.kind, st.group, st.name, st.books) for st in stars] == [
        (ScopeKind.GRADE, "高一", "张一", 2),
        (ScopeKind.GRADE, "高二", "赵四", 2),
        (ScopeKind.CLASS, "高一(1)班", "张一", 2),
        (ScopeKind.CLASS, "高二(1)班", "赵四", 2),
    ]
    async with db.transaction(read_only=True) as s:
        october = await monthly_stars(s, year=2026, month=10, tz=TZ)
    # 王三 returned 三体 on 20 Oct after 15 days: star of 高一, of 高一(2)班.
    assert [(st.group, st.name, st.books) for st in october] == [
        ("高一", "王三", 1),
        ("高一(2)班", "王三", 1),
    ]


async def test_ties_share_the_title(db: Database) -> None:
    await build_stats_world(db)
    async with db.transaction(read_only=True) as s:
        stars = await monthly_stars(s, year=2026, month=9, tz=TZ)
    by_group: dict[str, list[str]] = {}
    for st in stars:
        by_group.setdefault(st.group, []).append(st.name)
    assert all(len(names) == 1 for names in by_group.values())
    # 李二 read one book: not a star of 高一(1)班, where 张一 read two.
    assert "李二" not in {st.name for st in stars}


async def test_announce_to_winners_then_monitors_once(db: Database) -> None:
    ids = await build_stats_world(db)
    async with db.transaction() as s:
        stars = await monthly_stars(s, year=2026, month=9, tz=TZ)
        first = await announce_stars(s, stars, year=2026, month=9, tell_monitors=False, actor="cli")
    async with db.transaction() as s:
        approved = await announce_stars(
            s, stars, year=2026, month=9, tell_monitors=True, actor="cli"
        )
        again = await announce_stars(s, stars, year=2026, month=9, tell_monitors=True, actor="cli")
    assert (first, approved, again) == (4, 2, 0)
    async with db.transaction(read_only=True) as s:
        notes = list(
            await s.scalars(
                select(Notification)
                .where(Notification.kind.in_((READING_STAR.name, READING_STAR_MONITOR.name)))
                .order_by(Notification.id)
            )
        )
    winners = [(n.reader_id, n.payload["group"]) for n in notes if n.kind == READING_STAR.name]
    assert sorted(winners) == sorted(
        [
            (ids["S1"], "高一"),
            (ids["S1"], "高一(1)班"),
            (ids["S4"], "高二"),
            (ids["S4"], "高二(1)班"),
        ]
    )
    monitors = {n.reader_id: n.payload for n in notes if n.kind == READING_STAR_MONITOR.name}
    assert monitors[ids["S2"]]["names"] == "张一"
    assert monitors[ids["S6"]]["class_name"] == "高二(1)班"
    assert set(monitors) == {ids["S2"], ids["S6"]}
    # The sender renders them from the declared kinds' templates.
    texts = [render(n.kind, n.payload, TZ).text for n in notes]
    assert any(text.startswith("🌟 恭喜你当选 2026-09 高一(1)班 的「读书之星」") for text in texts)
    assert any("高二(1)班 的「读书之星」：赵四" in text for text in texts)


async def test_suggestions_grouped_then_decided_and_readers_told(db: Database) -> None:
    ids = await build_stats_world(db)
    async with db.transaction(read_only=True) as s:
        groups = await pending_groups(s)
    assert [(g.query, g.readers) for g in groups] == [
        ("哈利波特", 3),
        ("小王子", 1),
        ("百年孤独", 1),
    ]
    async with db.transaction() as s:
        done = await resolve(
            s, decision=SuggestionStatus.PURCHASED, suggestion_id=groups[0].first_id
        )
    # Three suggestions; the unbound Telegram user has no reader to tell.
    assert (done.query, done.suggestions, done.notified) == ("哈利波特", 3, 2)
    async with db.transaction() as s:
        declined = await resolve(s, decision=SuggestionStatus.REJECTED, query=" 小王子 ")
    assert declined.notified == 1
    async with db.transaction(read_only=True) as s:
        assert [g.query for g in await pending_groups(s)] == ["百年孤独"]
        rows = await s.execute(select(PurchaseSuggestion.query, PurchaseSuggestion.status))
        statuses: dict[str, str] = {query: status for query, status in rows}
        notes = list(
            await s.scalars(
                select(Notification).where(Notification.kind == SUGGESTION_RESOLVED.name)
            )
        )
    assert statuses["哈利波特"] == SuggestionStatus.PURCHASED
    assert statuses["小王子"] == SuggestionStatus.REJECTED
    told = sorted((n.reader_id, n.payload["status"]) for n in notes)
    assert told == sorted(
        [
            (ids["S1"], SuggestionStatus.PURCHASED.value),
            (ids["S2"], SuggestionStatus.PURCHASED.value),
            (ids["S3"], SuggestionStatus.REJECTED.value),
        ]
    )
    texts = {n.reader_id: render(n.kind, n.payload, TZ).text for n in notes}
    assert "「哈利波特」图书馆已经买了" in texts[ids["S1"]]
    assert "「小王子」这次图书馆没有采购" in texts[ids["S3"]]
    # Decided already: a second press says so and changes nothing.
    with pytest.raises(ServiceError):
        async with db.transaction() as s:
            await resolve(s, decision=SuggestionStatus.REJECTED, suggestion_id=groups[0].first_id)


async def test_monthly_job_tells_last_months_winners_once(db: Database) -> None:
    from apscheduler.triggers.cron import CronTrigger

    from bot.config import Settings
    from bot.jobs import JobContext, build_registry

    ids = await build_stats_world(db)
    settings = Settings(timezone=TZ.key)
    registry = build_registry()
    job = registry.get("reading-stars")
    assert job is not None
    first_of_october = datetime(2026, 10, 1, 1, 0, tzinfo=UTC)  # 09:00 in Shanghai
    # The registry's timer fires then: the 1st of the month at 09:00, school time.
    trigger = job.trigger(settings)
    assert isinstance(trigger, CronTrigger)
    assert trigger.get_next_fire_time(None, datetime(2026, 9, 20, tzinfo=UTC)) == first_of_october
    ctx = JobContext(db=db, settings=settings, clock=lambda: first_of_october)
    assert await registry.run_once("reading-stars", ctx) == 4
    assert await registry.run_once("reading-stars", ctx) == 0
    async with db.transaction(read_only=True) as s:
        told = set(
            await s.scalars(
                select(Notification.reader_id).where(Notification.kind == READING_STAR.name)
            )
        )
        monitors = await s.scalar(
            select(func.count(Notification.id)).where(
                Notification.kind == READING_STAR_MONITOR.name
            )
        )
    # The winners only: their monitors wait for the librarian.
    assert told == {ids["S1"], ids["S4"]} and monitors == 0
