"""Structured callback data. Every field is bounded, so aiogram's unpacking (pydantic) refuses
forged or stale data (a 60-digit id, a negative page) before any handler or query sees it; the
press then falls through to the fallback router's polite "this button no longer works"."""

from __future__ import annotations

import enum
from typing import Annotated

from aiogram.filters.callback_data import CallbackData
from pydantic import Field

from services.notifications import Action

# Row ids are 32-bit integers on both databases.
RowId = Annotated[int, Field(ge=1, le=2**31 - 1)]
# 10 results a page: 1,000 pages is far beyond the capped result count.
Page = Annotated[int, Field(ge=0, le=999)]


class BookCB(CallbackData, prefix="b"):
    record_pk: RowId


class PageCB(CallbackData, prefix="p"):
    page: Page


class ReserveCB(CallbackData, prefix="r"):
    record_pk: RowId
    office: bool = False


class CancelHoldCB(CallbackData, prefix="ch"):
    hold_id: RowId
    in_list: bool = False  # pressed under 我的预约 (refresh the list) or under a book card


class RenewCB(CallbackData, prefix="rn"):
    loan_id: RowId


class SuggestCB(CallbackData, prefix="sg"):
    pass


class StarsCB(CallbackData, prefix="sr"):
    """Announce a month's 读书之星; ``monitors``: to their class monitors too."""

    year: Annotated[int, Field(ge=2000, le=2100)]
    month: Annotated[int, Field(ge=1, le=12)]
    monitors: bool = False


class SuggestionCB(CallbackData, prefix="sd"):
    """Decide a purchase suggestion (named by its oldest row): bought or declined."""

    suggestion_id: RowId
    bought: bool


class ForYouKind(enum.StrEnum):
    MINE = "mine"  # 猜你喜欢
    CLASSMATES = "class"  # 同学在读


class ForYouCB(CallbackData, prefix="fy"):
    kind: ForYouKind


class ReadingListCB(CallbackData, prefix="ls"):
    list_id: RowId


class NotifyCB(CallbackData, prefix="nt"):
    """A button under a push (services/notifications/kinds.py declares them)."""

    action: Action
    ref: Annotated[int, Field(ge=0, le=2**31 - 1)]


class SettingsCB(CallbackData, prefix="st"):
    """Switch one reminder kind on or off in /settings."""

    kind: Annotated[str, Field(min_length=1, max_length=40, pattern=r"^[a-z_]+$")]
    on: bool


class SwapItemCB(CallbackData, prefix="ci"):
    """收到 / 缺少 / 破损 for one copy of a corner batch."""

    item_id: RowId
    outcome: Annotated[int, Field(ge=0, le=2)]  # index into OUTCOMES


class SwapSendCB(CallbackData, prefix="cs"):
    swap_id: RowId
    send: bool = True  # False: cancel the draft


# Telegram message ids are positive 32-bit integers.
MessageId = Annotated[int, Field(ge=1, le=2**31 - 1)]


class CancelHoldSureCB(CallbackData, prefix="chy"):
    """确定 under "确定要取消预约…吗？"; ``origin`` is the list or card the 取消 was under."""

    hold_id: RowId
    origin: MessageId
    in_list: bool = False


class UnbindSureCB(CallbackData, prefix="ub"):
    """确定 under "确定要解除绑定吗？"."""


class KeepCB(CallbackData, prefix="kp"):
    """再想想 under any confirmation: nothing changes."""


class SuggestField(enum.StrEnum):
    TITLE = "t"
    AUTHOR = "a"


class SuggestEditCB(CallbackData, prefix="se"):
    """修改书名 / 填写作者 in the 荐购 draft: the next text fills that field."""

    field: SuggestField


class SuggestSubmitCB(CallbackData, prefix="ss"):
    """提交 (``send``) or 取消 the 荐购 draft."""

    send: bool


class SummaryCB(CallbackData, prefix="bs"):
    """展开 / 收起 the summary on a book card (the card is edited in place)."""

    record_pk: RowId
    expanded: bool


class HistoryCB(CallbackData, prefix="hy"):
    """A page of 借阅历史; ``fresh``: pressed under 我的借阅 (a new message, not an edit)."""

    page: Page
    fresh: bool = False


# --- the circulation desk (handlers/desk.py) ---------------------------------------------------


class DeskReturnCB(CallbackData, prefix="dr"):
    """归还 a copy shown after a scan or in a reader's view."""

    copy_id: RowId


class DeskLendCB(CallbackData, prefix="dl"):
    """借出 a copy on the shelf: asks for the reader next. ``corner``: a class corner's copy the
    librarian was shown and lends anyway (it leaves the corner)."""

    copy_id: RowId
    corner: bool = False


class DeskLendToCB(CallbackData, prefix="dt"):
    """Lend this copy to this reader (the one it is kept for, or the one picked from a list);
    ``sure``: asked already (they have another copy of the title out) and told to go ahead;
    ``corner``: a class corner's copy, lent anyway after the desk said where it is."""

    copy_id: RowId
    reader_id: RowId
    sure: bool = False
    corner: bool = False


class DeskReaderCB(CallbackData, prefix="dv"):
    """Open a reader's view; ``lend``: start lending books to them (scan one after another)."""

    reader_id: RowId
    lend: bool = False


class DeskCancelCB(CallbackData, prefix="dx"):
    """Leave whatever the desk was waiting for (a reader, books to lend or to take back);
    ``done``: the 完成 under a run of scans (then a summary), else 取消."""

    done: bool = False


class HoldShelfCB(CallbackData, prefix="hs"):
    """A page of 预约架."""

    page: Page


class WebSessionCB(CallbackData, prefix="ws"):
    """退出 under /sessions: sign one web browser out."""

    session_id: RowId
