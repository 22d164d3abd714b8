"""The desk's handling: the keyboard's buttons, the waiting states, the presses and bare scans.
Each handler parses, calls a service with the librarian's actor (the services check it again)
and hands the result to views.py."""

from __future__ import annotations

import unicodedata

from aiogram import F, Router
from aiogram.dispatcher.event.bases import SkipHandler
from aiogram.filters import CommandObject
from aiogram.fsm.context import FSMContext
from aiogram.methods import EditMessageText, SendMessage
from aiogram.types import CallbackQuery, Message

from handlers.callbacks import (
    DeskCancelCB,
    DeskLendCB,
    DeskLendToCB,
    DeskReaderCB,
    DeskReturnCB,
    HoldShelfCB,
)
from handlers.context import AnyCtx, ReaderCtx
from handlers.desk.states import RUNS, SINCE, Desk
from handlers.desk.views import (
    cancel_markup,
    checked_out_text,
    copy_keyboard,
    copy_text,
    corner_copy_keyboard,
    done_markup,
    pick_keyboard,
    pick_text,
    reader_keyboard,
    reader_text,
    returned_text,
    same_title_question,
    shelf_view,
    summary_text,
    who,
)
from handlers.filters import is_librarian
from handlers.middlewares import bound, keeps
from handlers.render import esc
from nlp.recognise import recognise
from services.circulation import (
    CheckoutResult,
    Person,
    card_at_desk,
    checkout,
    copy_at_desk,
    copy_state,
    find_readers,
    hold_shelf,
    reader_desk,
    return_copy,
    title_already_out_to,
)
from services.codes import clean_code, may_be_code
from services.errors import ServiceError
from services.i18n import t
from services.scopes import why_no_reader

MAX_SCAN = 40  # a barcode or a card number fits in 40 characters (the columns' width)


def _scan(message: Message) -> str:
    return unicodedata.normalize("NFKC", message.text or "").strip()


# --- a reader ---------------------------------------------------------------------------------


async def show_reader(message: Message, query: str, ctx: ReaderCtx) -> None:
    """/reader and the 读者 button: one match shows the reader, several a list to pick from."""
    people = await find_readers(ctx.session, query, actor=ctx.actor)
    if not people:
        # A refusal: plain text, the query quoted as typed; an unknown class or a mistyped
        # card says so.
        refused = await why_no_reader(ctx.session, query)
        if refused is not None:
            raise refused
        if query.isascii():
            raise ServiceError("reader.not_found", card_no=query)
        raise ServiceError("desk.no_reader", query=query)
    tr = ctx.tr
    if len(people) > 1:
        ctx.replies.add(
            message.answer(pick_text(tr, people), reply_markup=pick_keyboard(tr, people, None))
        )
        return
    view = await reader_desk(
        ctx.session, people[0].reader_id, ctx.policy, ctx.now(), actor=ctx.actor
    )
    ctx.replies.add(
        message.answer(reader_text(tr, view, ctx.tz), reply_markup=reader_keyboard(tr, view))
    )


async def reader_command(message: Message, command: CommandObject, ctx: ReaderCtx) -> None:
    query = (command.args or "").strip()
    if not query:
        ctx.replies.add(message.answer(ctx.tr("lib.usage_reader")))
        return
    await show_reader(message, query, ctx)


# --- the keyboard ------------------------------------------------------------------------------


async def menu_lend(message: Message, state: FSMContext, ctx: ReaderCtx) -> None:
    await state.set_state(Desk.lend_reader)
    await state.set_data({})
    ctx.replies.add(message.answer(ctx.tr("desk.ask_reader"), reply_markup=cancel_markup(ctx.tr)))


async def menu_return(message: Message, state: FSMContext, ctx: ReaderCtx) -> None:
    await state.set_state(Desk.returning)
    await state.set_data({SINCE: message.message_id})
    ctx.replies.add(message.answer(ctx.tr("desk.ask_return"), reply_markup=done_markup(ctx.tr)))


async def menu_reader(message: Message, state: FSMContext, ctx: ReaderCtx) -> None:
    await state.set_state(Desk.find_reader)
    await state.set_data({})
    ctx.replies.add(
        message.answer(ctx.tr("desk.ask_find_reader"), reply_markup=cancel_markup(ctx.tr))
    )


