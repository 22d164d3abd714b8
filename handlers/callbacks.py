"""Structured callback data. aiogram validates types when unpacking; anything else is stale."""

from __future__ import annotations

import enum
from typing import Annotated

from aiogram.filters.callback_data import CallbackData
from pydantic import Field


class BookCB(CallbackData, prefix="b"):
    record_pk: int


class PageCB(CallbackData, prefix="p"):
    page: int


class ReserveCB(CallbackData, prefix="r"):
    record_pk: int
    office: bool = False


class CancelHoldCB(CallbackData, prefix="ch"):
    hold_id: int
    in_list: bool = False  # pressed under 我的预约 (refresh the list) or under a book card


class RenewCB(CallbackData, prefix="rn"):
    loan_id: int


class SuggestCB(CallbackData, prefix="sg"):
    pass


# Bounded ids: a forged callback cannot smuggle a huge integer into a query.
RowId = Annotated[int, Field(ge=0, le=2**31 - 1)]


class WeeklyAction(enum.StrEnum):
    STOP = "stop"  # 退订
    FEWER = "fewer"  # 少一点


class WeeklyCB(CallbackData, prefix="wk"):
    action: WeeklyAction


class ForYouKind(enum.StrEnum):
    MINE = "mine"  # 猜你喜欢
    CLASSMATES = "class"  # 同学在读


class ForYouCB(CallbackData, prefix="fy"):
    kind: ForYouKind


class ReadingListCB(CallbackData, prefix="ls"):
    list_id: RowId


class WeeklyReserveCB(CallbackData, prefix="wr"):
    """预约 under the weekly list: the list keeps its buttons (unlike a book card's 预约)."""

    record_pk: RowId
