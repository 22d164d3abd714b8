"""荐购 in the chat. A reader's side as a short form: 书名 (pre-filled from the search that missed,
or /suggest 书名) and 作者, then 提交. The draft lives in the dispatcher's FSM storage (per chat;
Redis with SHUXIANG_REDIS_URL, else memory, where a restart drops an unfinished draft and its
buttons then say so); only 提交 writes. The librarian's side: /suggestions, the pending titles
with a 已购 / 不采购 button each (services.suggestions checks the actor)."""

from __future__ import annotations

from typing import Any

from aiogram import F, Router
from aiogram.filters import Command, CommandObject, StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message
from aiogram.utils.keyboard import InlineKeyboardBuilder

from handlers.callbacks import (
    BookCB,
    SuggestCB,
    SuggestEditCB,
    SuggestField,
    SuggestionCB,
    SuggestSubmitCB,
)
from handlers.context import AnyCtx, ReaderCtx
from handlers.filters import is_librarian
from handlers.keyboards import suggest_cancel_keyboard, suggest_form_keyboard
from handlers.middlewares import bound, writes
from handlers.render import Translator, esc
from services.catalogue.card import HeldTitle, held_title, shelf_location
from services.errors import ServiceError
from services.suggestions import (
    MAX_AUTHOR_CHARS,
    MAX_SUGGESTION_CHARS,
    SuggestionStatus,
    pending_groups,
    resolve,
    suggest_purchase,
)

# The review shows the most asked titles; the rest come up as those are decided.
SUGGESTIONS_SHOWN = 10
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
    ctx: AnyCtx, state: FSMContext, title: str, shelf_map: dict[str, str]
) -> tuple[str, InlineKeyboardMarkup] | None:
    """A held title ends the form with where the book is; None when the library lacks it."""
    held = await held_title(ctx.session, title) if title.strip() else None
    if held is None:
        return None
    await state.clear()
    return held_reply(ctx.tr, held, shelf_map)


async def on_suggest(
    callback: CallbackQuery, state: FSMContext, shelf_map: dict[str, str], ctx: AnyCtx
) -> None:
    """荐购 under a search that found nothing: the draft, titled with the query."""
    tr, replies = ctx.tr, ctx.replies
    message = callback.message
    if not isinstance(message, Message) or message.reply_to_message is None:
        replies.add(callback.answer(tr("search.stale"), show_alert=True))
        return
    query = message.reply_to_message.text or ""
    replies.add(callback.answer())
    held = await _held(ctx, state, query, shelf_map)
    if held is not None:
        replies.add(message.answer(held[0], reply_markup=held[1]))
        return
    text, _ = await _open(state, tr, query)
    replies.add(message.answer(text, reply_markup=suggest_form_keyboard(tr)))


async def suggest_command(
    message: Message,
    command: CommandObject,
    state: FSMContext,
    shelf_map: dict[str, str],
    ctx: AnyCtx,
) -> None:
    held = await _held(ctx, state, command.args or "", shelf_map)
    if held is not None:
        ctx.replies.add(message.answer(held[0], reply_markup=held[1]))
        return
    text, asking = await _open(state, ctx.tr, command.args or "")
    keyboard = suggest_cancel_keyboard(ctx.tr) if asking else suggest_form_keyboard(ctx.tr)
    ctx.replies.add(message.answer(text, reply_markup=keyboard))


