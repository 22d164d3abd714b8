"""Replies after commit: what an update says is decided inside its transaction, sent after it.

The path of one update (middlewares in handlers/middlewares.py)::

    getUpdates → UpdatePipeline (a fresh Replies buffer, injected as ``replies``)
      → throttling → reader and locale → filters pick the handler
      → UnitOfWork: BEGIN (read-only, or IMMEDIATE when the handler is flagged ``writes``)
          handler: services change rows and flush; the handler only *queues* Bot API calls:
              replies.add(message.answer(text, reply_markup=...))
              replies.add(callback.answer())
              replies.add(callback.message.edit_text(...))
              replies.add(SendMessage(chat_id=other_chat, text=...), then=remember_message_id)
          writer: the update id and the queued calls (as JSON) are stored, then COMMIT
      → UpdatePipeline sends the buffer in order, then clears the stored copy.

aiogram's method objects (``message.answer(...)`` and friends) do nothing until awaited, so
queuing one is just keeping it. Consequences:

- A refused rule (ServiceError) rolls back and the buffer holds only the refusal.
- A failed commit replaces the buffer with "nothing was saved, please try again": the success
  text of unsaved work is never sent.
- Once committed, a reply that fails (400, 403, network, a 429 longer than the short retry) is
  logged and does not undo anything; "message is not modified" and "query is too old" mean the
  reply already happened or no longer matters, and count as done.
- A process killed between the commit and the last reply: Telegram delivers the update again,
  the stored calls are sent again (the edits come back "not modified"), nothing runs twice.
  Telegram has no idempotency key, so a message in flight at the moment of the crash may arrive
  twice; nothing else does.
- Prefer method objects (``message.answer(...)``, ``aiogram.methods.SendMessage(...)``) to
  ``bot.send_message(...)``: both are sent, but only method objects are stored for a resend.
- ``then=`` receives the call's result (e.g. a sent Message and its ``message_id``) after it was
  sent, outside any transaction: open one there to save it. It runs on the first delivery only.
- A queued method object without ``then=`` is sent with :data:`RESULT_UNUSED` naming it: the
  Bot API session may skip building its result (a whole Message with its keyboard, dozens of
  pydantic objects) and return None; errors are raised as ever (bot/speedups.py).
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable, Coroutine
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, TypeVar

from aiogram import Bot, methods
from aiogram.client.default import Default
from aiogram.exceptions import TelegramAPIError, TelegramBadRequest
from aiogram.methods import TelegramMethod
from pydantic_core import PydanticSerializationError

log = logging.getLogger(__name__)
T = TypeVar("T")

# Bot API answers that mean the reply is already there (an edit redone after a crash) or no longer
# possible and no longer wanted (a button answer after Telegram's ~15 s window).
DONE_ALREADY = ("message is not modified", "query is too old", "query id is invalid")

# The method object being sent whose result nobody reads (see the module doc). The object itself,
# not a flag: a task started meanwhile inherits the context, and its own calls are other objects.
RESULT_UNUSED: ContextVar[TelegramMethod[Any] | None] = ContextVar(
    "shuxiang_result_unused", default=None
)


@dataclass
class _Queued:
    # A method object, or the not yet awaited coroutine of a ``bot.xxx(...)`` shortcut.
    method: TelegramMethod[Any] | Coroutine[Any, Any, Any]
    then: Callable[[Any], Awaitable[None]] | None = None

    @property
    def name(self) -> str:
        method = self.method
        return method.__qualname__ if inspect.iscoroutine(method) else type(method).__name__


class Replies:
    """The Bot API calls one update decided on, sent in order after its transaction."""

    def __init__(self, bot: Bot) -> None:
        self.bot = bot
        self._queued: list[_Queued] = []
        # The update whose stored copy of these replies is cleared once they are sent.
        self.kept_for: int | None = None

    def add(
        self,
        method: TelegramMethod[T] | Coroutine[Any, Any, T],
        *,
        then: Callable[[T], Awaitable[None]] | None = None,
    ) -> None:
        self._queued.append(_Queued(method, then))

    def clear(self) -> None:
        for queued in self._queued:
            if inspect.iscoroutine(queued.method):
                queued.method.close()  # never sent: no "never awaited" warning
        self._queued.clear()
        self.kept_for = None

    def only(self, method: TelegramMethod[Any] | None) -> None:
        """Forget everything queued; say just this (a refusal, "please try again")."""
        self.clear()
        if method is not None:
            self.add(method)

    def __len__(self) -> int:
        return len(self._queued)

    def dump(self) -> list[dict[str, Any]]:
        """The queued calls as JSON, to be stored with the update id."""
        dumped = []
        for queued in self._queued:
            entry = _dump(queued.method) if isinstance(queued.method, TelegramMethod) else None
            if entry is None:
                # e.g. an uploaded file: sent now, but not again after a crash.
                log.info("%s is not stored for a resend", queued.name)
                continue
            dumped.append(entry)
        return dumped

    def load(self, dumped: list[dict[str, Any]]) -> None:
        """Queue calls stored by :meth:`dump` (an update redelivered after a crash)."""
        for entry in dumped:
            method_class = getattr(methods, str(entry.get("method")), None)
            if not (isinstance(method_class, type) and issubclass(method_class, TelegramMethod)):
                log.warning("stored reply %r is not a Bot API method: skipped", entry.get("method"))
                continue
            self.add(method_class.model_validate(entry.get("params") or {}))

    async def send(self) -> int:
        """Send everything queued, in order; returns how many calls are done. Never raises."""
        queued, self._queued = self._queued, []
        done = 0
        for item in queued:
            name = item.name
            try:
                if isinstance(item.method, TelegramMethod):
                    unused = RESULT_UNUSED.set(item.method if item.then is None else None)
                    try:
                        result = await self.bot(item.method)
                    finally:
                        RESULT_UNUSED.reset(unused)
                else:
                    result = await item.method
            except TelegramBadRequest as exc:
                if any(marker in exc.message.lower() for marker in DONE_ALREADY):
                    log.info("%s: %s: counted as done", name, exc.message)
                    done += 1
                else:
                    log.warning("%s refused after commit: %s", name, exc.message)
                continue
            except TelegramAPIError as exc:  # 403, network, 5xx, a long 429: nothing to undo
                log.warning("%s failed after commit: %s: %s", name, type(exc).__name__, exc)
                continue
            except Exception:  # a reply we could not even build must not stop the others
                log.exception("%s could not be sent", name)
                continue
            done += 1
            if item.then is not None:
                try:
                    await item.then(result)
                except Exception:
                    log.exception("follow-up of %s failed", name)
        return done


def _dump(method: TelegramMethod[Any]) -> dict[str, Any] | None:
    # aiogram fills unset options (parse_mode, ...) with Default markers resolved by the Bot at
    # send time: leave them out, and they come back as Default when loaded.
    keep = {
        name for name in method.model_fields_set if not isinstance(getattr(method, name), Default)
    }
    try:
        params = method.model_dump(mode="json", include=keep)
    except (PydanticSerializationError, TypeError, ValueError):
        return None
    return {"method": type(method).__name__, "params": params}
