"""Bot API request middleware: wait out 429 (retry_after) and retry brief server/network failures.

Telegram's only correct answer to 429 is to wait ``retry_after`` and send again. A 403 (blocked by
the user) is permanent and is not retried. getUpdates is left alone: the poller has its own backoff.
"""

from __future__ import annotations

import asyncio
import logging

from aiogram import Bot
from aiogram.client.session.middlewares.base import (
    BaseRequestMiddleware,
    NextRequestMiddlewareType,
)
from aiogram.exceptions import TelegramNetworkError, TelegramRetryAfter, TelegramServerError
from aiogram.methods import TelegramMethod
from aiogram.methods.base import Response, TelegramType

log = logging.getLogger(__name__)


class RetryMiddleware(BaseRequestMiddleware):
    """``backoff_s``: the first wait before retrying a 5xx or a network error, doubled for each
    later one; ``max_wait_s``: the longest 429 waited out (a longer one is raised). The assembly
    function passes them from the settings (bot_retry_*)."""

    def __init__(self, *, max_wait_s: float, backoff_s: float, attempts: int = 4) -> None:
        self.attempts = attempts
        self.max_wait_s = max_wait_s
        self.backoff_s = backoff_s

    async def __call__(
        self,
        make_request: NextRequestMiddlewareType[TelegramType],
        bot: Bot,
        method: TelegramMethod[TelegramType],
    ) -> Response[TelegramType]:
        if method.__api_method__ == "getUpdates":
            return await make_request(bot, method)
        for attempt in range(1, self.attempts + 1):
            try:
                return await make_request(bot, method)
            except TelegramRetryAfter as exc:
                if attempt == self.attempts or exc.retry_after > self.max_wait_s:
                    raise
                log.warning("%s: 429, waiting %ss", type(method).__name__, exc.retry_after)
                await asyncio.sleep(exc.retry_after)
            except (TelegramServerError, TelegramNetworkError) as exc:
                if attempt == self.attempts:
                    raise
                delay = self.backoff_s * 2 ** (attempt - 1)
                log.warning("%s: %s, retry in %.1fs", type(method).__name__, exc, delay)
                await asyncio.sleep(delay)
        raise AssertionError("unreachable")