async def on_edit(
    callback: CallbackQuery, callback_data: SuggestEditCB, state: FSMContext, ctx: AnyCtx
) -> None:
    tr, replies = ctx.tr, ctx.replies
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
    message: Message, state: FSMContext, shelf_map: dict[str, str], ctx: AnyCtx
) -> None:
    """The text typed after 修改书名 / 填写作者 fills that field; the draft is shown again (a
    title the library holds ends the form with where it is)."""
    tr, replies = ctx.tr, ctx.replies
    waiting = await state.get_state()
    field = SuggestField.TITLE if waiting == SuggestForm.title.state else SuggestField.AUTHOR
    text = (message.text or "").strip()
    if len(text) > LIMITS[field]:
        too_long = tr("suggest_form.too_long", limit=LIMITS[field])
        replies.add(message.reply(too_long, reply_markup=suggest_cancel_keyboard(tr)))
        return
    held = await _held(ctx, state, text, shelf_map) if field == SuggestField.TITLE else None
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
    shelf_map: dict[str, str],
    ctx: AnyCtx,
) -> None:
    """提交 records it (the service dedupes); 取消 drops the draft. A tap on a finished or
    forgotten draft's buttons only says so."""
    tr, replies = ctx.tr, ctx.replies
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
    held = await _held(ctx, state, title, shelf_map)
    if held is not None:
        replies.add(callback.answer())
        if isinstance(callback.message, Message):
            replies.add(callback.message.edit_text(held[0], reply_markup=held[1]))
        return
    fresh = await suggest_purchase(
        ctx.session,
        query=title,
        author=author,
        reader_id=ctx.actor.reader_id if ctx.actor else None,
        telegram_user_id=callback.from_user.id,
        now=ctx.now(),
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


# --- the librarian's review ---------------------------------------------------------------


async def _suggestions_view(ctx: ReaderCtx) -> tuple[str, InlineKeyboardMarkup | None]:
    tr = ctx.tr
    groups = await pending_groups(ctx.session, ctx.actor)
    if not groups:
        return tr("stats.suggest.none"), None
    lines = [tr("stats.suggest.head", count=len(groups))]
    keyboard = InlineKeyboardBuilder()
    for n, group in enumerate(groups[:SUGGESTIONS_SHOWN], start=1):
        line = tr("stats.suggest.line", n=n, query=esc(group.query), readers=group.readers)
        if group.held is not None:
            line += tr("stats.suggest.held", on_shelf=group.held.on_shelf, copies=group.held.copies)
        lines.append(line)
        keyboard.button(
            text=tr("stats.suggest.bought_button", n=n),
            callback_data=SuggestionCB(suggestion_id=group.first_id, bought=True),
        )
        keyboard.button(
            text=tr("stats.suggest.declined_button", n=n),
            callback_data=SuggestionCB(suggestion_id=group.first_id, bought=False),
        )
    keyboard.adjust(2)  # one title a row: 已购 N and 不采购 N
    return "\n".join(lines), keyboard.as_markup()


async def suggestions_command(message: Message, ctx: ReaderCtx) -> None:
    text, markup = await _suggestions_view(ctx)
    ctx.replies.add(message.answer(text, reply_markup=markup))


async def on_decide_suggestion(
    callback: CallbackQuery, callback_data: SuggestionCB, ctx: ReaderCtx
) -> None:
    tr = ctx.tr
    decision = SuggestionStatus.PURCHASED if callback_data.bought else SuggestionStatus.REJECTED
    try:
        done = await resolve(
            ctx.session,
            ctx.actor,
            decision=decision,
            suggestion_id=callback_data.suggestion_id,
            now=ctx.now(),
        )
    except ServiceError as refused:
        if refused.key != "stats.suggest.unknown":
            raise  # a refusal of the actor is answered as such
        # Decided meanwhile (another tap, the CLI): nothing left to decide.
        ctx.replies.add(callback.answer(tr("stats.suggest.gone"), show_alert=True))
        return
    status = tr(f"stats.suggestion_status.{decision.value}")
    ctx.replies.add(
        callback.answer(
            tr("stats.suggest.done", query=done.query[:60], status=status, count=done.notified),
            show_alert=True,
        )
    )
    if isinstance(callback.message, Message):
        text, markup = await _suggestions_view(ctx)
        ctx.replies.add(callback.message.edit_text(text, reply_markup=markup))


async def refuse(message: Message, ctx: AnyCtx) -> None:
    ctx.replies.add(message.answer(ctx.tr("lib.only")))


async def refuse_button(callback: CallbackQuery, ctx: AnyCtx) -> None:
    ctx.replies.add(callback.answer(ctx.tr("lib.only"), show_alert=True))


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
    # The librarian's review; the filter picks the menu, services.suggestions checks the actor.
    router.message.register(
        suggestions_command, Command("suggestions"), is_librarian, flags=bound()
    )
    router.message.register(refuse, Command("suggestions"))
    router.callback_query.register(
        on_decide_suggestion, SuggestionCB.filter(), is_librarian, flags=bound(writes=True)
    )
    router.callback_query.register(refuse_button, SuggestionCB.filter())
    return router
