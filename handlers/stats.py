"""The librarian's numbers in the chat: /stats (text and charts) and /stars (读书之星, announced on
approval). Class monitors get /stats for their own class; who may see which scope is decided by
services.stats.figures.allowed_scope (a refusal is a ServiceError the unit of work answers). The
荐购 review (/suggestions) is in handlers/suggest.py."""

from __future__ import annotations

import asyncio

from aiogram import Router
from aiogram.filters import Command, CommandObject
from aiogram.types import (
    BufferedInputFile,
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
)

from handlers.callbacks import StarsCB
from handlers.context import AnyCtx, ReaderCtx
from handlers.filters import is_librarian
from handlers.middlewares import bound
from handlers.render import Translator, esc
from services.stats.figures import allowed_scope, compute, current_term, period_for_dates
from services.stats.reports.charts import render_charts
from services.stats.reports.text import stars_text, stats_text
from services.stats.stars import announce_stars, monthly_stars, parse_month, previous_month


async def stats_command(message: Message, command: CommandObject, ctx: AnyCtx) -> None:
    scope = await allowed_scope(ctx.session, ctx.actor, command.args)
    now = ctx.now()
    first, last = current_term(now.astimezone(ctx.tz).date())
    period = period_for_dates(first, last, ctx.tz)
    stats = await compute(ctx.session, ctx.actor, scope, period, tz=ctx.tz, now=now)
    ctx.replies.add(message.answer(stats_text(stats, ctx.tz)))
    # Drawing takes a moment of CPU: off the event loop, so other chats are not held up. A read
    # handler's replies are never stored; uploads could not be (see test_stats_chart_replies).
    charts = await asyncio.to_thread(render_charts, stats)
    for chart in charts:
        photo = BufferedInputFile(chart.png, filename=f"{chart.name}.png")
        ctx.replies.add(message.answer_photo(photo, caption=esc(chart.title)))


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


async def stars_command(message: Message, command: CommandObject, ctx: ReaderCtx) -> None:
    asked = (command.args or "").strip()
    if asked:
        parsed = parse_month(asked)
        if parsed is None:
            ctx.replies.add(message.answer(ctx.tr("stats.star.bad_month", value=esc(asked))))
            return
        year, month = parsed
    else:
        today = ctx.now().astimezone(ctx.tz).date()
        year, month = previous_month(today.year, today.month)
    stars = await monthly_stars(ctx.session, ctx.actor, year=year, month=month, tz=ctx.tz)
    markup = _stars_keyboard(ctx.tr, year, month) if stars else None
    text = stars_text(stars, year=year, month=month, html=True)
    ctx.replies.add(message.answer(text, reply_markup=markup))


async def on_announce_stars(
    callback: CallbackQuery, callback_data: StarsCB, ctx: ReaderCtx
) -> None:
    year, month = callback_data.year, callback_data.month
    stars = await monthly_stars(ctx.session, ctx.actor, year=year, month=month, tz=ctx.tz)
    queued = await announce_stars(
        ctx.session,
        ctx.actor,
        stars,
        year=year,
        month=month,
        tell_monitors=callback_data.monitors,
    )
    ctx.replies.add(callback.answer(ctx.tr("stats.star.announced", count=queued), show_alert=True))


async def refuse(message: Message, ctx: AnyCtx) -> None:
    ctx.replies.add(message.answer(ctx.tr("lib.only")))


async def refuse_button(callback: CallbackQuery, ctx: AnyCtx) -> None:
    ctx.replies.add(callback.answer(ctx.tr("lib.only"), show_alert=True))


def build_router() -> Router:
    """A fresh router each time: a Dispatcher takes ownership of the routers it includes. The
    librarian filter only picks the menu: the services check the actor themselves."""
    router = Router(name=__name__)
    router.message.register(stats_command, Command("stats"))
    router.message.register(stars_command, Command("stars"), is_librarian, flags=bound())
    router.message.register(refuse, Command("stars"))
    router.callback_query.register(
        on_announce_stars, StarsCB.filter(), is_librarian, flags=bound(writes=True)
    )
    router.callback_query.register(refuse_button, StarsCB.filter())
    return router
