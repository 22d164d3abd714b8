"""The librarian's numbers in the chat: /stats (text and charts), /stars (读书之星, announced on
approval), /suggestions (荐购 by title, decided with a button). Class monitors get /stats for their
own class; everyone else is refused."""

from __future__ import annotations

import asyncio
from datetime import datetime
from zoneinfo import ZoneInfo

from aiogram import Router
from aiogram.filters import Command, CommandObject
from aiogram.types import (
    BufferedInputFile,
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
)
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.callbacks import StarsCB, SuggestionCB
from handlers.librarian import is_librarian
from handlers.middlewares import writes
from handlers.render import Translator, esc
from handlers.replies import Replies
from services.actor import Actor
from services.errors import ServiceError
from services.stats.figures import (
    Scope,
    classes_monitored_by,
    compute,
    current_term,
    period_for_dates,
    resolve_scope,
)
from services.stats.reports.charts import render_charts
from services.stats.reports.text import stars_text, stats_text
from services.stats.stars import announce_stars, monthly_stars, parse_month, previous_month
from services.suggestions import pending_groups, resolve
from storage.models import SuggestionStatus, utcnow

SUGGESTIONS_SHOWN = 10


async def _scope_for(session: AsyncSession, reader: Actor | None, asked: str) -> Scope | None:
    """What this reader may see: librarians anything, monitors their own class, others nothing."""
    if reader is not None and reader.is_librarian:
        return await resolve_scope(session, asked)
    if reader is None or not reader.is_monitor:
        return None
    mine = await classes_monitored_by(session, reader.own_id)
    if not asked:
        return await resolve_scope(session, mine[0]) if mine else None
    scope = await resolve_scope(session, asked)
    if scope.name not in mine:
        raise ServiceError("stats.monitor_other_class")
    return scope


async def stats_command(
    message: Message,
    command: CommandObject,
    session: AsyncSession,
    reader: Actor | None,
    tr: Translator,
    tz: ZoneInfo,
    replies: Replies,
) -> None:
    scope = await _scope_for(session, reader, (command.args or "").strip())
    if scope is None:
        replies.add(message.answer(tr("stats.only")))
        return
    first, last = current_term(utcnow().astimezone(tz).date())
    stats = await compute(session, scope, period_for_dates(first, last, tz), tz=tz)
    replies.add(message.answer(stats_text(stats, tz)))
    # Drawing takes a moment of CPU: off the event loop, so other chats are not held up. A read
    # handler's replies are never stored; uploads could not be (see test_stats_chart_replies).
    charts = await asyncio.to_thread(render_charts, stats)
    for chart in charts:
        photo = BufferedInputFile(chart.png, filename=f"{chart.name}.png")
        replies.add(message.answer_photo(photo, caption=esc(chart.title)))


def _stars_keyboard(tr: Translator, year: int, month: int) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [
                InlineKeyboardButton(
                    text=tr("stats.star.announce_button"),
                    callback_data=StarsCB(year=year, month=month).pack(),
                )
            ],
            [
                InlineKeyboardButton(
                    text=tr("stats.star.announce_monitors_button"),
                    callback_data=StarsCB(year=year, month=month, monitors=True).pack(),
                )
            ],
        ]
    )


async def stars_command(
    message: Message,
    command: CommandObject,
    session: AsyncSession,
    tr: Translator,
    tz: ZoneInfo,
    replies: Replies,
) -> None:
    asked = (command.args or "").strip()
    if asked:
        parsed = parse_month(asked)
        if parsed is None:
            replies.add(message.answer(tr("stats.star.bad_month", value=esc(asked))))
            return
        year, month = parsed
    else:
        today = datetime.now(tz).date()
        year, month = previous_month(today.year, today.month)
    stars = await monthly_stars(session, year=year, month=month, tz=tz)
    markup = _stars_keyboard(tr, year, month) if stars else None
    replies.add(
        message.answer(stars_text(stars, year=year, month=month, html=True), reply_markup=markup)
    )