async def menu_shelf(message: Message, ctx: ReaderCtx) -> None:
    shelf = await hold_shelf(ctx.session, 0, actor=ctx.actor)
    text, keyboard = shelf_view(ctx.tr, shelf, ctx.tz)
    ctx.replies.add(message.answer(text, reply_markup=keyboard))


async def on_shelf_page(query: CallbackQuery, callback_data: HoldShelfCB, ctx: ReaderCtx) -> None:
    shelf = await hold_shelf(ctx.session, callback_data.page, actor=ctx.actor)
    text, keyboard = shelf_view(ctx.tr, shelf, ctx.tz)
    if isinstance(query.message, Message):
        ctx.replies.add(
            EditMessageText(
                chat_id=query.message.chat.id,
                message_id=query.message.message_id,
                text=text,
                reply_markup=keyboard,
            )
        )
    ctx.replies.add(query.answer())


# --- what the desk is waiting for --------------------------------------------------------------


async def lend_reader_text(message: Message, state: FSMContext, ctx: ReaderCtx) -> None:
    """The reader for the scanned copy (or for the books scanned next)."""
    tr = ctx.tr
    query = _scan(message)
    data = await state.get_data()
    copy_id, from_corner = data.get("copy_id"), bool(data.get("corner"))
    people = await find_readers(ctx.session, query, actor=ctx.actor)
    if not people:
        book = (
            await copy_at_desk(ctx.session, query, actor=ctx.actor)
            if len(query) <= MAX_SCAN
            else None
        )
        key = "desk.that_is_a_book" if book is not None else "desk.no_reader"
        ctx.replies.add(message.answer(tr(key, query=esc(query)), reply_markup=cancel_markup(tr)))
        return
    if len(people) > 1:
        keyboard = pick_keyboard(tr, people, copy_id, lend=True, corner=from_corner)
        ctx.replies.add(message.answer(pick_text(tr, people), reply_markup=keyboard))
        return
    if copy_id is None:
        await _start_lending(message, state, people[0], ctx)
        return
    # 不借 ends the question.
    if await _ask_first(message.chat.id, copy_id, people[0], ctx, no=DeskCancelCB().pack()):
        return
    done = await _lend(ctx, copy_id, people[0].card_no, from_corner=from_corner)
    await state.clear()
    ctx.replies.add(message.answer(checked_out_text(tr, done, ctx.tz)))


async def _ask_first(
    chat_id: int,
    copy_id: int,
    person: Person,
    ctx: ReaderCtx,
    *,
    no: str | None = None,
    corner: bool = False,
) -> bool:
    """A second copy of a title the reader already has out: ask before lending it (再借一本 /
    不借); True when asked. The copy they have themselves is left to checkout's refusal.
    不借 changes nothing (a run of scans goes on) unless ``no`` says what it does instead."""
    copy = await copy_state(
        ctx.session, ctx.policy, actor=ctx.actor, copy_id=copy_id, now=ctx.now()
    )
    if copy is None:
        return False
    have = await title_already_out_to(
        ctx.session, person.reader_id, copy.record_pk, actor=ctx.actor
    )
    if not have or copy.barcode in have:
        return False
    text, keyboard = same_title_question(ctx.tr, person, copy, have, no=no, corner=corner)
    ctx.replies.add(SendMessage(chat_id=chat_id, text=text, reply_markup=keyboard))
    return True


async def _lend(
    ctx: ReaderCtx, copy_id: int, card_no: str, *, from_corner: bool = False
) -> CheckoutResult:
    now = ctx.now()
    copy = await copy_state(ctx.session, ctx.policy, actor=ctx.actor, copy_id=copy_id, now=now)
    return await checkout(
        ctx.session,
        actor=ctx.actor,
        card_no=card_no,
        barcode=copy.barcode if copy is not None else "",
        policy=ctx.policy,
        now=now,
        from_corner=from_corner,
    )


