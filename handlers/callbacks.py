"""Structured callback data. aiogram validates types when unpacking; anything else is stale."""

from __future__ import annotations

from typing import Annotated

from aiogram.filters.callback_data import CallbackData
from pydantic import Field

DbId = Annotated[int, Field(ge=0, le=2**31 - 1)]


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


class StarsCB(CallbackData, prefix="st"):
    """Announce a month's 读书之星; ``monitors``: to their class monitors too."""

    year: Annotated[int, Field(ge=2000, le=2100)]
    month: Annotated[int, Field(ge=1, le=12)]
    monitors: bool = False


class SuggestionCB(CallbackData, prefix="sd"):
    """Decide a purchase suggestion (named by its oldest row): bought or declined."""

    suggestion_id: DbId
    bought: bool
