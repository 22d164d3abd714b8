"""荐购 as a short form: 书名 (pre-filled from the search that missed, or /suggest 书名) and 作者,
then 提交. The draft lives in the dispatcher's FSM storage (per chat; Redis with
SHUXIANG_REDIS_URL, else memory, where a restart drops an unfinished draft and its buttons then
say so); only 提交 writes."""

from __future__ import annotations

from typing import Any

from aiogram import F, Router
from aiogram.filters import Command, CommandObject, StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.callbacks import BookCB, SuggestCB, SuggestEditCB, SuggestField, SuggestSubmitCB
from handlers.keyboards import suggest_cancel_keyboard, suggest_form_keyboard
from handlers.middlewares import writes
from handlers.render import Translator, esc
from handlers.replies import Replies
from services.actor import Actor
from services.catalogue.card import HeldTitle, held_title, shelf_location
from services.suggestions import MAX_AUTHOR_CHARS, MAX_SUGGESTION_CHARS, suggest_purchase

LIMITS = {SuggestField.TITLE: MAX_SUGGESTION_CHARS, SuggestField.AUTHOR: MAX_AUTHOR_CHARS}


class SuggestForm(StatesGroup):
    draft = State()  # showing the draft; text is a search again
    title = State()  # the next text is the title
    author = State()  # the next text is the author


FORM_STATES = frozenset(s.state for s in SuggestForm.__states__)
WAITING = {SuggestField.TITLE: SuggestForm.title, SuggestField.AUTHOR: SuggestForm.author}
ASK = {SuggestField.TITLE: "suggest_form.ask_title", SuggestField.AUTHOR: "suggest_form.ask_author"}


def render_draft(tr: Translator, data: dict[str, Any]) -> str:
    unset = tr("suggest_form.unset")
    return tr(
        "suggest_form.draft",
        title=esc(data.get("title") or "") or unset,
        author=esc(data.get("author") or "") or unset,
    )


async def _open(state: FSMContext, tr: Translator, title: str) -> tuple[str, SuggestField | None]:
    """A fresh draft; without a title the form asks for one first."""
    title = title.strip()[:MAX_SUGGESTION_CHARS]
    await state.set_data({"title": title, "author": ""})
    if title:
        await state.set_state(SuggestForm.draft)
        return render_draft(tr, {"title": title}), None
    await state.set_state(SuggestForm.title)
    return tr(ASK[SuggestField.TITLE]), SuggestField.TITLE


def held_reply(
    tr: Translator, held: HeldTitle, shelf_map: dict[str, str]
) -> tuple[str, InlineKeyboardMarkup]:
    """A suggestion for a title the library holds: where it is instead of a 荐购."""
    location = shelf_location(shelf_map, held.clc or held.call_number)
    lines = [tr("suggest_held.title", title=esc(held.title))]
    if held.call_number:
        lines.append(tr("card.call_number", call_number=esc(held.call_number)))
    lines.append(
        tr("card.location", location=esc(location)) if location else tr("card.location_unknown")
    )
    lines.append(tr("card.copies", on_shelf=held.on_shelf, copies=held.copies))
    lines.append(tr("suggest_held.on_shelf" if held.on_shelf else "suggest_held.all_out"))
    button = InlineKeyboardButton(
        text=tr("suggest_held.open", title=held.title),
        callback_data=BookCB(record_pk=held.record_pk).pack(),
    )
    return "\n".join(lines), InlineKeyboardMarkup(inline_keyboard=[[button]])


async def _held(
    session: AsyncSession, state: FSMContext, tr: Translator, title: str, shelf_map: dict[str, str]
) -> tuple[str, InlineKeyboardMarkup] | None:
    """A held title ends the form with where the book is; None when the library lacks it."""
    held = await held_title(session, title) if title.strip() else None
    if held is None:
        return None
    await state.clear()
    return held_reply(tr, held, shelf_map)


async def on_suggest(
    callback: CallbackQuery,
    state: FSMContext,
    session: AsyncSession,
    tr: Translator,
    shelf_map: dict[str, str],
    replies: Replies,
) -> None:
    """荐购 under a search that found nothing: the draft, titled with the query."""
    message = callback.message
    if not isinstance(message, Message) or message.reply_to_message is None:
        replies.add(callback.answer(tr("search.stale"), show_alert=True))
        return
    query = message.reply_to_message.text or ""
    replies.add(callback.answer())
    held = await _held(session, state, tr, query, shelf_map)
    if held is not None:
        replies.add(message.answer(held[0], reply_markup=held[1]))
        return
    text, _ = await _open(state, tr, query)
    replies.add(message.answer(text, reply_markup=suggest_form_keyboard(tr)))


