"""Keyboards and the command menu, built from the locale catalogue."""

from __future__ import annotations

from collections.abc import Callable, Sequence

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
    CancelHoldSureCB,
    ForYouCB,
    ForYouKind,
    HistoryCB,
    KeepCB,
    PageCB,
    ReadingListCB,
    RenewCB,
    ReserveCB,
    SuggestCB,
    SuggestEditCB,
    SuggestField,
    SuggestSubmitCB,
    SummaryCB,
    UnbindSureCB,
)
from handlers.render import Translator, short_title
from nlp.search import Suggestion
from services.catalogue.card import BookCard, SeriesLink
from services.circulation import HoldView, LoanView

# The menu of someone not bound yet (the default scope): what works without a card.
STRANGER_COMMANDS = ("start", "help", "bind", "lists")
READER_COMMANDS = (
    "start",
    "help",
    "loans",
    "history",
    "holds",
    "recommend",
    "classmates",
    "lists",
    "subscribe",
    "settings",
    "suggest",
    "bind",
    "unbind",
)
LIBRARIAN_COMMANDS = ("checkout", "return", "reader", "stats", "stars", "suggestions")
# Class corners: described under the corners catalogue.
CORNER_LIBRARIAN_COMMANDS = ("monitor", "batch", "desk", "back", "cuishu", "clearance")
# A class monitor's own: their corner, their class's overdue list, who has a corner book.
MONITOR_COMMANDS = (
    ("corner", "commands.corner"),
    ("cuishu", "commands.cuishu_monitor"),
    ("holder", "commands.holder"),
)


def bot_commands(
    tr: Translator, *, librarian: bool = False, monitor: bool = False, stranger: bool = False
) -> list[BotCommand]:
    """The command menu of a role: a stranger's (the default scope), a reader's, plus a class
    monitor's or the librarian's (set per chat on binding, on /start and at startup)."""
    if stranger:
        return [BotCommand(command=n, description=tr(f"commands.{n}")) for n in STRANGER_COMMANDS]
    names = READER_COMMANDS + (LIBRARIAN_COMMANDS if librarian else ())
    commands = [BotCommand(command=name, description=tr(f"commands.{name}")) for name in names]
    if monitor and not librarian:
        commands += [
            BotCommand(command=name, description=tr(key)) for name, key in MONITOR_COMMANDS
        ]
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


def suggest_keyboard(
    tr: Translator, did_you_mean: Sequence[Suggestion] = ()
) -> InlineKeyboardMarkup:
    """Under a search that found nothing: the "你是不是要找" titles first (their cards), then
    荐购 for a book the library really lacks."""
    rows = [
        [
            InlineKeyboardButton(
                text=tr("search_suggest.open", title=s.title),
                callback_data=BookCB(record_pk=s.record_pk).pack(),
            )
        ]
        for s in did_you_mean
    ]
    button = InlineKeyboardButton(
        text=tr("search.suggest_button"), callback_data=SuggestCB().pack()
    )
    return InlineKeyboardMarkup(inline_keyboard=[*rows, [button]])


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


def loans_keyboard(tr: Translator, loans: list[LoanView]) -> InlineKeyboardMarkup:
    """One 续借《书名》 per renewable loan (none where the rule refuses; the line says why), one a
    row so a title fits a phone, then 借阅历史."""
    rows = [
        [
            InlineKeyboardButton(
                text=tr("renewal.button", title=short_title(loan.title)),
                callback_data=RenewCB(loan_id=loan.loan_id).pack(),
            )
        ]
        for loan in loans
        if loan.refusal is None and not loan.overdue
    ]
    history = HistoryCB(page=0, fresh=True).pack()
    rows.append([InlineKeyboardButton(text=tr("renewal.history_button"), callback_data=history)])
    return InlineKeyboardMarkup(inline_keyboard=rows)


def history_keyboard(tr: Translator, page: int, pages: int) -> InlineKeyboardMarkup | None:
    nav = []
    if page > 0:
        nav.append(
            InlineKeyboardButton(
                text=tr("history.prev"), callback_data=HistoryCB(page=page - 1).pack()
            )
        )
    if page + 1 < pages:
        nav.append(
            InlineKeyboardButton(
                text=tr("history.next"), callback_data=HistoryCB(page=page + 1).pack()
            )
        )
    return InlineKeyboardMarkup(inline_keyboard=[nav]) if nav else None


def _series_button(tr: Translator, key: str, link: SeriesLink) -> InlineKeyboardButton:
    return InlineKeyboardButton(
        text=tr(key, title=short_title(link.title)),
        callback_data=BookCB(record_pk=link.record_pk).pack(),
    )


def book_card_keyboard(
    tr: Translator,
    card: BookCard,
    *,
    reader_bound: bool,
    is_teacher: bool,
    folded: bool | None,
) -> InlineKeyboardMarkup | None:
    """The card's buttons: 展开/收起 (``folded`` None: the summary is short), the series
    neighbours, then the reader's own actions (card_keyboard) when bound."""
    rows: list[list[InlineKeyboardButton]] = []
    if folded is not None:
        rows.append(
            [
                InlineKeyboardButton(
                    text=tr("card_more.expand" if folded else "card_more.collapse"),
                    callback_data=SummaryCB(record_pk=card.record_pk, expanded=folded).pack(),
                )
            ]
        )
    if card.series_previous is not None:
        rows.append([_series_button(tr, "card_more.series_previous", card.series_previous)])
    if card.series_next is not None:
        rows.append([_series_button(tr, "card_more.series_next", card.series_next)])
    own = card_keyboard(tr, card, is_teacher=is_teacher) if reader_bound else None
    if own is not None:
        rows += own.inline_keyboard
    return InlineKeyboardMarkup(inline_keyboard=rows) if rows else None


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


def _confirm(tr: Translator, yes: str) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [
                InlineKeyboardButton(text=tr("confirm.yes"), callback_data=yes),
                InlineKeyboardButton(text=tr("confirm.no"), callback_data=KeepCB().pack()),
            ]
        ]
    )


def cancel_hold_confirm_keyboard(
    tr: Translator, hold_id: int, origin: int, *, in_list: bool
) -> InlineKeyboardMarkup:
    sure = CancelHoldSureCB(hold_id=hold_id, origin=origin, in_list=in_list)
    return _confirm(tr, sure.pack())


def unbind_confirm_keyboard(tr: Translator) -> InlineKeyboardMarkup:
    return _confirm(tr, UnbindSureCB().pack())


def suggest_form_keyboard(tr: Translator) -> InlineKeyboardMarkup:
    def button(label: str, data: str) -> InlineKeyboardButton:
        return InlineKeyboardButton(text=tr(label), callback_data=data)

    return InlineKeyboardMarkup(
        inline_keyboard=[
            [
                button("suggest_form.edit_title", SuggestEditCB(field=SuggestField.TITLE).pack()),
                button("suggest_form.edit_author", SuggestEditCB(field=SuggestField.AUTHOR).pack()),
            ],
            [
                button("suggest_form.submit", SuggestSubmitCB(send=True).pack()),
                button("suggest_form.drop", SuggestSubmitCB(send=False).pack()),
            ],
        ]
    )


def suggest_cancel_keyboard(tr: Translator) -> InlineKeyboardMarkup:
    """取消 under the form's questions (书名?, 作者?): the same as the draft's 取消."""
    button = InlineKeyboardButton(
        text=tr("suggest_form.cancel"), callback_data=SuggestSubmitCB(send=False).pack()
    )
    return InlineKeyboardMarkup(inline_keyboard=[[button]])


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
