"""Last line: log the failure with its update id (never the token) and apologise briefly.

By the time this runs the update's transaction has rolled back and its queued replies were
dropped, so the apology is the only thing the user hears and it is sent at once."""

from __future__ import annotations

import logging

from aiogram import Bot, Router
from aiogram.types import ErrorEvent

from handlers.middlewares import brief_reply
from services.i18n import t

log = logging.getLogger(__name__)


async def on_error(event: ErrorEvent, bot: Bot) -> bool:
    log.error(
        "update %s failed: %s: %s",
        event.update.update_id,
        type(event.exception).__name__,
        event.exception,
        exc_info=(type(event.exception), event.exception, event.exception.__traceback__),
    )
    apology = brief_reply(event.update, t("errors.generic"))
    try:
        if apology is not None:
            await bot(apology)
    except Exception:  # the apology itself may fail (blocked user, network): logged, not raised
        log.warning("could not tell update %s about the failure", event.update.update_id)
    return True


def build_router() -> Router:
    """A fresh router each time: a Dispatcher takes ownership of the routers it includes."""
    router = Router(name=__name__)
    router.errors.register(on_error)
    return router
