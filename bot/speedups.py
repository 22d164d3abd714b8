"""What aiogram spends on every update that the bot does without.

- Answer classes: each Bot API answer is read with ``Response[method.__returning__]``, a pydantic
  generic class built on first use and cached in a weak dictionary, so the garbage collector
  throws it away between updates and the next answer builds it again (milliseconds each).
  :class:`KeepResponseTypes`, a request middleware, holds each one the bot has used.
- Filters in threads: aiogram runs every filter that is not a coroutine function, every
  ``F.text == ...`` and ``F.data.startswith(...)`` among them, through ``asyncio.to_thread``: a
  dozen thread round trips per update before a handler is chosen. :func:`inline_filters` runs
  them in the event loop; they only look at the update and the handler data.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiogram import Bot, Dispatcher
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
