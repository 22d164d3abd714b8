"""The circulation desk in the librarian's chat. A barcode scanner types the code and Enter, so a
bare barcode is a scan: the copy's state and the obvious next step as buttons (归还 when it
is out, 借出 when it is on the shelf, 借给 the reader it is kept for). The keyboard's 借出, 归还
and 读者 wait for the next scans in an aiogram FSM state (per chat, in the dispatcher's
storage: memory, or Redis with SHUXIANG_REDIS_URL so a restart keeps it); 预约架 lists the hold
shelf. Students never reach these handlers (librarian filter).

Two routers: ``build_router`` (buttons, waiting states, presses) runs before the class corners, so
a card scanned while the desk waits for a reader is not taken for a corner barcode;
``build_scan_router`` (bare scans) runs after them, so an open corner draft still collects scans.
"""

from __future__ import annotations

import unicodedata
from typing import Any
from zoneinfo import ZoneInfo

from aiogram import F, Router
from aiogram.dispatcher.event.bases import SkipHandler
from aiogram.filters import CommandObject
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.methods import EditMessageText, SendMessage
from aiogram.types import (
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
    TelegramObject,
)
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.callbacks import (
    DeskCancelCB,
    DeskLendCB,
    DeskLendToCB,
    DeskReaderCB,
    DeskReturnCB,
    HoldShelfCB,
    KeepCB,
)
from handlers.middlewares import keeps, writes
from handlers.render import Translator, esc, fmt_date
from handlers.replies import Replies
from nlp.recognise import recognise
from services.actor import Actor
from services.circulation import (
    CheckoutResult,
    CopyState,
    Person,
    ReaderDesk,
    ReturnResult,
    checkout,
    copy_state,
    find_copy_by_barcode,
    find_reader_by_card,
    find_readers,
    hold_shelf,
    reader_desk,
    return_copy,
    title_already_out_to,
)
from services.circulation.desk import MAX_MATCHES
from services.codes import clean_code, may_be_code
from services.errors import ServiceError
from services.i18n import t
from services.policy import LoanPolicy, calendar_days
from services.scopes import why_no_reader
from storage.models import CopyStatus, HoldStatus

MAX_SCAN = 40  # a barcode or a card number fits in 40 characters (the columns' width)
SINCE = "since"  # FSM data: the message a run of scans began at (older 完成 buttons are stale)


class Desk(StatesGroup):
    lend_reader = State()  # data: copy_id (optional): the next text names the reader
    lend_books = State()  # data: reader_id: each scan lends that copy to them
    returning = State()  # each scan takes a copy back
    find_reader = State()  # the next text names a reader to show


def librarian(event: TelegramObject, reader: Actor | None = None) -> bool:
    return reader is not None and reader.is_librarian


def _button(text: str, data: str) -> InlineKeyboardButton:
    return InlineKeyboardButton(text=text, callback_data=data)


def _markup(*rows: list[InlineKeyboardButton]) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(inline_keyboard=[row for row in rows if row])


def _cancel(tr: Translator) -> InlineKeyboardMarkup:
    """取消 under every question the desk asks (keeps(_cancel): under its refusals too)."""
    return _markup([_button(tr("desk.cancel_button"), DeskCancelCB().pack())])


def _done(tr: Translator) -> InlineKeyboardMarkup:
    """完成 under a run of scans (lending or taking back): it ends with a summary."""
    return _markup([_button(tr("desk.done_button"), DeskCancelCB(done=True).pack())])


def who(tr: Translator, person: Person) -> str:
    if person.class_name:
        return tr(
            "desk.who",
            name=esc(person.name),
            class_name=esc(person.class_name),
            card_no=esc(person.card_no),
        )
    return tr("desk.who_no_class", name=esc(person.name), card_no=esc(person.card_no))


# --- what happened: shared with /checkout and /return ---------------------------------------


