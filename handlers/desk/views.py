"""What the desk shows: the texts for a scanned copy, a reader, a pick list, the hold shelf and a
run's summary, and the desk's own inline keyboards (the next step as buttons). No handling here:
handling.py calls the services and these build the replies."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup
from aiogram.utils.keyboard import InlineKeyboardBuilder

from handlers.callbacks import (
    DeskCancelCB,
    DeskLendCB,
    DeskLendToCB,
    DeskReaderCB,
    DeskReturnCB,
    HoldShelfCB,
    KeepCB,
)
from handlers.desk.states import Desk
from handlers.render import Translator, esc, fmt_date
from services.circulation import (
    CheckoutResult,
    CopyState,
    CopyStatus,
    HoldStatus,
    Person,
    ReaderDesk,
    ReturnResult,
    ShelfPage,
)
from services.circulation.desk import MAX_MATCHES, SHELF_PAGE
from services.policy import LoanPolicy, calendar_days


def _button(text: str, data: str) -> InlineKeyboardButton:
    return InlineKeyboardButton(text=text, callback_data=data)


def _markup(*rows: list[InlineKeyboardButton]) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(inline_keyboard=[row for row in rows if row])


def cancel_markup(tr: Translator) -> InlineKeyboardMarkup:
    """取消 under every question the desk asks (keeps(cancel_markup): under its refusals too)."""
    return _markup([_button(tr("desk.cancel_button"), DeskCancelCB().pack())])


def done_markup(tr: Translator) -> InlineKeyboardMarkup:
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


def corner_copy_keyboard(tr: Translator, copy_id: int, reader_id: int) -> InlineKeyboardMarkup:
    """A class corner's copy scanned while lending: lend it anyway, or end the run."""
    lend = DeskLendToCB(copy_id=copy_id, reader_id=reader_id, corner=True)
    return _markup(
        [_button(tr("desk.lend_corner_button"), lend.pack())],
        [_button(tr("desk.done_button"), DeskCancelCB(done=True).pack())],
    )


def same_title_question(
    tr: Translator,
    person: Person,
    copy: CopyState,
    have: list[str],
    *,
    no: str | None = None,
    corner: bool = False,
) -> tuple[str, InlineKeyboardMarkup]:
    """再借一本 / 不借: a second copy of a title the reader has out (``no``: what 不借 does)."""
    text = tr(
        "desk.ask_same_title",
        who=who(tr, person),
        title=esc(copy.title),
        have=esc(tr("desk.list_separator").join(have)),
        barcode=esc(copy.barcode),
    )
    sure = DeskLendToCB(
        copy_id=copy.copy_id, reader_id=person.reader_id, sure=True, corner=corner
    ).pack()
    keyboard = _markup(
        [
            _button(tr("desk.lend_again_button"), sure),
            _button(tr("desk.lend_not_button"), no or KeepCB().pack()),
        ]
    )
    return text, keyboard


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
    keyboard = InlineKeyboardBuilder()
    keyboard.row(*returns, width=4)
    if view.cannot_lend is None:
        keyboard.row(*lend)
    return keyboard.as_markup()


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
    keyboard = InlineKeyboardBuilder()
    keyboard.row(*buttons, width=5)
    keyboard.row(_button(tr("desk.cancel_button"), DeskCancelCB().pack()))
    return keyboard.as_markup()


# --- the hold shelf ---------------------------------------------------------------------------


def shelf_view(
    tr: Translator, shelf: ShelfPage, tz: ZoneInfo
) -> tuple[str, InlineKeyboardMarkup | None]:
    if not shelf.total:
        return tr("desk.shelf_empty"), None
    lines = [tr("desk.shelf_title", total=shelf.total, page=shelf.page + 1, pages=shelf.pages)]
    for n, item in enumerate(shelf.items, shelf.page * SHELF_PAGE + 1):
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


# --- a run of scans ---------------------------------------------------------------------------


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
