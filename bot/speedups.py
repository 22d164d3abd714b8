"""What aiogram spends on every update that the bot does without.

- Answer classes: each Bot API answer is read with ``Response[method.__returning__]``, a pydantic
  generic class built on first use and cached in a weak dictionary, so the garbage collector
  throws it away between updates and the next answer builds it again (milliseconds each).
  :class:`KeepResponseTypes`, a request middleware, holds each one the bot has used.
- Filters in threads: aiogram runs every filter that is not a coroutine function, every
  ``F.text == ...`` and ``F.data.startswith(...)`` among them, through ``asyncio.to_thread``: a
  dozen thread round trips per update before a handler is chosen. :func:`inline_filters` runs
  them in the event loop; they only look at the update and the handler data.
- Answers nobody reads: a reply queued without ``then=`` (handlers/replies.py) is answered with
  the whole sent or edited Message, keyboard and all: ~75 pydantic objects validated and thrown
  away, a fifth of the bot's CPU. :class:`SkipUnusedResults` leaves a successful answer to such
  a call unread; any other answer (an error, a 429, a migration) goes through aiogram's own
  check as before, and every other call is read in full.
- Reading JSON: every answer that is read (getUpdates' batches above all) goes through the
  standard library's ``json.loads``, ~7% of the bot's CPU; sessions built on
  :class:`SkipUnusedResults` read it with orjson instead (a few times faster).
"""

from __future__ import annotations

from collections.abc import Callable
from http import HTTPStatus
from typing import Any, cast

import orjson
from aiogram import Bot, Dispatcher
from aiogram.client.session.base import BaseSession
from aiogram.client.session.middlewares.base import (
    BaseRequestMiddleware,
    NextRequestMiddlewareType,
)
from aiogram.methods import TelegramMethod
from aiogram.methods.base import Response, TelegramType

from handlers.replies import RESULT_UNUSED


class KeepResponseTypes(BaseRequestMiddleware):
    """Holds ``Response[...]`` of each method before its answer is read (see the module doc)."""

    def __init__(self) -> None:
        # One per method class the bot has used: a few dozen at most.
        self.kept: dict[type[TelegramMethod[Any]], type[Response[Any]]] = {}

    async def __call__(
        self,
        make_request: NextRequestMiddlewareType[TelegramType],
        bot: Bot,
        method: TelegramMethod[TelegramType],
    ) -> Response[TelegramType]:
        kind = type(method)
        if kind not in self.kept:
            self.kept[kind] = Response[method.__returning__]  # type: ignore[name-defined]
        return await make_request(bot, method)


def inline_filters(dp: Dispatcher) -> int:
    """Make the synchronous filters of every router included so far run in the event loop (see
    the module doc); returns how many. Routers included later keep aiogram's threads."""
    changed = 0
    for router in dp.chain_tail:
        for observer in router.observers.values():
            # Handlers' own filters only: no router here sets observer-wide ones (``.filter()``),
            # which aiogram keeps in a private field; those would stay in threads (slower, correct).
            for handler in observer.handlers:
                for check in handler.filters or ():
                    if not check.awaitable:
                        check.callback = _in_loop(check.callback)
                        check.awaitable = True
                        changed += 1
    return changed


def _in_loop(check: Callable[..., Any]) -> Callable[..., Any]:
    async def inline(*args: Any, **kwargs: Any) -> Any:
        return check(*args, **kwargs)

    return inline


# What a session returns for an answer left unread: ``result`` None, which nobody reads.
_UNREAD: Response[Any] = Response[Any].model_construct(ok=True, result=None)


class SkipUnusedResults(BaseSession):
    """A Bot API session (first among its bases) that does not read the result of a call sent
    as :data:`handlers.replies.RESULT_UNUSED` when the answer is a success, and reads the
    others with orjson (see the module doc).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("json_loads", orjson.loads)
        super().__init__(*args, **kwargs)

    def check_response(
        self, bot: Bot, method: TelegramMethod[TelegramType], status_code: int, content: str
    ) -> Response[TelegramType]:
        if RESULT_UNUSED.get() is method and HTTPStatus.OK <= status_code <= HTTPStatus.IM_USED:
            try:
                answer = self.json_loads(content)
            except Exception:  # aiogram's own check says what it is
                answer = None
            if isinstance(answer, dict) and answer.get("ok") is True:
                return cast("Response[TelegramType]", _UNREAD)
        return super().check_response(bot, method, status_code, content)