def checked_out_text(tr: Translator, done: CheckoutResult, tz: ZoneInfo) -> str:
    text = tr(
        "lib.checked_out",
        title=esc(done.title),
        barcode=esc(done.barcode),
        name=esc(done.reader_name),
        card_no=esc(done.card_no),
        due=fmt_date(done.due_at, tz),
    )
    return text + tr("lib.collected") if done.collected_hold else text


def returned_text(tr: Translator, done: ReturnResult, tz: ZoneInfo) -> str:
    lines = [
        tr(
            "lib.returned",
            title=esc(done.title),
            barcode=esc(done.barcode),
            name=esc(done.reader_name),
            card_no=esc(done.card_no),
        )
    ]
    late = calendar_days(done.due_at, done.returned_at, tz)
    if late:
        lines.append(tr("lib.returned_overdue", days=late))
    if done.held_for_name:
        key = "lib.returned_hold_office" if done.deliver_to_office else "lib.returned_hold"
        lines.append(tr(key, name=esc(done.held_for_name), card_no=esc(done.held_for_card)))
    return "\n".join(lines)


# --- a scanned copy ---------------------------------------------------------------------------


def _state_line(tr: Translator, state: CopyState, tz: ZoneInfo, policy: LoanPolicy) -> list[str]:
    status = state.status
    if state.borrower is not None and state.due_at is not None:
        line = tr("desk.copy_on_loan", who=who(tr, state.borrower), due=fmt_date(state.due_at, tz))
        return [line + (tr("desk.copy_overdue") if state.overdue else "")]
    if state.held_for is not None and state.ready_until is not None:
        lines = [
            tr(
                "desk.copy_hold_shelf",
                who=who(tr, state.held_for),
                until=fmt_date(state.ready_until, tz),
            )
        ]
        if state.held_for_at_limit:
            limit = policy.for_role(state.held_for.role).max_loans
            lines.append(
                tr("desk.copy_hold_shelf_at_limit", name=esc(state.held_for.name), limit=limit)
            )
        elif state.held_for_refusal is not None:
            why = esc(state.held_for_refusal.render(tr.locale))
            lines.append(tr("desk.cannot_lend", why=why))
        return lines
    if state.corner is not None:  # in the corner cycle: where it is, and lend only when asked
        place = state.corner
        return [tr(f"desk.copy_corner_{place.stage.value}", class_name=esc(place.class_name))]
    if status == CopyStatus.ON_SHELF:
        return [tr("desk.copy_on_shelf")]
    if status == CopyStatus.IN_TRANSIT:
        return [tr("desk.copy_in_transit")]
    if status == CopyStatus.IN_CORNER:
        return [tr("desk.copy_in_corner")]
    return [tr("desk.copy_unavailable", status=tr(f"desk.status_{status.value}"))]


def copy_text(tr: Translator, state: CopyState, tz: ZoneInfo, policy: LoanPolicy) -> str:
    lines = [tr("desk.copy_title", title=esc(state.title), barcode=esc(state.barcode))]
    if state.call_number:
        lines.append(tr("desk.copy_call_number", call_number=esc(state.call_number)))
    return "\n".join(lines + _state_line(tr, state, tz, policy))


def copy_keyboard(tr: Translator, state: CopyState) -> InlineKeyboardMarkup | None:
    """The obvious next step: take it back, lend it, or hand it to the reader it is kept for."""
    if state.borrower is not None:
        return _markup(
            [_button(tr("desk.return_button"), DeskReturnCB(copy_id=state.copy_id).pack())]
        )
    if state.held_for is not None:
        if state.held_for_refusal is not None:
            return None  # checkout would refuse them: the text says why
        data = DeskLendToCB(copy_id=state.copy_id, reader_id=state.held_for.reader_id).pack()
        return _markup([_button(tr("desk.lend_to_button", name=state.held_for.name), data)])
    if state.corner is not None:
        data = DeskLendCB(copy_id=state.copy_id, corner=True).pack()
        return _markup([_button(tr("desk.lend_corner_button"), data)])
    if state.status in (CopyStatus.ON_SHELF, CopyStatus.IN_TRANSIT):
        return _markup([_button(tr("desk.lend_button"), DeskLendCB(copy_id=state.copy_id).pack())])
    return None


