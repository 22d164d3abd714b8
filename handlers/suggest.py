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
from aiogram.types import CallbackQuery, Message
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.callbacks import SuggestCB, SuggestEditCB, SuggestField, SuggestSubmitCB
from handlers.keyboards import suggest_cancel_keyboard, suggest_form_keyboard
from handlers.middlewares import writes
from handlers.render import Translator, esc
from handlers.replies import Replies
from services.catalogue import MAX_AUTHOR_CHARS, MAX_SUGGESTION_CHARS, suggest_purchase
from services.readers import BoundReader

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


async def on_suggest(
    callback: CallbackQuery, state: FSMContext, tr: Translator, replies: Replies
) -> None:
    """荐购 under a search that found nothing: the draft, titled with the query."""
    message = callback.message
    if not isinstance(message, Message) or message.reply_to_message is None:
        replies.add(callback.answer(tr("search.stale"), show_alert=True))
        return
    text, _ = await _open(state, tr, message.reply_to_message.text or "")
    replies.add(callback.answer())
    replies.add(message.answer(text, reply_markup=suggest_form_keyboard(tr)))


async def suggest_command(
    message: Message, command: CommandObject, state: FSMContext, tr: Translator, replies: Replies
) -> None:
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
    message: Message, state: FSMContext, tr: Translator, replies: Replies
) -> None:
    """The text typed after 修改书名 / 填写作者 fills that field; the draft is shown again."""
    waiting = await state.get_state()
    field = SuggestField.TITLE if waiting == SuggestForm.title.state else SuggestField.AUTHOR
    text = (message.text or "").strip()
    if len(text) > LIMITS[field]:
        too_long = tr("suggest_form.too_long", limit=LIMITS[field])
        replies.add(message.reply(too_long, reply_markup=suggest_cancel_keyboard(tr)))
        return
    data = await state.update_data({"title" if field == SuggestField.TITLE else "author": text})
    await state.set_state(SuggestForm.draft)
    replies.add(message.answer(render_draft(tr, data), reply_markup=suggest_form_keyboard(tr)))


async def on_submit(
    callback: CallbackQuery,
    callback_data: SuggestSubmitCB,
    state: FSMContext,
    session: AsyncSession,
    reader: BoundReader | None,
    tr: Translator,
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
