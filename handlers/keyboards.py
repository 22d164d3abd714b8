"""Keyboards and the command menu, built from the locale catalogue."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from aiogram.filters.callback_data import CallbackData
from aiogram.types import (
    BotCommand,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    ReplyKeyboardMarkup,
)
from aiogram.utils.keyboard import InlineKeyboardBuilder, KeyboardBuilder, ReplyKeyboardBuilder

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
from services.catalogue.card import PAGE_SIZE, BookCard
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
    "sessions",
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
    return _menu([tr("menu.loans"), tr("menu.holds"), tr("menu.help")], 2, 1)


def _menu(labels: Sequence[str], *sizes: int) -> ReplyKeyboardMarkup:
    """A reply keyboard that stays under the input field, rows of ``sizes`` buttons."""
    menu = ReplyKeyboardBuilder()
    for label in labels:
        menu.button(text=label)
    menu.adjust(*sizes)
    return menu.as_markup(resize_keyboard=True, is_persistent=True)


def _pager(
    labels: tuple[str, str], page: int, pages: int, to: Callable[[int], CallbackData]
) -> list[InlineKeyboardButton]:
    """上一页 and 下一页 (``labels``), each where there is such a page."""
    previous, following = labels
    nav = []
    if page > 0:
        nav.append(InlineKeyboardButton(text=previous, callback_data=to(page - 1).pack()))
    if page + 1 < pages:
        nav.append(InlineKeyboardButton(text=following, callback_data=to(page + 1).pack()))
    return nav


def results_keyboard(
    tr: Translator, record_pks: list[int], page: int, pages: int
) -> InlineKeyboardMarkup:
    """The hits' numbers five a row, then the pages on a row of their own."""
    keyboard = InlineKeyboardBuilder()
    for i, pk in enumerate(record_pks):
        keyboard.button(text=str(i + 1 + page * PAGE_SIZE), callback_data=BookCB(record_pk=pk))
    keyboard.adjust(5)
    pager = (tr("search.prev"), tr("search.next"))
    keyboard.row(*_pager(pager, page, pages, lambda to: PageCB(page=to)))
    return keyboard.as_markup()


def suggest_keyboard(
    tr: Translator, did_you_mean: Sequence[Suggestion] = ()
) -> InlineKeyboardMarkup:
    """Under a search that found nothing: the "你是不是要找" titles first (their cards), then
    荐购 for a book the library really lacks."""
    keyboard = InlineKeyboardBuilder()
    for s in did_you_mean:
        keyboard.button(
            text=tr("search_suggest.open", title=s.title),
            callback_data=BookCB(record_pk=s.record_pk),
        )
    keyboard.button(text=tr("search.suggest_button"), callback_data=SuggestCB())
    keyboard.adjust(1)
    return keyboard.as_markup()


def _card_actions(tr: Translator, card: BookCard, *, is_teacher: bool) -> InlineKeyboardBuilder:
    """The reader's own actions on a title, one a row: 取消预约, or 预约 (and 送到办公室)."""
    keyboard = InlineKeyboardBuilder()
    if card.my_hold_id is not None:
        keyboard.button(
            text=tr("card.cancel_hold"), callback_data=CancelHoldCB(hold_id=card.my_hold_id)
        )
    elif card.can_reserve:
        keyboard.button(text=tr("card.reserve"), callback_data=ReserveCB(record_pk=card.record_pk))
        if is_teacher:
            keyboard.button(
                text=tr("card.reserve_office"),
                callback_data=ReserveCB(record_pk=card.record_pk, office=True),
            )
    keyboard.adjust(1)
    return keyboard


def card_keyboard(
    tr: Translator, card: BookCard, *, is_teacher: bool
) -> InlineKeyboardMarkup | None:
    return _or_none(_card_actions(tr, card, is_teacher=is_teacher))


def loans_keyboard(tr: Translator, loans: list[LoanView]) -> InlineKeyboardMarkup:
    """One 续借《书名》 per renewable loan (none where the rule refuses; the line says why), one a
    row so a title fits a phone, then 借阅历史."""
    keyboard = InlineKeyboardBuilder()
    for loan in loans:
        if loan.refusal is None and not loan.overdue:
            keyboard.button(
                text=tr("renewal.button", title=short_title(loan.title)),
                callback_data=RenewCB(loan_id=loan.loan_id),
            )
    keyboard.button(text=tr("renewal.history_button"), callback_data=HistoryCB(page=0, fresh=True))
    keyboard.adjust(1)
    return keyboard.as_markup()


def history_keyboard(tr: Translator, page: int, pages: int) -> InlineKeyboardMarkup | None:
    pager = (tr("history.prev"), tr("history.next"))
    nav = _pager(pager, page, pages, lambda to: HistoryCB(page=to))
    return InlineKeyboardMarkup(inline_keyboard=[nav]) if nav else None


def book_card_keyboard(
    tr: Translator,
    card: BookCard,
    *,
    reader_bound: bool,
    is_teacher: bool,
    folded: bool | None,
) -> InlineKeyboardMarkup | None:
    """The card's buttons, one a row: 展开/收起 (``folded`` None: the summary is short), the
    series neighbours, then the reader's own actions (card_keyboard) when bound."""
    keyboard = InlineKeyboardBuilder()
    if folded is not None:
        keyboard.button(
            text=tr("card_more.expand" if folded else "card_more.collapse"),
            callback_data=SummaryCB(record_pk=card.record_pk, expanded=folded),
        )
    for key, link in (
        ("card_more.series_previous", card.series_previous),
        ("card_more.series_next", card.series_next),
    ):
        if link is not None:
            keyboard.button(
                text=tr(key, title=short_title(link.title)),
                callback_data=BookCB(record_pk=link.record_pk),
            )
    keyboard.adjust(1)
    if reader_bound:
        keyboard.attach(_card_actions(tr, card, is_teacher=is_teacher))
    return _or_none(keyboard)