async def on_announce_stars(
    callback: CallbackQuery,
    callback_data: StarsCB,
    session: AsyncSession,
    reader: Actor | None,
    tr: Translator,
    tz: ZoneInfo,
    replies: Replies,
) -> None:
    if reader is None:  # the filter let only librarians through
        return
    year, month = callback_data.year, callback_data.month
    stars = await monthly_stars(session, year=year, month=month, tz=tz)
    queued = await announce_stars(
        session,
        stars,
        year=year,
        month=month,
        tell_monitors=callback_data.monitors,
        actor=f"reader:{reader.reader_id}",
    )
    replies.add(callback.answer(tr("stats.star.announced", count=queued), show_alert=True))


async def _suggestions_view(
    session: AsyncSession, tr: Translator
) -> tuple[str, InlineKeyboardMarkup | None]:
    groups = await pending_groups(session)
    if not groups:
        return tr("stats.suggest.none"), None
    lines = [tr("stats.suggest.head", count=len(groups))]
    rows = []
    for n, group in enumerate(groups[:SUGGESTIONS_SHOWN], start=1):
        line = tr("stats.suggest.line", n=n, query=esc(group.query), readers=group.readers)
        if group.held is not None:
            line += tr("stats.suggest.held", on_shelf=group.held.on_shelf, copies=group.held.copies)
        lines.append(line)
        rows.append(
            [
                InlineKeyboardButton(
                    text=tr("stats.suggest.bought_button", n=n),
                    callback_data=SuggestionCB(suggestion_id=group.first_id, bought=True).pack(),
                ),
                InlineKeyboardButton(
                    text=tr("stats.suggest.declined_button", n=n),
                    callback_data=SuggestionCB(suggestion_id=group.first_id, bought=False).pack(),
                ),
            ]
        )
    return "\n".join(lines), InlineKeyboardMarkup(inline_keyboard=rows)


async def suggestions_command(
    message: Message, session: AsyncSession, tr: Translator, replies: Replies
) -> None:
    text, markup = await _suggestions_view(session, tr)
    replies.add(message.answer(text, reply_markup=markup))


async def on_decide_suggestion(
    callback: CallbackQuery,
    callback_data: SuggestionCB,
    session: AsyncSession,
    reader: Actor | None,
    tr: Translator,
    replies: Replies,
) -> None:
    if reader is None:  # the filter let only librarians through
        return
    decision = SuggestionStatus.PURCHASED if callback_data.bought else SuggestionStatus.REJECTED
    try:
        done = await resolve(
            session,
            decision=decision,
            suggestion_id=callback_data.suggestion_id,
            actor_reader_id=reader.reader_id,
        )
    except ServiceError:
        replies.add(callback.answer(tr("stats.suggest.gone"), show_alert=True))
        return
    status = tr(f"stats.suggestion_status.{decision.value}")
    replies.add(
        callback.answer(
            tr("stats.suggest.done", query=done.query[:60], status=status, count=done.notified),
            show_alert=True,
        )
    )
    if isinstance(callback.message, Message):
        text, markup = await _suggestions_view(session, tr)
        replies.add(callback.message.edit_text(text, reply_markup=markup))


async def refuse(message: Message, tr: Translator, replies: Replies) -> None:
    replies.add(message.answer(tr("lib.only")))


async def refuse_button(callback: CallbackQuery, tr: Translator, replies: Replies) -> None:
    replies.add(callback.answer(tr("lib.only"), show_alert=True))


def build_router() -> Router:
    """A fresh router each time: a Dispatcher takes ownership of the routers it includes."""
    router = Router(name=__name__)
    router.message.register(stats_command, Command("stats"))
    router.message.register(stars_command, Command("stars"), is_librarian)
    router.message.register(suggestions_command, Command("suggestions"), is_librarian)
    router.message.register(refuse, Command("stars", "suggestions"))
    router.callback_query.register(
        on_announce_stars, StarsCB.filter(), is_librarian, flags=writes()
    )
    router.callback_query.register(
        on_decide_suggestion, SuggestionCB.filter(), is_librarian, flags=writes()
    )
    router.callback_query.register(refuse_button, StarsCB.filter())
    router.callback_query.register(refuse_button, SuggestionCB.filter())
    return router
