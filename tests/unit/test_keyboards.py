"""The keyboards' layouts: rows, their order and what each button sends (built with aiogram's
builders; a phone shows five numbers a row, one title a row)."""

from __future__ import annotations

from dataclasses import replace

from aiogram.types import InlineKeyboardMarkup, ReplyKeyboardMarkup

from handlers.callbacks import BookCB, CancelHoldCB, HistoryCB, PageCB, ReserveCB, SummaryCB
from handlers.keyboards import (
    book_card_keyboard,
    desk_menu,
    details_keyboard,
    history_keyboard,
    holds_keyboard,
    main_menu,
    results_keyboard,
    title_buttons,
)
from handlers.render import Translator
from services.catalogue.card import BookCard, SeriesLink
from services.circulation import HoldStatus, HoldView

tr = Translator("zh-CN")


def shape(markup: InlineKeyboardMarkup | ReplyKeyboardMarkup | None) -> list[int]:
    if markup is None:
        return []
    rows = markup.inline_keyboard if isinstance(markup, InlineKeyboardMarkup) else markup.keyboard
    return [len(row) for row in rows]


def data(markup: InlineKeyboardMarkup | None) -> list[list[str | None]]:
    assert markup is not None
    return [[b.callback_data for b in row] for row in markup.inline_keyboard]


def card(**changes: object) -> BookCard:
    plain = BookCard(
        record_pk=3,
        record_id="r3",
        title="红楼梦",
        subtitle=None,
        authors=None,
        publisher=None,
        pub_year=None,
        call_number=None,
        clc=None,
        location=None,
        copies=1,
        on_shelf=0,
        in_corners=0,
        waiting=0,
        corner_names=(),
        my_hold_id=None,
        my_hold_status=None,
        my_hold_position=0,
        my_hold_ready_until=None,
        my_hold_office=False,
        my_loan_due=None,
    )
    return replace(plain, **changes)  # type: ignore[arg-type]


def test_results_are_five_numbers_a_row_then_the_pages() -> None:
    markup = results_keyboard(tr, list(range(1, 8)), page=1, pages=3)
    assert shape(markup) == [5, 2, 2]
    assert [b.text for b in markup.inline_keyboard[0]] == ["11", "12", "13", "14", "15"]
    assert data(markup)[0][0] == BookCB(record_pk=1).pack()
    assert data(markup)[-1] == [PageCB(page=0).pack(), PageCB(page=2).pack()]
    # One page only: no row of pages at all.
    assert shape(results_keyboard(tr, [1, 2], page=0, pages=1)) == [2]


def test_history_pager_is_none_on_a_single_page() -> None:
    assert history_keyboard(tr, 0, 1) is None
    assert data(history_keyboard(tr, 0, 2)) == [[HistoryCB(page=1).pack()]]


def test_holds_three_a_row_and_none_without_holds() -> None:
    holds = [
        HoldView(n, n, f"书{n}", HoldStatus.WAITING, n, None, deliver_to_office=False)
        for n in range(1, 5)
    ]
    markup = holds_keyboard(tr, holds)
    assert shape(markup) == [3, 1]
    assert data(markup)[1] == [CancelHoldCB(hold_id=4, in_list=True).pack()]
    assert holds_keyboard(tr, []) is None


def test_details_five_a_row_and_none_for_no_books() -> None:
    assert shape(details_keyboard(tr, list(range(1, 12)))) == [5, 5, 1]
    assert details_keyboard(tr, []) is None


def test_card_rows_fold_series_then_the_readers_own_actions() -> None:
    linked = card(series_previous=SeriesLink(1, "上"), series_next=SeriesLink(5, "下"))
    markup = book_card_keyboard(tr, linked, reader_bound=True, is_teacher=True, folded=True)
    assert data(markup) == [
        [SummaryCB(record_pk=3, expanded=True).pack()],
        [BookCB(record_pk=1).pack()],
        [BookCB(record_pk=5).pack()],
        [ReserveCB(record_pk=3).pack()],
        [ReserveCB(record_pk=3, office=True).pack()],
    ]
    # A stranger sees no actions; a short summary and no series: no keyboard at all.
    assert book_card_keyboard(tr, card(), reader_bound=False, is_teacher=False, folded=None) is None


def test_title_buttons_one_a_row() -> None:
    markup = title_buttons(tr, [(7, "谢谢你"), (8, "谢谢你（新版）")])
    assert data(markup) == [[BookCB(record_pk=7).pack()], [BookCB(record_pk=8).pack()]]


def test_menus_keep_their_rows() -> None:
    assert shape(main_menu(tr)) == [2, 1]
    assert shape(desk_menu(tr)) == [2, 2, 1]
    assert main_menu(tr, librarian=True) == desk_menu(tr)
    assert main_menu(tr).resize_keyboard and main_menu(tr).is_persistent


def test_a_list_longer_than_telegram_allows_gets_buttons_for_its_first_books() -> None:
    from handlers.keyboards import MAX_DETAIL_BUTTONS, details_keyboard
    from handlers.render import Translator

    markup = details_keyboard(Translator("zh-CN"), list(range(1, 151)))
    assert markup is not None
    buttons = [b for row in markup.inline_keyboard for b in row]
    assert len(buttons) == MAX_DETAIL_BUTTONS < 100
    assert buttons[-1].text.endswith(str(MAX_DETAIL_BUTTONS))


def test_a_push_keyboard_has_its_items_five_a_row_each_list_on_its_own_rows_then_its_buttons() -> (
    None
):
    from handlers.callbacks import BookCB, NotifyCB
    from handlers.notify_keyboards import notification_keyboard
    from services.notifications import Action
    from services.notifications.render import Rendered, RenderedButton

    reserve = tuple(RenderedButton(f"预约 {n}", Action.RESERVE, n) for n in range(1, 8))
    details = tuple(RenderedButton(f"详情 {n}", Action.DETAILS, 100 + n) for n in range(1, 3))
    stop = (
        RenderedButton("退订", Action.STOP_WEEKLY, 0),
        RenderedButton("少一点", Action.FEWER_WEEKLY, 0),
    )
    markup = notification_keyboard(Rendered("text", stop, (reserve, details)))
    assert markup is not None
    rows = [[b.text for b in row] for row in markup.inline_keyboard]
    assert rows == [
        ["预约 1", "预约 2", "预约 3", "预约 4", "预约 5"],
        ["预约 6", "预约 7"],
        ["详情 1", "详情 2"],
        ["退订", "少一点"],
    ]
    first = markup.inline_keyboard[0][0].callback_data
    assert first == NotifyCB(action=Action.RESERVE, ref=1).pack()
    assert markup.inline_keyboard[2][0].callback_data == BookCB(record_pk=101).pack()
    assert notification_keyboard(Rendered("text", ())) is None