# --- a reader ---------------------------------------------------------------------------------


def reader_text(tr: Translator, view: ReaderDesk, tz: ZoneInfo) -> str:
    person = view.person
    lines = [
        tr(
            "lib.reader",
            name=esc(person.name),
            card_no=esc(person.card_no),
            role=tr(f"role.{person.role}"),
            class_name=esc(person.class_name or ""),
        ),
        tr("lib.reader_loans", count=len(view.loans)),
    ]
    for n, loan in enumerate(view.loans, 1):
        overdue = tr("lib.reader_overdue") if loan.overdue else ""
        lines.append(
            tr(
                "desk.reader_loan_line",
                n=n,
                title=esc(loan.title),
                barcode=esc(loan.barcode),
                due=fmt_date(loan.due_at, tz),
                overdue=overdue,
            )
        )
    if not view.loans:
        lines.append(tr("lib.reader_none"))
    if view.at_limit:
        lines.append(tr("desk.reader_limit", limit=view.max_loans))
    elif view.cannot_lend is not None:
        lines.append(tr("desk.cannot_lend", why=esc(view.cannot_lend.render(tr.locale))))
    lines.append(tr("lib.reader_holds", count=len(view.holds)))
    for hold in view.holds:
        if hold.status == HoldStatus.READY and hold.ready_until is not None:
            state = tr("desk.reader_hold_ready", until=fmt_date(hold.ready_until, tz))
        else:
            state = tr("lib.reader_hold_waiting", position=hold.position)
        lines.append(tr("lib.reader_hold_line", title=esc(hold.title), state=state))
    if not view.holds:
        lines.append(tr("lib.reader_none"))
    return "\n".join(lines)


def reader_keyboard(tr: Translator, view: ReaderDesk) -> InlineKeyboardMarkup:
    returns = [
        _button(tr("desk.return_n_button", n=n), DeskReturnCB(copy_id=loan.copy_id).pack())
        for n, loan in enumerate(view.loans, 1)
    ]
    # 借书给 TA only when checkout would lend them something (reader_text says why not).
    lend = [
        _button(
            tr("desk.lend_more_button"),
            DeskReaderCB(reader_id=view.person.reader_id, lend=True).pack(),
        )
    ]
    rows = [returns[i : i + 4] for i in range(0, len(returns), 4)]
    return _markup(*rows, lend if view.cannot_lend is None else [])


def pick_text(tr: Translator, people: list[Person]) -> str:
    lines = [tr("desk.pick_reader", count=min(len(people), MAX_MATCHES))]
    lines += [
        tr("desk.pick_line", n=n, who=who(tr, p)) for n, p in enumerate(people[:MAX_MATCHES], 1)
    ]
    if len(people) > MAX_MATCHES:
        lines.append(tr("desk.pick_reader_more", count=MAX_MATCHES))
    return "\n".join(lines)


def pick_keyboard(
    tr: Translator,
    people: list[Person],
    copy_id: int | None,
    *,
    lend: bool = False,
    corner: bool = False,
) -> InlineKeyboardMarkup:
    """Numbered buttons: lend the waiting copy to them, start lending to them, or show them."""
    buttons = []
    for n, person in enumerate(people[:MAX_MATCHES], 1):
        if copy_id is not None:
            data = DeskLendToCB(copy_id=copy_id, reader_id=person.reader_id, corner=corner).pack()
        else:
            data = DeskReaderCB(reader_id=person.reader_id, lend=lend).pack()
        buttons.append(_button(str(n), data))
    rows = [buttons[i : i + 5] for i in range(0, len(buttons), 5)]
    return _markup(*rows, [_button(tr("desk.cancel_button"), DeskCancelCB().pack())])


