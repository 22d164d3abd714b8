"""Structured callback data. aiogram validates types when unpacking; anything else is stale."""

from __future__ import annotations

from aiogram.filters.callback_data import CallbackData


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