async def _start_lending(since: Message, state: FSMContext, person: Person, ctx: ReaderCtx) -> None:
    """A run of book scans for this reader, begun at ``since`` (the message asking for it, or
    the message whose button did): a 完成 under any older message is stale."""
    tr = ctx.tr
    text = tr("desk.ask_books", who=who(tr, person))
    data = await state.get_data()
    if await state.get_state() == Desk.lend_books.state and data.get("books"):
        # Another reader's card: the next one, under what the last one borrowed.
        done = summary_text(tr, Desk.lend_books.state, data)
        text = tr("desk.next_reader", ask=text, summary=done)
    await state.set_state(Desk.lend_books)
    await state.set_data(
        {
            "reader_id": person.reader_id,
            "card_no": person.card_no,
            "who": who(tr, person),
            SINCE: since.message_id,
        }
    )
    ctx.replies.add(SendMessage(chat_id=since.chat.id, text=text, reply_markup=done_markup(tr)))


async def _note_book(state: FSMContext, title: str, barcode: str) -> None:
    """One more book for the summary (plain JSON in the FSM data)."""
    data = await state.get_data()
    await state.update_data({"books": [*data.get("books", []), [title, barcode]]})


async def lend_books_text(message: Message, state: FSMContext, ctx: ReaderCtx) -> None:
    """Each scan lends that copy to the reader chosen; a reader's card switches to them."""
    session, tr, now = ctx.session, ctx.tr, ctx.now()
    scan = _scan(message)
    data = await state.get_data()
    card_no = str(data.get("card_no", ""))
    copy_id = await copy_at_desk(session, scan, actor=ctx.actor)
    if copy_id is None:
        other = await card_at_desk(session, scan, actor=ctx.actor)
        if other is not None:
            await _start_lending(message, state, other, ctx)
            return
    else:
        lending_to = await card_at_desk(session, card_no, actor=ctx.actor)
        if lending_to is not None and await _ask_first(message.chat.id, copy_id, lending_to, ctx):
            return
    scanned = await copy_state(session, ctx.policy, actor=ctx.actor, barcode=scan, now=now)
    if scanned is not None and scanned.corner is not None and "reader_id" in data:
        # A class corner's copy: say where it is and lend it only when the librarian says so.
        keyboard = corner_copy_keyboard(tr, scanned.copy_id, int(data["reader_id"]))
        text = copy_text(tr, scanned, ctx.tz, ctx.policy)
        ctx.replies.add(message.answer(text, reply_markup=keyboard))
        return
    done = await checkout(
        session, actor=ctx.actor, card_no=card_no, barcode=scan, policy=ctx.policy, now=now
    )
    await _note_book(state, done.title, done.barcode)
    ctx.replies.add(
        message.answer(checked_out_text(tr, done, ctx.tz), reply_markup=done_markup(tr))
    )


async def returning_text(message: Message, state: FSMContext, ctx: ReaderCtx) -> None:
    done = await return_copy(
        ctx.session, actor=ctx.actor, barcode=_scan(message), policy=ctx.policy, now=ctx.now()
    )
    await _note_book(state, done.title, done.barcode)
    ctx.replies.add(
        message.answer(returned_text(ctx.tr, done, ctx.tz), reply_markup=done_markup(ctx.tr))
    )


async def find_reader_text(message: Message, state: FSMContext, ctx: ReaderCtx) -> None:
    await show_reader(message, _scan(message), ctx)
    await state.clear()


# --- presses -----------------------------------------------------------------------------------


async def on_return(query: CallbackQuery, callback_data: DeskReturnCB, ctx: ReaderCtx) -> None:
    now = ctx.now()
    copy = await copy_state(
        ctx.session, ctx.policy, actor=ctx.actor, copy_id=callback_data.copy_id, now=now
    )
    done = await return_copy(
        ctx.session,
        actor=ctx.actor,
        barcode=copy.barcode if copy is not None else "",
        policy=ctx.policy,
        now=now,
    )
    text = returned_text(ctx.tr, done, ctx.tz)
    ctx.replies.add(SendMessage(chat_id=query.from_user.id, text=text))
    ctx.replies.add(query.answer())


