"""Keyboards and the command menu, built from the locale catalogue."""

from __future__ import annotations

from collections.abc import Callable

from aiogram.types import (
    BotCommand,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    ReplyKeyboardMarkup,
)

from handlers.callbacks import (
    BookCB,
    CancelHoldCB,
    ForYouCB,
    ForYouKind,
    PageCB,
    ReadingListCB,
    RenewCB,
    ReserveCB,
    SuggestCB,
)
from handlers.render import Translator
from services.catalogue import BookCard
from services.circulation import HoldView, LoanView

READER_COMMANDS = (
    "start",
    "help",
    "bind",
    "unbind",
    "loans",
    "holds",
    "recommend",
    "classmates",
    "subscribe",
    "lists",
    "settings",
)
LIBRARIAN_COMMANDS = ("checkout", "return", "reader", "stats", "stars", "suggestions")
# Class corners: described under the corners catalogue.
CORNER_LIBRARIAN_COMMANDS = ("monitor", "batch", "desk", "back", "cuishu", "clearance")


def bot_commands(tr: Translator, *, librarian: bool = False) -> list[BotCommand]:
    names = READER_COMMANDS + (LIBRARIAN_COMMANDS if librarian else ())
    commands = [BotCommand(command=name, description=tr(f"commands.{name}")) for name in names]
    if librarian:
        commands += [
            BotCommand(command=name, description=tr(f"corners.command_{name}"))
            for name in CORNER_LIBRARIAN_COMMANDS
        ]
    return commands


def main_menu(tr: Translator, *, librarian: bool = False) -> ReplyKeyboardMarkup:
    if librarian:
        return desk_menu(tr)
    return ReplyKeyboardMarkup(
        keyboard=[
            [KeyboardButton(text=tr("menu.loans")), KeyboardButton(text=tr("menu.holds"))],
            [KeyboardButton(text=tr("menu.help"))],
        ],
        resize_keyboard=True,
        is_persistent=True,
    )


def results_keyboard(
    tr: Translator, record_pks: list[int], page: int, pages: int
) -> InlineKeyboardMarkup:
    numbers = [
        InlineKeyboardButton(text=str(i + 1 + page * 10), callback_data=BookCB(record_pk=pk).pack())
        for i, pk in enumerate(record_pks)
    ]
    rows = [numbers[i : i + 5] for i in range(0, len(numbers), 5)]
    nav = []
    if page > 0:
        nav.append(
            InlineKeyboardButton(text=tr("search.prev"), callback_data=PageCB(page=page - 1).pack())
        )
    if page + 1 < pages:
        nav.append(
            InlineKeyboardButton(text=tr("search.next"), callback_data=PageCB(page=page + 1).pack())
        )
    if nav:
        rows.append(nav)
    return InlineKeyboardMarkup(inline_keyboard=rows)


def suggest_keyboard(tr: Translator) -> InlineKeyboardMarkup:
    button = InlineKeyboardButton(
        text=tr("search.suggest_button"), callback_data=SuggestCB().pack()
    )
    return InlineKeyboardMarkup(inline_keyboard=[[button]])


def card_keyboard(
    tr: Translator, card: BookCard, *, is_teacher: bool
) -> InlineKeyboardMarkup | None:
    rows: list[list[InlineKeyboardButton]] = []
    if card.my_hold_id is not None:
        rows.append(
            [
                InlineKeyboardButton(
                    text=tr("card.cancel_hold"),
                    callback_data=CancelHoldCB(hold_id=card.my_hold_id).pack(),
                )
            ]
        )
    elif card.can_reserve:
        rows.append(
            [
                InlineKeyboardButton(
                    text=tr("card.reserve"),
                    callback_data=ReserveCB(record_pk=card.record_pk).pack(),
                )
            ]
        )
        if is_teacher:
            rows.append(
                [
                    InlineKeyboardButton(
                        text=tr("card.reserve_office"),
                        callback_data=ReserveCB(record_pk=card.record_pk, office=True).pack(),
                    )
                ]
            )
    return InlineKeyboardMarkup(inline_keyboard=rows) if rows else None