async def show_reader(
    message: Message,
    query: str,
    session: AsyncSession,
    tr: Translator,
    tz: ZoneInfo,
    policy: LoanPolicy,
    replies: Replies,
) -> None:
    """/reader and the 读者 button: one match shows the reader, several a list to pick from."""
    people = await find_readers(session, query)
    if not people:
        # A refusal: plain text, the query quoted as typed; an unknown class or a mistyped
        # card says so.
        refused = await why_no_reader(session, query)
        if refused is not None:
            raise refused
        if query.isascii():
            raise ServiceError("reader.not_found", card_no=query)
        raise ServiceError("desk.no_reader", query=query)
    if len(people) > 1:
        replies.add(
            message.answer(pick_text(tr, people), reply_markup=pick_keyboard(tr, people, None))
        )
        return
    view = await reader_desk(session, people[0].reader_id, policy)
    replies.add(message.answer(reader_text(tr, view, tz), reply_markup=reader_keyboard(tr, view)))


async def reader_command(
    message: Message,
    command: CommandObject,
    session: AsyncSession,
    tr: Translator,
    tz: ZoneInfo,
    policy: LoanPolicy,
    replies: Replies,
) -> None:
    query = (command.args or "").strip()
    if not query:
        replies.add(message.answer(tr("lib.usage_reader")))
        return
    await show_reader(message, query, session, tr, tz, policy, replies)


# --- the keyboard ------------------------------------------------------------------------------


async def menu_lend(message: Message, state: FSMContext, tr: Translator, replies: Replies) -> None:
    await state.set_state(Desk.lend_reader)
    await state.set_data({})
    replies.add(message.answer(tr("desk.ask_reader"), reply_markup=_cancel(tr)))


async def menu_return(
    message: Message, state: FSMContext, tr: Translator, replies: Replies
) -> None:
    await state.set_state(Desk.returning)
    await state.set_data({SINCE: message.message_id})
    replies.add(message.answer(tr("desk.ask_return"), reply_markup=_done(tr)))


async def menu_reader(
    message: Message, state: FSMContext, tr: Translator, replies: Replies
) -> None:
    await state.set_state(Desk.find_reader)
    await state.set_data({})
    replies.add(message.answer(tr("desk.ask_find_reader"), reply_markup=_cancel(tr)))


async def _shelf(
    session: AsyncSession, tr: Translator, tz: ZoneInfo, page: int
) -> tuple[str, InlineKeyboardMarkup | None]:
    shelf = await hold_shelf(session, page)
    if not shelf.total:
        return tr("desk.shelf_empty"), None
    lines = [tr("desk.shelf_title", total=shelf.total, page=shelf.page + 1, pages=shelf.pages)]
    for n, item in enumerate(shelf.items, shelf.page * 10 + 1):
        lines.append(
            tr(
                "desk.shelf_line",
                n=n,
                title=esc(item.title),
                barcode=esc(item.barcode),
                who=who(tr, item.reader),
                until=fmt_date(item.ready_until, tz),
                office=tr("desk.shelf_office") if item.deliver_to_office else "",
            )
        )
    nav = []
    if shelf.page > 0:
        nav.append(_button(tr("desk.shelf_prev"), HoldShelfCB(page=shelf.page - 1).pack()))
    if shelf.page + 1 < shelf.pages:
        nav.append(_button(tr("desk.shelf_next"), HoldShelfCB(page=shelf.page + 1).pack()))
    return "\n".join(lines), _markup(nav) if nav else None


async def menu_shelf(
    message: Message, session: AsyncSession, tr: Translator, tz: ZoneInfo, replies: Replies
) -> None:
    text, keyboard = await _shelf(session, tr, tz, 0)
    replies.add(message.answer(text, reply_markup=keyboard))


async def on_shelf_page(
    query: CallbackQuery,
    callback_data: HoldShelfCB,
    session: AsyncSession,
    tr: Translator,
    tz: ZoneInfo,
    replies: Replies,
) -> None:
    text, keyboard = await _shelf(session, tr, tz, callback_data.page)
    if isinstance(query.message, Message):
        replies.add(
            EditMessageText(
                chat_id=query.message.chat.id,
                message_id=query.message.message_id,
                text=text,
                reply_markup=keyboard,
            )
        )
    replies.add(query.answer())


