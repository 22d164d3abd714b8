"""Structured callback data. aiogram validates types when unpacking; anything else is stale."""

from __future__ import annotations

from typing import Annotated

from aiogram.filters.callback_data import CallbackData
from pydantic import Field

from services.notifications import Action


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


class NotifyCB(CallbackData, prefix="nt"):
    """A button under a push (services/notifications/kinds.py declares them)."""

    action: Action
    ref: Annotated[int, Field(ge=0, le=2**31 - 1)]


class SettingsCB(CallbackData, prefix="st"):
    """Switch one reminder kind on or off in /settings."""

    kind: Annotated[str, Field(min_length=1, max_length=40, pattern=r"^[a-z_]+$")]
    on: bool
