"""Keeps aiogram's parsed-answer classes alive: each Bot API answer is read with
``Response[method.__returning__]``, a pydantic generic class built on first use. pydantic caches
those in a weak dictionary, so the garbage collector throws them away between updates and the
next answer builds the class again (several milliseconds each; about a third of the bot's CPU
per update under load). A request middleware holds each one the bot has used."""

from __future__ import annotations

from typing import Any

from aiogram import Bot
from aiogram.client.session.middlewares.base import (
    BaseRequestMiddleware,
    NextRequestMiddlewareType,
)
from aiogram.methods import TelegramMethod
from aiogram.methods.base import Response, TelegramType

# One per method class, process-wide (pydantic's cache is too): a few dozen at most.
_KEPT: dict[type[TelegramMethod[Any]], type[Response[Any]]] = {}


def keep_response_type(method: TelegramMethod[Any]) -> None:
    kind = type(method)
    if kind not in _KEPT:
        _KEPT[kind] = Response[method.__returning__]  # type: ignore[name-defined]


class KeepResponseTypes(BaseRequestMiddleware):
    """Holds ``Response[...]`` of each method before its answer is read (see the module doc)."""

    async def __call__(
        self,
        make_request: NextRequestMiddlewareType[TelegramType],
        bot: Bot,
        method: TelegramMethod[TelegramType],
    ) -> Response[TelegramType]:
        keep_response_type(method)
        return await make_request(bot, method)