# --- what the desk is waiting for --------------------------------------------------------------


def _scan(message: Message) -> str:
    return unicodedata.normalize("NFKC", message.text or "").strip()


async def lend_reader_text(
    message: Message,
    state: FSMContext,
    session: AsyncSession,
    reader: Actor,
    tr: Translator,
    tz: ZoneInfo,
    policy: LoanPolicy,
    replies: Replies,
) -> None:
    """The reader for the scanned copy (or for the books scanned next)."""
    query = _scan(message)
    data = await state.get_data()
    copy_id, from_corner = data.get("copy_id"), bool(data.get("corner"))
    people = await find_readers(session, query)
    if not people:
        book = await find_copy_by_barcode(session, query) if len(query) <= MAX_SCAN else None
        key = "desk.that_is_a_book" if book is not None else "desk.no_reader"
        replies.add(message.answer(tr(key, query=esc(query)), reply_markup=_cancel(tr)))
        return
    if len(people) > 1:
        keyboard = pick_keyboard(tr, people, copy_id, lend=True, corner=from_corner)
        replies.add(message.answer(pick_text(tr, people), reply_markup=keyboard))
        return
    if copy_id is None:
        await _start_lending(message, state, people[0], tr, replies)
        return
    asking = (message.chat.id, session, copy_id, people[0], tr, policy, replies)
    if await _ask_first(*asking, no=DeskCancelCB().pack()):  # 不借 ends the question
        return
    done = await _lend(session, copy_id, people[0].card_no, reader, policy, from_corner=from_corner)
    await state.clear()
    replies.add(message.answer(checked_out_text(tr, done, tz)))


async def _ask_first(
    chat_id: int,
    session: AsyncSession,
    copy_id: int,
    person: Person,
    tr: Translator,
    policy: LoanPolicy,
    replies: Replies,
    *,
    no: str | None = None,
    corner: bool = False,
) -> bool:
    """A second copy of a title the reader already has out: ask before lending it (再借一本 /
    不借); True when asked. The copy they have themselves is left to checkout's refusal.
    不借 changes nothing (a run of scans goes on) unless ``no`` says what it does instead."""
    copy = await copy_state(session, policy, copy_id=copy_id)
    if copy is None:
        return False
    have = await title_already_out_to(session, person.reader_id, copy.record_pk)
    if not have or copy.barcode in have:
        return False
    text = tr(
        "desk.ask_same_title",
        who=who(tr, person),
        title=esc(copy.title),
        have=esc(tr("desk.list_separator").join(have)),
        barcode=esc(copy.barcode),
    )
    sure = DeskLendToCB(
        copy_id=copy_id, reader_id=person.reader_id, sure=True, corner=corner
    ).pack()
    keyboard = _markup(
        [
            _button(tr("desk.lend_again_button"), sure),
            _button(tr("desk.lend_not_button"), no or KeepCB().pack()),
        ]
    )
    replies.add(SendMessage(chat_id=chat_id, text=text, reply_markup=keyboard))
    return True


async def _lend(
    session: AsyncSession,
    copy_id: int,
    card_no: str,
    actor: Actor,
    policy: LoanPolicy,
    *,
    from_corner: bool = False,
) -> CheckoutResult:
    copy = await copy_state(session, policy, copy_id=copy_id)
    barcode = copy.barcode if copy is not None else ""
    return await checkout(
        session,
        card_no=card_no,
        barcode=barcode,
        policy=policy,
        actor_reader_id=actor.reader_id,
        from_corner=from_corner,
    )


async def _start_lending(
    since: Message, state: FSMContext, person: Person, tr: Translator, replies: Replies
) -> None:
    """A run of book scans for this reader, begun at ``since`` (the message asking for it, or
    the message whose button did): a 完成 under any older message is stale."""
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
    replies.add(SendMessage(chat_id=since.chat.id, text=text, reply_markup=_done(tr)))


