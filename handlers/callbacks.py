"""Structured callback data. aiogram validates types when unpacking; anything else is stale."""

from __future__ import annotations

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


# Bounded ids: anything outside fails validation and is treated as a stale button.
RowId = Annotated[int, Field(ge=0, le=2**31 - 1)]


class SwapItemCB(CallbackData, prefix="ci"):
    """收到 / 缺少 / 破损 for one copy of a corner batch."""

    item_id: RowId
    outcome: Annotated[int, Field(ge=0, le=2)]  # index into OUTCOMES


class SwapSendCB(CallbackData, prefix="cs"):
    swap_id: RowId
    send: bool = True  # False: cancel the draft
