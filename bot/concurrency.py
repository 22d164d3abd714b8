"""Long polling with updates handled concurrently: different users at once, one user's in order.

aiogram's polling either handles one update at a time (``handle_as_tasks=False``: one slow reply
stalls everyone) or starts a task per update and forgets it (no order within a user's updates,
nothing to wait for on a stop). :class:`BoundedPolling` instead:

- fetches with getUpdates and queues each update on its user's FIFO (the user, else the chat);
  one task per user with queued updates feeds them to the dispatcher one after another, so one
  user's updates run strictly in order while other users' run alongside;
- holds at most ``max_in_flight`` updates (queued or running) and stops fetching at the bound:
  memory and database connections stay bounded under a flood;
- confirms (the offset of the next getUpdates) only updates whose handling finished: the offset
  is the lowest update still held, so an update finished before an earlier one is confirmed with
  it, and a crash redelivers whatever had not finished (the processed-update record keeps a
  redelivered writer from changing anything twice). Updates Telegram returns again because an
  earlier one holds the offset back are recognised by their id and skipped; when a whole answer
  is such repeats, the next getUpdates waits until a held update finishes;
- stops gracefully (:meth:`stop`): no more fetching, each user's running update finishes, the
  ones still queued are left unconfirmed for the next process, and a last getUpdates confirms
  what finished. ``before_confirm`` runs before every getUpdates that may confirm something.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Hashable
from typing import Any

from aiogram import Bot, Dispatcher
from aiogram.methods import GetUpdates, TelegramMethod
from aiogram.types import Update
from aiogram.utils.backoff import Backoff, BackoffConfig

log = logging.getLogger(__name__)

# getUpdates returns at most this many updates, the earliest unconfirmed first.
GET_UPDATES_LIMIT = 100
BACKOFF = BackoffConfig(min_delay=1.0, max_delay=5.0, factor=1.3, jitter=0.1)


def update_key(update: Update) -> Hashable:
    """Whose update this is: updates with the same key are handled in order."""
    try:
        event = update.event
    except Exception:  # an update type this aiogram does not know: on its own
        return ("update", update.update_id)
    user = getattr(event, "from_user", None)
    if user is not None:
        return ("user", user.id)
    chat = getattr(event, "chat", None)
    if chat is not None:
        return ("chat", chat.id)
    return ("update", update.update_id)


class BoundedPolling:
    """getUpdates → per-user FIFO queues → ``dp.feed_update``; see the module doc."""

    def __init__(
        self,
        dp: Dispatcher,
        bot: Bot,
        *,
        max_in_flight: int,
        polling_timeout: int = 10,
        allowed_updates: list[str] | None = None,
        before_confirm: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        if not 1 <= max_in_flight <= GET_UPDATES_LIMIT:
            raise ValueError(f"max_in_flight must be 1..{GET_UPDATES_LIMIT}")
        self.dp = dp
        self.bot = bot
        self.max_in_flight = max_in_flight
        self.polling_timeout = polling_timeout
        self.allowed_updates = allowed_updates
        self.before_confirm = before_confirm
        self._held: set[int] = set()  # fetched, not finished
        self._seen: set[int] = set()  # fetched, at or above the offset last sent
        self._newest: int | None = None
        self._confirmed: int | None = None  # the offset last sent
        self._queues: dict[Hashable, deque[Update]] = {}
        self._workers: set[asyncio.Task[None]] = set()
        self._finished = asyncio.Event()  # an update finished since the event was cleared
        self._stopping = asyncio.Event()
        self.stopped = asyncio.Event()
        self.running = 0
        self.peak = 0  # most updates running at once (what the bound promises)
        self.handled = 0
        self.polls = 0

    @property
    def held(self) -> int:
        return len(self._held)

    def offset(self) -> int | None:
        """The next getUpdates' offset: everything below it has finished."""
        if self._held:
            return min(self._held)
        return None if self._newest is None else self._newest + 1

    def stop(self) -> None:
        """Stop fetching; :meth:`run` returns once the running updates have finished."""
        self._stopping.set()

    async def run(self, **workflow: Any) -> None:
        """Poll until :meth:`stop`; ``workflow``: the data every handler gets (as polling's)."""
        backoff = Backoff(config=BACKOFF)
        try:
            while not self._stopping.is_set():
                if not await self._until(lambda: len(self._held) < self.max_in_flight):
                    break
                self._finished.clear()
                try:
                    updates = await self._fetch()
                except Exception as exc:
                    log.error("getUpdates failed: %s: %s", type(exc).__name__, exc)
                    await self._until(lambda: False, timeout=backoff.next_delay)
                    next(backoff)
                    continue
                backoff.reset()
                if updates is None:
                    break
                fresh = [u for u in updates if u.update_id not in self._seen]
                for update in fresh[: self.max_in_flight - len(self._held)]:
                    self._accept(update, workflow)
                if updates and not fresh:
                    # Only updates already held: asking again before one finishes would spin.
                    await self._until(self._finished.is_set)
        except asyncio.CancelledError:
            for worker in self._workers:
                worker.cancel()
            raise
        finally:
            await asyncio.gather(*self._workers, return_exceptions=True)
            with contextlib.suppress(Exception):
                await self._confirm_finished()
            self.stopped.set()

    async def _until(self, ready: Callable[[], bool], timeout: float | None = None) -> bool:  # noqa: ASYNC109
        """Wait until ``ready()`` (checked after each finished update) or a stop: False then."""
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while not ready():
            if self._stopping.is_set():
                return False
            self._finished.clear()
            waits = [
                asyncio.ensure_future(self._finished.wait()),
                asyncio.ensure_future(self._stopping.wait()),
            ]
            try:
                left = None if deadline is None else max(0.0, deadline - loop.time())
                await asyncio.wait(waits, timeout=left, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for wait in waits:
                    wait.cancel()
            if deadline is not None and loop.time() >= deadline:
                return not self._stopping.is_set()
        return not self._stopping.is_set()

    async def _fetch(self) -> list[Update] | None:
        """One getUpdates (confirming what finished), or None when a stop cut it short."""
        if self.before_confirm is not None:
            await self.before_confirm()
        offset = self.offset()
        # Room for the updates held back behind the offset (returned again, skipped) and for as
        # many new ones as the bound allows.
        again = sum(1 for u in self._seen if offset is None or u >= offset)
        room = self.max_in_flight - len(self._held)
        limit = min(GET_UPDATES_LIMIT, again + room)
        request = GetUpdates(
            offset=offset,
            limit=limit,
            timeout=self.polling_timeout,
            allowed_updates=self.allowed_updates,
        )
        timeout = int((self.bot.session.timeout or 0) + self.polling_timeout)
        self.polls += 1
        fetch = asyncio.ensure_future(self.bot(request, request_timeout=timeout))
        stopping = asyncio.ensure_future(self._stopping.wait())
        try:
            await asyncio.wait([fetch, stopping], return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
            if not fetch.done():
                fetch.cancel()
                with contextlib.suppress(BaseException):
                    await fetch
        if fetch.cancelled():
            return None
        updates = fetch.result()
        self._confirmed = offset
        if offset is not None:
            self._seen = {u for u in self._seen if u >= offset}
        return list(updates)

    async def _confirm_finished(self) -> None:
        """On the way out: one last getUpdates confirms the updates that finished since the
        last one (the queued ones, never started, stay for the next process)."""
        offset = self.offset()
        if offset is None or offset == self._confirmed:
            return
        if self.before_confirm is not None:
            await self.before_confirm()
        await self.bot(GetUpdates(offset=offset, limit=1, timeout=0))
        self._confirmed = offset

    def _accept(self, update: Update, workflow: dict[str, Any]) -> None:
        update_id = update.update_id
        self._held.add(update_id)
        self._seen.add(update_id)
        self._newest = update_id if self._newest is None else max(self._newest, update_id)
        key = update_key(update)
        queue = self._queues.get(key)
        if queue is not None:
            queue.append(update)
            return
        queue = self._queues[key] = deque([update])
        worker = asyncio.create_task(self._work(key, queue, workflow), name=f"updates {key}")
        self._workers.add(worker)
        worker.add_done_callback(self._workers.discard)

    async def _work(self, key: Hashable, queue: deque[Update], workflow: dict[str, Any]) -> None:
        """One user's updates, in order, until their queue is empty or the bot is stopping."""
        try:
            while queue and not self._stopping.is_set():
                update = queue[0]
                self.running += 1
                self.peak = max(self.peak, self.running)
                try:
                    await self._handle(update, workflow)
                finally:
                    self.running -= 1
                    queue.popleft()
                    self._held.discard(update.update_id)
                    self.handled += 1
                    self._finished.set()
        finally:
            # Left over on a stop: still held, so never confirmed; Telegram delivers them again.
            if self._queues.get(key) is queue:
                del self._queues[key]

    async def _handle(self, update: Update, workflow: dict[str, Any]) -> None:
        try:
            response = await self.dp.feed_update(self.bot, update, **workflow)
            if isinstance(response, TelegramMethod):  # a handler returned a call: make it
                await self.dp.silent_call_request(self.bot, response)
        except Exception:
            # The dispatcher's error handler has had its say: polling logs and goes on.
            log.exception("update %s failed", update.update_id)