def summary_text(tr: Translator, waiting: str | None, data: dict[str, Any]) -> str:
    """What a run of scans did, for 完成 (or a command that ends it): 本次借出 3 册：…"""
    lending = waiting == Desk.lend_books.state
    books = [(str(title), str(barcode)) for title, barcode in data.get("books", [])]
    if not books:
        return tr("desk.summary_none_lent" if lending else "desk.summary_none_returned")
    lines = [
        tr(
            "desk.summary_lent" if lending else "desk.summary_returned",
            count=len(books),
            who=str(data.get("who", "")),
        )
    ]
    lines += [
        tr("desk.summary_line", n=n, title=esc(title), barcode=esc(barcode))
        for n, (title, barcode) in enumerate(books, 1)
    ]
    return "\n".join(lines)


async def _note_book(state: FSMContext, title: str, barcode: str) -> None:
    """One more book for the summary (plain JSON in the FSM data)."""
    data = await state.get_data()
    await state.update_data({"books": [*data.get("books", []), [title, barcode]]})


async def lend_books_text(
    message: Message,
    state: FSMContext,
    session: AsyncSession,
    reader: Actor,
    tr: Translator,
    tz: ZoneInfo,
    policy: LoanPolicy,
    replies: Replies,
) -> None:
    """Each scan lends that copy to the reader chosen; a reader's card switches to them."""
    scan = _scan(message)
    data = await state.get_data()
    card_no = str(data.get("card_no", ""))
    copy = await find_copy_by_barcode(session, scan)
    if copy is None:
        other = await find_reader_by_card(session, scan)
        if other is not None:
            await _start_lending(message, state, Person.of(other), tr, replies)
            return
    else:
        lending_to = await find_reader_by_card(session, card_no)
        if lending_to is not None and await _ask_first(
            message.chat.id, session, copy.id, Person.of(lending_to), tr, policy, replies
        ):
            return
    scanned = await copy_state(session, policy, barcode=scan)
    if scanned is not None and scanned.corner is not None and "reader_id" in data:
        # A class corner's copy: say where it is and lend it only when the librarian says so.
        lend = DeskLendToCB(copy_id=scanned.copy_id, reader_id=int(data["reader_id"]), corner=True)
        keyboard = _markup(
            [_button(tr("desk.lend_corner_button"), lend.pack())],
            [_button(tr("desk.done_button"), DeskCancelCB(done=True).pack())],
        )
        replies.add(message.answer(copy_text(tr, scanned, tz, policy), reply_markup=keyboard))
        return
    done = await checkout(
        session, card_no=card_no, barcode=scan, policy=policy, actor_reader_id=reader.reader_id
    )
    await _note_book(state, done.title, done.barcode)
    replies.add(message.answer(checked_out_text(tr, done, tz), reply_markup=_done(tr)))


async def returning_text(
    message: Message,
    state: FSMContext,
    session: AsyncSession,
    reader: Actor,
    tr: Translator,
    tz: ZoneInfo,
    policy: LoanPolicy,
    replies: Replies,
) -> None:
    done = await return_copy(
        session, barcode=_scan(message), policy=policy, actor_reader_id=reader.reader_id
    )
    await _note_book(state, done.title, done.barcode)
    replies.add(message.answer(returned_text(tr, done, tz), reply_markup=_done(tr)))


async def find_reader_text(
    message: Message,
    state: FSMContext,
    session: AsyncSession,
    tr: Translator,
    tz: ZoneInfo,
    policy: LoanPolicy,
    replies: Replies,
) -> None:
    await show_reader(message, _scan(message), session, tr, tz, policy, replies)
    await state.clear()


# --- presses -----------------------------------------------------------------------------------


async def on_return(
    query: CallbackQuery,
    callback_data: DeskReturnCB,
    session: AsyncSession,
    reader: Actor,
    tr: Translator,
    tz: ZoneInfo,
    policy: LoanPolicy,
    replies: Replies,
) -> None:
    copy = await copy_state(session, policy, copy_id=callback_data.copy_id)
    done = await return_copy(
        session,
        barcode=copy.barcode if copy is not None else "",
        policy=policy,
        actor_reader_id=reader.reader_id,
    )
    replies.add(SendMessage(chat_id=query.from_user.id, text=returned_text(tr, done, tz)))
    replies.add(query.answer())