def holds_keyboard(tr: Translator, holds: list[HoldView]) -> InlineKeyboardMarkup | None:
    keyboard = InlineKeyboardBuilder()
    for n, hold in enumerate(holds, 1):
        keyboard.button(
            text=tr("holds.cancel_button", n=n),
            callback_data=CancelHoldCB(hold_id=hold.hold_id, in_list=True),
        )
    return _or_none(keyboard.adjust(3))


# 详情 buttons under one message, leaving room for the rows a keyboard adds below them.
MAX_DETAIL_BUTTONS = 90


def _details(tr: Translator, record_pks: list[int]) -> InlineKeyboardBuilder:
    """详情 N for each book, five a row: N is the book's number in the message above. Telegram
    takes at most 100 buttons a message (the builder refuses more): a longer list (a librarian's
    书单 has no cap) gets buttons for its first MAX_DETAIL_BUTTONS books."""
    keyboard = InlineKeyboardBuilder()
    for n, pk in enumerate(record_pks[:MAX_DETAIL_BUTTONS], 1):
        keyboard.button(
            text=tr("recommend.details_button", n=n), callback_data=BookCB(record_pk=pk)
        )
    keyboard.adjust(5)
    return keyboard


def for_you_keyboard(
    tr: Translator, record_pks: list[int], *, switch_to: ForYouKind
) -> InlineKeyboardMarkup:
    """详情 for each book, and a switch between 猜你喜欢 and 同学在读."""
    keyboard = _details(tr, record_pks)
    label = (
        "recommend.classmates_button"
        if switch_to == ForYouKind.CLASSMATES
        else "recommend.for_you_button"
    )
    keyboard.row(
        InlineKeyboardButton(text=tr(label), callback_data=ForYouCB(kind=switch_to).pack())
    )
    return keyboard.as_markup()


def reading_lists_keyboard(tr: Translator, list_ids: list[int]) -> InlineKeyboardMarkup | None:
    keyboard = InlineKeyboardBuilder()
    for n, list_id in enumerate(list_ids, 1):
        keyboard.button(text=str(n), callback_data=ReadingListCB(list_id=list_id))
    return _or_none(keyboard.adjust(5))


def details_keyboard(tr: Translator, record_pks: list[int]) -> InlineKeyboardMarkup | None:
    return _or_none(_details(tr, record_pks))


def title_buttons(tr: Translator, books: Sequence[tuple[int, str]]) -> InlineKeyboardMarkup:
    """One button a row to each book titled like the reader's message (talk.py's small talk)."""
    keyboard = InlineKeyboardBuilder()
    for pk, title in books:
        keyboard.button(
            text=tr("talk.title_button", title=title), callback_data=BookCB(record_pk=pk)
        )
    keyboard.adjust(1)
    return keyboard.as_markup()


def _or_none(keyboard: KeyboardBuilder[InlineKeyboardButton]) -> InlineKeyboardMarkup | None:
    """The markup, or None for no buttons at all (Telegram wants no keyboard, not an empty one)."""
    rows = keyboard.export()
    return InlineKeyboardMarkup(inline_keyboard=rows) if rows else None


def _confirm(tr: Translator, yes: CallbackData) -> InlineKeyboardMarkup:
    keyboard = InlineKeyboardBuilder()
    keyboard.button(text=tr("confirm.yes"), callback_data=yes)
    keyboard.button(text=tr("confirm.no"), callback_data=KeepCB())
    return keyboard.as_markup()


def cancel_hold_confirm_keyboard(
    tr: Translator, hold_id: int, origin: int, *, in_list: bool
) -> InlineKeyboardMarkup:
    return _confirm(tr, CancelHoldSureCB(hold_id=hold_id, origin=origin, in_list=in_list))


def unbind_confirm_keyboard(tr: Translator) -> InlineKeyboardMarkup:
    return _confirm(tr, UnbindSureCB())


def suggest_form_keyboard(tr: Translator) -> InlineKeyboardMarkup:
    keyboard = InlineKeyboardBuilder()
    keyboard.button(
        text=tr("suggest_form.edit_title"), callback_data=SuggestEditCB(field=SuggestField.TITLE)
    )
    keyboard.button(
        text=tr("suggest_form.edit_author"), callback_data=SuggestEditCB(field=SuggestField.AUTHOR)
    )
    keyboard.button(text=tr("suggest_form.submit"), callback_data=SuggestSubmitCB(send=True))
    keyboard.button(text=tr("suggest_form.drop"), callback_data=SuggestSubmitCB(send=False))
    keyboard.adjust(2)
    return keyboard.as_markup()


def suggest_cancel_keyboard(tr: Translator) -> InlineKeyboardMarkup:
    """取消 under the form's questions (书名?, 作者?): the same as the draft's 取消."""
    keyboard = InlineKeyboardBuilder()
    keyboard.button(text=tr("suggest_form.cancel"), callback_data=SuggestSubmitCB(send=False))
    return keyboard.as_markup()


def desk_menu(tr: Translator) -> ReplyKeyboardMarkup:
    """The librarian's keyboard: the desk first (a scanner types barcodes into the chat)."""
    desk = [tr("desk.menu_lend"), tr("desk.menu_return"), tr("desk.menu_reader")]
    return _menu([*desk, tr("desk.menu_shelf"), tr("menu.help")], 2, 2, 1)