async def suggest_command(
    message: Message,
    command: CommandObject,
    state: FSMContext,
    session: AsyncSession,
    tr: Translator,
    shelf_map: dict[str, str],
    replies: Replies,
) -> None:
    held = await _held(session, state, tr, command.args or "", shelf_map)
    if held is not None:
        replies.add(message.answer(held[0], reply_markup=held[1]))
        return
    text, asking = await _open(state, tr, command.args or "")
    keyboard = suggest_cancel_keyboard(tr) if asking else suggest_form_keyboard(tr)
    replies.add(message.answer(text, reply_markup=keyboard))


async def on_edit(
    callback: CallbackQuery,
    callback_data: SuggestEditCB,
    state: FSMContext,
    tr: Translator,
    replies: Replies,
) -> None:
    if await state.get_state() not in FORM_STATES:
        replies.add(callback.answer(tr("suggest_form.stale"), show_alert=True))
        return
    await state.set_state(WAITING[callback_data.field])
    replies.add(callback.answer())
    if isinstance(callback.message, Message):
        replies.add(
            callback.message.answer(
                tr(ASK[callback_data.field]), reply_markup=suggest_cancel_keyboard(tr)
            )
        )


async def on_field_text(
    message: Message,
    state: FSMContext,
    session: AsyncSession,
    tr: Translator,
    shelf_map: dict[str, str],
    replies: Replies,
) -> None:
    """The text typed after 修改书名 / 填写作者 fills that field; the draft is shown again (a
    title the library holds ends the form with where it is)."""
    waiting = await state.get_state()
    field = SuggestField.TITLE if waiting == SuggestForm.title.state else SuggestField.AUTHOR
    text = (message.text or "").strip()
    if len(text) > LIMITS[field]:
        too_long = tr("suggest_form.too_long", limit=LIMITS[field])
        replies.add(message.reply(too_long, reply_markup=suggest_cancel_keyboard(tr)))
        return
    held = await _held(session, state, tr, text, shelf_map) if field == SuggestField.TITLE else None
    if held is not None:
        replies.add(message.answer(held[0], reply_markup=held[1]))
        return
    data = await state.update_data({"title" if field == SuggestField.TITLE else "author": text})
    await state.set_state(SuggestForm.draft)
    replies.add(message.answer(render_draft(tr, data), reply_markup=suggest_form_keyboard(tr)))


async def on_submit(
    callback: CallbackQuery,
    callback_data: SuggestSubmitCB,
    state: FSMContext,
    session: AsyncSession,
    reader: Actor | None,
    tr: Translator,
    shelf_map: dict[str, str],
    replies: Replies,
) -> None:
    """提交 records it (the service dedupes); 取消 drops the draft. A tap on a finished or
    forgotten draft's buttons only says so."""
    if await state.get_state() not in FORM_STATES:
        replies.add(callback.answer(tr("suggest_form.stale"), show_alert=True))
        return
    data = await state.get_data()
    title, author = str(data.get("title") or ""), str(data.get("author") or "")
    if callback_data.send and not title:
        replies.add(callback.answer(tr("suggest_form.need_title"), show_alert=True))
        return
    if not callback_data.send:
        await state.clear()
        replies.add(callback.answer())
        if isinstance(callback.message, Message):
            replies.add(callback.message.edit_text(tr("suggest_form.dropped")))
        return
    held = await _held(session, state, tr, title, shelf_map)
    if held is not None:
        replies.add(callback.answer())
        if isinstance(callback.message, Message):
            replies.add(callback.message.edit_text(held[0], reply_markup=held[1]))
        return
    fresh = await suggest_purchase(
        session,
        query=title,
        author=author,
        reader_id=reader.reader_id if reader else None,
        telegram_user_id=callback.from_user.id,
    )
    await state.clear()
    by = tr("suggest_form.by_author", author=esc(author)) if author else ""
    text = (
        tr("suggest_form.done", title=esc(title), author=by)
        if fresh
        else tr("suggest_form.already", title=esc(title))
    )
    replies.add(callback.answer())
    if isinstance(callback.message, Message):
        replies.add(callback.message.edit_text(text))


def build_router() -> Router:
    """A fresh router each time: a Dispatcher takes ownership of the routers it includes.
    Before the search router, so that text typed into the form is not searched."""
    router = Router(name=__name__)
    router.message.register(suggest_command, Command("suggest"))
    router.message.register(
        on_field_text,
        StateFilter(SuggestForm.title, SuggestForm.author),
        F.text,
        ~F.text.startswith("/"),
    )
    router.callback_query.register(on_suggest, SuggestCB.filter())
    router.callback_query.register(on_edit, SuggestEditCB.filter())
    router.callback_query.register(on_submit, SuggestSubmitCB.filter(), flags=writes())
    return router