def loans_keyboard(tr: Translator, loans: list[LoanView]) -> InlineKeyboardMarkup | None:
    buttons = [
        InlineKeyboardButton(
            text=tr("loans.renew_button", n=n), callback_data=RenewCB(loan_id=loan.loan_id).pack()
        )
        for n, loan in enumerate(loans, 1)
        if not loan.overdue
    ]
    if not buttons:
        return None
    return InlineKeyboardMarkup(
        inline_keyboard=[buttons[i : i + 3] for i in range(0, len(buttons), 3)]
    )


def holds_keyboard(tr: Translator, holds: list[HoldView]) -> InlineKeyboardMarkup | None:
    buttons = [
        InlineKeyboardButton(
            text=tr("holds.cancel_button", n=n),
            callback_data=CancelHoldCB(hold_id=hold.hold_id, in_list=True).pack(),
        )
        for n, hold in enumerate(holds, 1)
    ]
    if not buttons:
        return None
    return InlineKeyboardMarkup(
        inline_keyboard=[buttons[i : i + 3] for i in range(0, len(buttons), 3)]
    )


def _numbered(
    label: str, tr: Translator, pks: list[int], build: Callable[[int], str]
) -> list[InlineKeyboardButton]:
    return [
        InlineKeyboardButton(text=tr(label, n=n), callback_data=build(pk))
        for n, pk in enumerate(pks, 1)
    ]


def _rows(buttons: list[InlineKeyboardButton], width: int = 5) -> list[list[InlineKeyboardButton]]:
    return [buttons[i : i + width] for i in range(0, len(buttons), width)]


def for_you_keyboard(
    tr: Translator, record_pks: list[int], *, switch_to: ForYouKind
) -> InlineKeyboardMarkup:
    """详情 for each book, and a switch between 猜你喜欢 and 同学在读."""
    details = _numbered(
        "recommend.details_button", tr, record_pks, lambda pk: BookCB(record_pk=pk).pack()
    )
    label = (
        "recommend.classmates_button"
        if switch_to == ForYouKind.CLASSMATES
        else "recommend.for_you_button"
    )
    switch = InlineKeyboardButton(text=tr(label), callback_data=ForYouCB(kind=switch_to).pack())
    return InlineKeyboardMarkup(inline_keyboard=[*_rows(details), [switch]])


def reading_lists_keyboard(tr: Translator, list_ids: list[int]) -> InlineKeyboardMarkup | None:
    if not list_ids:
        return None
    buttons = [
        InlineKeyboardButton(text=str(n), callback_data=ReadingListCB(list_id=list_id).pack())
        for n, list_id in enumerate(list_ids, 1)
    ]
    return InlineKeyboardMarkup(inline_keyboard=_rows(buttons))


def details_keyboard(tr: Translator, record_pks: list[int]) -> InlineKeyboardMarkup | None:
    if not record_pks:
        return None
    details = _numbered(
        "recommend.details_button", tr, record_pks, lambda pk: BookCB(record_pk=pk).pack()
    )
    return InlineKeyboardMarkup(inline_keyboard=_rows(details))


def desk_menu(tr: Translator) -> ReplyKeyboardMarkup:
    """The librarian's keyboard: the desk first (a scanner types barcodes into the chat)."""
    return ReplyKeyboardMarkup(
        keyboard=[
            [
                KeyboardButton(text=tr("desk.menu_lend")),
                KeyboardButton(text=tr("desk.menu_return")),
            ],
            [
                KeyboardButton(text=tr("desk.menu_reader")),
                KeyboardButton(text=tr("desk.menu_shelf")),
            ],
            [KeyboardButton(text=tr("menu.help"))],
        ],
        resize_keyboard=True,
        is_persistent=True,
    )
