"""猜你喜欢, 同学在读, subscriptions, 退订/少一点 of the weekly list, and the librarian's lists."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from aiogram import Router
from aiogram.filters import Command, CommandObject
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message

from handlers.callbacks import ForYouCB, ForYouKind, ReadingListCB
from handlers.context import AnyCtx, ReaderCtx
from handlers.keyboards import details_keyboard, for_you_keyboard, reading_lists_keyboard
from handlers.middlewares import bound
from handlers.render import esc
from services.reading_lists import all_lists, entries
from services.recommend.engine import Scored
from services.recommend.model import (
    ModelCache,
    classmates_reading,
    reader_info,
    recommend_for,
)
from services.recommend.text import book_lines, render_reading_list
from services.recommend.weekly import (
    resubscribe_weekly,
    subscribe_topic,
    topics_of,
    unsubscribe_topic,
    unsubscribe_weekly,
)

SHOWN = 5


def _as_books(
    model_items: Mapping[int, object], scored: Sequence[Scored]
) -> list[dict[str, object]]:
    books = []
    for s in scored:
        item = model_items[s.pk]
        books.append(
            {
                "record_pk": s.pk,
                "title": getattr(item, "label", ""),
                "authors": getattr(item, "authors", None),
                "reasons": [r.as_dict() for r in s.reasons],
            }
        )
    return books


async def _for_you(
    ctx: ReaderCtx, recommender: ModelCache, kind: ForYouKind
) -> tuple[str, InlineKeyboardMarkup | None]:
    session, tr, now = ctx.session, ctx.tr, ctx.now()
    info = await reader_info(session, ctx.actor.own_id)
    model = await recommender.get(session)
    if info is None:
        return tr("recommend.bind_first"), None
    if kind == ForYouKind.CLASSMATES:
        scored = await classmates_reading(session, model, info, n=SHOWN, now=now)
        title, empty, switch = (
            "recommend.classmates_title",
            "recommend.classmates_empty",
            ForYouKind.MINE,
        )
    else:
        scored = await recommend_for(session, model, info, n=SHOWN, now=now)
        title, empty, switch = (
            "recommend.for_you_title",
            "recommend.for_you_empty",
            ForYouKind.CLASSMATES,
        )
    books = _as_books(model.items, scored)
    keyboard = for_you_keyboard(tr, [s.pk for s in scored], switch_to=switch)
    if not books:
        return tr(empty), keyboard
    return "\n".join([tr(title), *book_lines(tr, books)]), keyboard


async def recommend_command(message: Message, ctx: ReaderCtx, recommender: ModelCache) -> None:
    text, keyboard = await _for_you(ctx, recommender, ForYouKind.MINE)
    ctx.replies.add(message.answer(text, reply_markup=keyboard))


async def classmates_command(message: Message, ctx: ReaderCtx, recommender: ModelCache) -> None:
    text, keyboard = await _for_you(ctx, recommender, ForYouKind.CLASSMATES)
    ctx.replies.add(message.answer(text, reply_markup=keyboard))


async def on_for_you(
    callback: CallbackQuery, callback_data: ForYouCB, ctx: ReaderCtx, recommender: ModelCache
) -> None:
    text, keyboard = await _for_you(ctx, recommender, callback_data.kind)
    if isinstance(callback.message, Message):
        ctx.replies.add(callback.message.answer(text, reply_markup=keyboard))
    ctx.replies.add(callback.answer())


async def subscribe_command(message: Message, command: CommandObject, ctx: ReaderCtx) -> None:
    """/subscribe TOPIC follows a subject or author; bare /subscribe restarts the weekly list."""
    session, tr, reader_id = ctx.session, ctx.tr, ctx.actor.own_id
    topic = (command.args or "").strip()
    if not topic:
        lines = []
        if await resubscribe_weekly(session, reader_id):
            lines.append(tr("recommend.resubscribed"))
        topics = await topics_of(session, reader_id)
        if topics:
            separator = tr("recommend.topic_separator")
            lines.append(tr("recommend.subscriptions", topics=esc(separator.join(topics))))
        lines.append(tr("recommend.subscribe_usage"))
        ctx.replies.add(message.answer("\n".join(lines)))
        return
    added = await subscribe_topic(session, reader_id, topic)
    key = "recommend.subscribed" if added else "recommend.subscribed_already"
    ctx.replies.add(message.answer(tr(key, topic=esc(" ".join(topic.split())))))


async def unsubscribe_command(message: Message, command: CommandObject, ctx: ReaderCtx) -> None:
    """/unsubscribe TOPIC stops following it; bare /unsubscribe stops the weekly list."""
    topic = (command.args or "").strip()
    if not topic:
        await unsubscribe_weekly(ctx.session, ctx.actor.own_id)
        ctx.replies.add(message.answer(ctx.tr("recommend.unsubscribed")))
        return
    removed = await unsubscribe_topic(ctx.session, ctx.actor.own_id, topic)
    key = "recommend.unsubscribe_topic" if removed else "recommend.not_subscribed"
    ctx.replies.add(message.answer(ctx.tr(key, topic=esc(" ".join(topic.split())))))


async def lists_command(message: Message, ctx: AnyCtx) -> None:
    tr = ctx.tr
    summaries = [s for s in await all_lists(ctx.session) if s.count]
    if not summaries:
        ctx.replies.add(message.answer(tr("lists.browse_empty")))
        return
    lines = [tr("lists.browse_title")]
    lines += [
        tr("lists.browse_line", n=n, name=esc(s.name), count=s.count)
        for n, s in enumerate(summaries, 1)
    ]
    keyboard = reading_lists_keyboard(tr, [s.list_id for s in summaries])
    ctx.replies.add(message.answer("\n".join(lines), reply_markup=keyboard))


async def on_reading_list(
    callback: CallbackQuery, callback_data: ReadingListCB, ctx: AnyCtx
) -> None:
    tr = ctx.tr
    summaries = {s.list_id: s for s in await all_lists(ctx.session)}
    summary = summaries.get(callback_data.list_id)
    if summary is None:
        ctx.replies.add(callback.answer(tr("lists.not_found"), show_alert=True))
        return
    books = await entries(ctx.session, summary.list_id)
    payload = {
        "name": summary.name,
        "books": [{"title": b.title, "authors": b.authors, "blurb": b.blurb} for b in books],
    }
    if isinstance(callback.message, Message):
        ctx.replies.add(
            callback.message.answer(
                render_reading_list(tr, payload, sent=False),
                reply_markup=details_keyboard(tr, [b.record_pk for b in books]),
            )
        )
    ctx.replies.add(callback.answer())


def build_router() -> Router:
    """A fresh router each time: a Dispatcher takes ownership of the routers it includes."""
    router = Router(name=__name__)
    first = "recommend.bind_first"
    router.message.register(recommend_command, Command("recommend"), flags=bound(refusal=first))
    router.message.register(classmates_command, Command("classmates"), flags=bound(refusal=first))
    router.message.register(
        subscribe_command, Command("subscribe"), flags=bound(writes=True, refusal=first)
    )
    router.message.register(
        unsubscribe_command, Command("unsubscribe"), flags=bound(writes=True, refusal=first)
    )
    router.message.register(lists_command, Command("lists"))
    router.callback_query.register(on_for_you, ForYouCB.filter(), flags=bound(refusal=first))
    router.callback_query.register(on_reading_list, ReadingListCB.filter())
    return router
