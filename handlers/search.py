"""Any plain text searches the catalogue; results page by page; a tap opens the book card.

A search with exactly one hit answers with that book's card directly. The card folds a long
summary (内容简介) to a few lines with 展开/收起 (the card is edited in place) and links the
previous and next volume of its series. The text of results and cards: search_views.py."""

from __future__ import annotations

import math

from aiogram import F, Router
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message

from handlers.callbacks import BookCB, PageCB, SummaryCB
from handlers.context import AnyCtx
from handlers.keyboards import book_card_keyboard, results_keyboard, suggest_keyboard
from handlers.search_views import render_card, render_miss, render_results, summary_folded
from nlp.search import SearchEngine
from services.actor import Role
from services.catalogue.card import PAGE_SIZE, book_card, search_page

MAX_QUERY_MESSAGE = 200


def _query_of(callback: CallbackQuery) -> str | None:
    """The results message replies to the student's query: paging reads it back (荐购 too:
    handlers/suggest.py)."""
    message = callback.message
    if not isinstance(message, Message) or message.reply_to_message is None:
        return None
    return message.reply_to_message.text


async def card_reply(
    ctx: AnyCtx, record_pk: int, shelf_map: dict[str, str], *, expanded: bool = False
) -> tuple[str, InlineKeyboardMarkup | None]:
    """The card's text and buttons for this reader (actions only for a bound reader, and only
    those the rules would accept: 预约 as place_hold decides)."""
    reader = ctx.actor
    card = await book_card(
        ctx.session,
        record_pk,
        reader_id=reader.reader_id if reader else None,
        shelf_map=shelf_map,
        policy=ctx.policy,
    )
    markup = book_card_keyboard(
        ctx.tr,
        card,
        reader_bound=reader is not None,
        is_teacher=reader is not None and reader.role == Role.TEACHER,
        folded=summary_folded(card, expanded),
    )
    return render_card(ctx.tr, card, ctx.tz, expanded=expanded), markup


async def on_text(
    message: Message, ctx: AnyCtx, search: SearchEngine, shelf_map: dict[str, str]
) -> None:
    tr, replies = ctx.tr, ctx.replies
    query = (message.text or "").strip()
    if len(query) > MAX_QUERY_MESSAGE:
        replies.add(message.reply(tr("errors.too_long")))
        return
    result = await search_page(ctx.session, search, query, 0)
    if result.kind == "empty":
        replies.add(message.reply(tr("search.too_short")))
    elif not result.hits:
        miss = render_miss(tr, query, result)
        keyboard = suggest_keyboard(tr, result.suggestions)
        replies.add(message.reply(miss, reply_markup=keyboard))
    elif result.total == 1 and len(result.hits) == 1:  # one book: its card, not a list of one
        text, markup = await card_reply(ctx, result.hits[0].record_pk, shelf_map)
        replies.add(message.reply(text, reply_markup=markup))
    else:
        pages = max(1, math.ceil(result.total / PAGE_SIZE))
        replies.add(
            message.reply(
                render_results(tr, query, result, 0),
                reply_markup=results_keyboard(tr, [h.record_pk for h in result.hits], 0, pages),
            )
        )


async def on_page(
    callback: CallbackQuery, callback_data: PageCB, ctx: AnyCtx, search: SearchEngine
) -> None:
    tr, replies = ctx.tr, ctx.replies
    query = _query_of(callback)
    if query is None or not isinstance(callback.message, Message):
        replies.add(callback.answer(tr("search.stale"), show_alert=True))
        return
    result = await search_page(ctx.session, search, query, callback_data.page)
    if not result.hits:
        replies.add(callback.answer(tr("search.stale"), show_alert=True))
        return
    pages = max(1, math.ceil(result.total / PAGE_SIZE))
    replies.add(callback.answer())
    replies.add(
        callback.message.edit_text(
            render_results(tr, query, result, callback_data.page),
            reply_markup=results_keyboard(
                tr, [h.record_pk for h in result.hits], callback_data.page, pages
            ),
        )
    )


async def on_book(
    callback: CallbackQuery, callback_data: BookCB, ctx: AnyCtx, shelf_map: dict[str, str]
) -> None:
    if not isinstance(callback.message, Message):
        ctx.replies.add(callback.answer(ctx.tr("errors.stale_button"), show_alert=True))
        return
    text, markup = await card_reply(ctx, callback_data.record_pk, shelf_map)
    ctx.replies.add(callback.answer())
    ctx.replies.add(callback.message.answer(text, reply_markup=markup))


async def on_summary(
    callback: CallbackQuery, callback_data: SummaryCB, ctx: AnyCtx, shelf_map: dict[str, str]
) -> None:
    """展开 / 收起: the same card, edited in place, with the whole summary or the folded one."""
    if not isinstance(callback.message, Message):
        ctx.replies.add(callback.answer(ctx.tr("errors.stale_button"), show_alert=True))
        return
    text, markup = await card_reply(
        ctx, callback_data.record_pk, shelf_map, expanded=callback_data.expanded
    )
    ctx.replies.add(callback.answer())
    ctx.replies.add(callback.message.edit_text(text, reply_markup=markup))


def build_router() -> Router:
    """A fresh router each time: a Dispatcher takes ownership of the routers it includes."""
    router = Router(name=__name__)
    router.message.register(on_text, F.text, ~F.text.startswith("/"))
    router.callback_query.register(on_page, PageCB.filter())
    router.callback_query.register(on_book, BookCB.filter())
    router.callback_query.register(on_summary, SummaryCB.filter())
    return router