async def on_lend(
    query: CallbackQuery,
    callback_data: DeskLendCB,
    state: FSMContext,
    session: AsyncSession,
    tr: Translator,
    policy: LoanPolicy,
    replies: Replies,
) -> None:
    copy = await copy_state(session, policy, copy_id=callback_data.copy_id)
    if copy is None:
        replies.add(query.answer(tr("errors.stale_button"), show_alert=True))
        return
    await state.set_state(Desk.lend_reader)
    await state.set_data({"copy_id": copy.copy_id, "corner": callback_data.corner})
    text = tr("desk.ask_reader_for_copy", title=esc(copy.title), barcode=esc(copy.barcode))
    replies.add(SendMessage(chat_id=query.from_user.id, text=text, reply_markup=_cancel(tr)))
    replies.add(query.answer())


async def on_lend_to(
    query: CallbackQuery,
    callback_data: DeskLendToCB,
    state: FSMContext,
    session: AsyncSession,
    reader: Actor,
    tr: Translator,
    tz: ZoneInfo,
    policy: LoanPolicy,
    replies: Replies,
) -> None:
    view = await reader_desk(session, callback_data.reader_id, policy)
    chat_id = query.from_user.id
    # Picked for the copy the desk asked a reader for: 不借 ends that question.
    no = DeskCancelCB().pack() if await state.get_state() == Desk.lend_reader.state else None
    if not callback_data.sure and await _ask_first(
        chat_id,
        session,
        callback_data.copy_id,
        view.person,
        tr,
        policy,
        replies,
        no=no,
        corner=callback_data.corner,
    ):
        replies.add(query.answer())
        return
    done = await _lend(
        session,
        callback_data.copy_id,
        view.person.card_no,
        reader,
        policy,
        from_corner=callback_data.corner,
    )
    data = await state.get_data()
    if callback_data.sure and isinstance(query.message, Message):
        replies.add(query.message.edit_reply_markup(reply_markup=None))  # asked and answered
    if await state.get_state() == Desk.lend_books.state and data.get("card_no") == done.card_no:
        # Asked in the middle of a run of scans: the run goes on.
        await _note_book(state, done.title, done.barcode)
        text = checked_out_text(tr, done, tz)
        replies.add(SendMessage(chat_id=chat_id, text=text, reply_markup=_done(tr)))
    else:
        await state.clear()
        replies.add(SendMessage(chat_id=chat_id, text=checked_out_text(tr, done, tz)))
    replies.add(query.answer())


async def on_reader(
    query: CallbackQuery,
    callback_data: DeskReaderCB,
    state: FSMContext,
    session: AsyncSession,
    tr: Translator,
    tz: ZoneInfo,
    policy: LoanPolicy,
    replies: Replies,
) -> None:
    view = await reader_desk(session, callback_data.reader_id, policy)
    if callback_data.lend and isinstance(query.message, Message):
        await _start_lending(query.message, state, view.person, tr, replies)
    else:
        await state.clear()
        text = reader_text(tr, view, tz)
        replies.add(
            SendMessage(
                chat_id=query.from_user.id, text=text, reply_markup=reader_keyboard(tr, view)
            )
        )
    replies.add(query.answer())


RUNS = (Desk.lend_books.state, Desk.returning.state)