async def on_lend(
    query: CallbackQuery, callback_data: DeskLendCB, state: FSMContext, ctx: ReaderCtx
) -> None:
    tr = ctx.tr
    copy = await copy_state(
        ctx.session, ctx.policy, actor=ctx.actor, copy_id=callback_data.copy_id, now=ctx.now()
    )
    if copy is None:
        ctx.replies.add(query.answer(tr("errors.stale_button"), show_alert=True))
        return
    await state.set_state(Desk.lend_reader)
    await state.set_data({"copy_id": copy.copy_id, "corner": callback_data.corner})
    text = tr("desk.ask_reader_for_copy", title=esc(copy.title), barcode=esc(copy.barcode))
    ctx.replies.add(
        SendMessage(chat_id=query.from_user.id, text=text, reply_markup=cancel_markup(tr))
    )
    ctx.replies.add(query.answer())


async def on_lend_to(
    query: CallbackQuery, callback_data: DeskLendToCB, state: FSMContext, ctx: ReaderCtx
) -> None:
    tr, tz = ctx.tr, ctx.tz
    view = await reader_desk(
        ctx.session, callback_data.reader_id, ctx.policy, ctx.now(), actor=ctx.actor
    )
    chat_id = query.from_user.id
    # Picked for the copy the desk asked a reader for: 不借 ends that question.
    no = DeskCancelCB().pack() if await state.get_state() == Desk.lend_reader.state else None
    if not callback_data.sure and await _ask_first(
        chat_id, callback_data.copy_id, view.person, ctx, no=no, corner=callback_data.corner
    ):
        ctx.replies.add(query.answer())
        return
    done = await _lend(
        ctx, callback_data.copy_id, view.person.card_no, from_corner=callback_data.corner
    )
    data = await state.get_data()
    if callback_data.sure and isinstance(query.message, Message):
        ctx.replies.add(query.message.edit_reply_markup(reply_markup=None))  # asked and answered
    if await state.get_state() == Desk.lend_books.state and data.get("card_no") == done.card_no:
        # Asked in the middle of a run of scans: the run goes on.
        await _note_book(state, done.title, done.barcode)
        text = checked_out_text(tr, done, tz)
        ctx.replies.add(SendMessage(chat_id=chat_id, text=text, reply_markup=done_markup(tr)))
    else:
        await state.clear()
        ctx.replies.add(SendMessage(chat_id=chat_id, text=checked_out_text(tr, done, tz)))
    ctx.replies.add(query.answer())


async def on_reader(
    query: CallbackQuery, callback_data: DeskReaderCB, state: FSMContext, ctx: ReaderCtx
) -> None:
    view = await reader_desk(
        ctx.session, callback_data.reader_id, ctx.policy, ctx.now(), actor=ctx.actor
    )
    if callback_data.lend and isinstance(query.message, Message):
        await _start_lending(query.message, state, view.person, ctx)
    else:
        await state.clear()
        text = reader_text(ctx.tr, view, ctx.tz)
        ctx.replies.add(
            SendMessage(
                chat_id=query.from_user.id, text=text, reply_markup=reader_keyboard(ctx.tr, view)
            )
        )
    ctx.replies.add(query.answer())


async def on_cancel(
    query: CallbackQuery, callback_data: DeskCancelCB, state: FSMContext, ctx: ReaderCtx
) -> None:
    """完成 ends a run of scans with what it did; 取消 leaves a question. A press on a step that
    is over (finished already, or forgotten by a restart) only says it is over: nothing was
    cancelled by it."""
    tr = ctx.tr
    waiting = await state.get_state()
    data = await state.get_data()
    pressed = query.message.message_id if isinstance(query.message, Message) else 0
    if isinstance(query.message, Message):
        ctx.replies.add(query.message.edit_reply_markup(reply_markup=None))
    # An earlier run's 完成 while another run is open is as stale as one after a restart.
    older = waiting in RUNS and pressed < int(data.get(SINCE, 0))
    if waiting is None or not waiting.startswith(f"{Desk.__name__}:") or older:
        key = "desk.already_finished" if callback_data.done else "desk.already_over"
        ctx.replies.add(query.answer(tr(key)))
        return
    await state.clear()
    if waiting in RUNS:
        text = summary_text(tr, waiting, data)
        ctx.replies.add(SendMessage(chat_id=query.from_user.id, text=text))
        ctx.replies.add(query.answer(tr("desk.finished")))
        return
    ctx.replies.add(query.answer(tr("desk.cancelled")))