async def on_cancel(
    query: CallbackQuery,
    callback_data: DeskCancelCB,
    state: FSMContext,
    tr: Translator,
    replies: Replies,
) -> None:
    """完成 ends a run of scans with what it did; 取消 leaves a question. A press on a step that
    is over (finished already, or forgotten by a restart) only says it is over: nothing was
    cancelled by it."""
    waiting = await state.get_state()
    data = await state.get_data()
    pressed = query.message.message_id if isinstance(query.message, Message) else 0
    if isinstance(query.message, Message):
        replies.add(query.message.edit_reply_markup(reply_markup=None))
    # An earlier run's 完成 while another run is open is as stale as one after a restart.
    older = waiting in RUNS and pressed < int(data.get(SINCE, 0))
    if waiting is None or not waiting.startswith(f"{Desk.__name__}:") or older:
        key = "desk.already_finished" if callback_data.done else "desk.already_over"
        replies.add(query.answer(tr(key)))
        return
    await state.clear()
    if waiting in RUNS:
        replies.add(SendMessage(chat_id=query.from_user.id, text=summary_text(tr, waiting, data)))
        replies.add(query.answer(tr("desk.finished")))
        return
    replies.add(query.answer(tr("desk.cancelled")))


async def refuse_button(query: CallbackQuery, tr: Translator, replies: Replies) -> None:
    replies.add(query.answer(tr("desk.only"), show_alert=True))


# --- a bare scan -------------------------------------------------------------------------------


def _one_code(message: Message) -> bool:
    """One scanner's code (letters and digits, a digit among them); words go to the search."""
    text = _scan(message)
    return 0 < len(text) <= MAX_SCAN and may_be_code(clean_code(text))


async def on_scan(
    message: Message,
    session: AsyncSession,
    tr: Translator,
    tz: ZoneInfo,
    policy: LoanPolicy,
    replies: Replies,
) -> None:
    """A copy's barcode shows the copy, a card number the reader; anything else is a search."""
    scan = _scan(message)
    state = await copy_state(session, policy, barcode=scan)
    if state is not None:
        replies.add(
            message.answer(copy_text(tr, state, tz, policy), reply_markup=copy_keyboard(tr, state))
        )
        return
    card = await find_reader_by_card(session, scan)
    if card is None:
        known = recognise(scan)
        if known is not None and known.kind in ("isbn", "call_number"):
            raise SkipHandler  # an ISBN or a call number: the search finds the book
        # A scanned code that is no copy and no card: say so (a search would offer 荐购).
        raise ServiceError("desk.no_such_code", code=scan)
    view = await reader_desk(session, card.id, policy)
    replies.add(message.answer(reader_text(tr, view, tz), reply_markup=reader_keyboard(tr, view)))


def build_router() -> Router:
    """A fresh router each time: a Dispatcher takes ownership of the routers it includes."""
    router = Router(name=__name__)
    msg, cb = router.message, router.callback_query
    msg.register(menu_lend, F.text == t("desk.menu_lend"), librarian)
    msg.register(menu_return, F.text == t("desk.menu_return"), librarian)
    msg.register(menu_reader, F.text == t("desk.menu_reader"), librarian)
    msg.register(menu_shelf, F.text == t("desk.menu_shelf"), librarian)
    text = (F.text, ~F.text.startswith("/"), librarian)
    # Refusals keep the step's button: 完成 under a refused scan, 取消 under a question.
    run, ask = keeps(_done), keeps(_cancel)
    msg.register(lend_reader_text, Desk.lend_reader, *text, flags={**writes(), **ask})
    msg.register(lend_books_text, Desk.lend_books, *text, flags={**writes(), **run})
    msg.register(returning_text, Desk.returning, *text, flags={**writes(), **run})
    msg.register(find_reader_text, Desk.find_reader, *text, flags=ask)
    cb.register(on_return, DeskReturnCB.filter(), librarian, flags=writes())
    cb.register(on_lend, DeskLendCB.filter(), librarian)
    cb.register(on_lend_to, DeskLendToCB.filter(), librarian, flags=writes())
    cb.register(on_reader, DeskReaderCB.filter(), librarian)
    cb.register(on_shelf_page, HoldShelfCB.filter(), librarian)
    cb.register(on_cancel, DeskCancelCB.filter(), librarian)
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
    router = Router(name=f"{__name__}.scan")
    router.message.register(on_scan, F.text, _one_code, librarian)
    return router