async def refuse_button(query: CallbackQuery, ctx: AnyCtx) -> None:
    ctx.replies.add(query.answer(ctx.tr("desk.only"), show_alert=True))


# --- a bare scan -------------------------------------------------------------------------------


def _one_code(message: Message) -> bool:
    """One scanner's code (letters and digits, a digit among them); words go to the search."""
    text = _scan(message)
    return 0 < len(text) <= MAX_SCAN and may_be_code(clean_code(text))


async def on_scan(message: Message, ctx: ReaderCtx) -> None:
    """A copy's barcode shows the copy, a card number the reader; anything else is a search."""
    tr, now = ctx.tr, ctx.now()
    scan = _scan(message)
    state = await copy_state(ctx.session, ctx.policy, actor=ctx.actor, barcode=scan, now=now)
    if state is not None:
        text = copy_text(tr, state, ctx.tz, ctx.policy)
        ctx.replies.add(message.answer(text, reply_markup=copy_keyboard(tr, state)))
        return
    card = await card_at_desk(ctx.session, scan, actor=ctx.actor)
    if card is None:
        known = recognise(scan)
        if known is not None and known.kind in ("isbn", "call_number"):
            raise SkipHandler  # an ISBN or a call number: the search finds the book
        # A scanned code that is no copy and no card: say so (a search would offer 荐购).
        raise ServiceError("desk.no_such_code", code=scan)
    view = await reader_desk(ctx.session, card.reader_id, ctx.policy, now, actor=ctx.actor)
    ctx.replies.add(
        message.answer(reader_text(tr, view, ctx.tz), reply_markup=reader_keyboard(tr, view))
    )


def build_router() -> Router:
    """A fresh router each time: a Dispatcher takes ownership of the routers it includes."""
    router = Router(name="handlers.desk")
    msg, cb = router.message, router.callback_query
    # Librarians only (the filter picks the menu; the services check again); bound(): the
    # handler's ctx.actor is never None. A fresh flags dict each time: aiogram adds to it.
    lib = is_librarian
    msg.register(menu_lend, F.text == t("desk.menu_lend"), lib, flags=bound())
    msg.register(menu_return, F.text == t("desk.menu_return"), lib, flags=bound())
    msg.register(menu_reader, F.text == t("desk.menu_reader"), lib, flags=bound())
    msg.register(menu_shelf, F.text == t("desk.menu_shelf"), lib, flags=bound())
    text = (F.text, ~F.text.startswith("/"), lib)
    # Refusals keep the step's button: 完成 under a refused scan, 取消 under a question.
    run, ask = keeps(done_markup), keeps(cancel_markup)
    msg.register(lend_reader_text, Desk.lend_reader, *text, flags={**bound(writes=True), **ask})
    msg.register(lend_books_text, Desk.lend_books, *text, flags={**bound(writes=True), **run})
    msg.register(returning_text, Desk.returning, *text, flags={**bound(writes=True), **run})
    msg.register(find_reader_text, Desk.find_reader, *text, flags={**bound(), **ask})
    cb.register(on_return, DeskReturnCB.filter(), lib, flags=bound(writes=True))
    cb.register(on_lend, DeskLendCB.filter(), lib, flags=bound())
    cb.register(on_lend_to, DeskLendToCB.filter(), lib, flags=bound(writes=True))
    cb.register(on_reader, DeskReaderCB.filter(), lib, flags=bound())
    cb.register(on_shelf_page, HoldShelfCB.filter(), lib, flags=bound())
    cb.register(on_cancel, DeskCancelCB.filter(), lib, flags=bound())
    for factory in (
        DeskReturnCB,
        DeskLendCB,
        DeskLendToCB,
        DeskReaderCB,
        HoldShelfCB,
        DeskCancelCB,
    ):
        cb.register(refuse_button, factory.filter())
    return router


def build_scan_router() -> Router:
    """After the class corners (an open swap draft takes scans first), before the search."""
    router = Router(name="handlers.desk.scan")
    router.message.register(on_scan, F.text, _one_code, is_librarian, flags=bound())
    return router
