"""The one sender: drains the outbox, each push to its channel, within that channel's limits.

Each outbox row is one push to one channel of the reader (services/notifications/outbox.py); the
sender renders it and dispatches it (``_dispatch``): Telegram through the sender's Bot, paced as
below; any other channel (the web chat) through its transport (bot/channels.py), unpaced. One
endpoint's failure is that row's alone: a 403 on Telegram leaves the reader's web pushes going.
Telegram's limits:

- A global rate (``send_rate`` messages/s, aiolimiter with a bucket of one, so no burst above the
  rate) and at least ``chat_gap_seconds`` between two messages to one chat (one limiter per chat).
- 429: everything waits ``retry_after`` and the sender keeps a lower rate from then on.
- 403: the reader's Telegram endpoint is marked unreachable (listed by ``shuxiang outbox
  unreachable``), no more pushes there.
- Network errors and 5xx: retried with exponential backoff; after ``send_max_attempts`` the message
  ends as failed with its reason.
- At most ``sender_concurrency`` sends are under way at once: that is the most a SIGKILL can leave
  sent but unrecorded (Telegram has no idempotency key), so the most that can go out twice.
- Claims are leased for ``sender_lease_seconds``; a message whose lease is about to run out is
  handed back instead of being sent, so another process never sends it a second time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from aiogram import Bot
from aiogram.client.default import DefaultBotProperties
from aiogram.enums import ParseMode
from aiogram.exceptions import (
    TelegramAPIError,
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramRetryAfter,
)
from aiolimiter import AsyncLimiter
from pydantic import ValidationError

from bot.channels import Push, PushChannel, Unreachable
from bot.config import Settings
from bot.proxy import bot_session
from bot.shared_rate import SharedRate
from handlers.notify_keyboards import notification_keyboard
from services.i18n import DEFAULT_LOCALE
from services.notifications import (
    Outgoing,
    claim,
    mark_failed,
    mark_retry,
    mark_sent,
    mark_unreachable,
    release_claims,
)
from services.notifications.render import Rendered, UnknownKind, render
from storage.db import Database
from storage.models import Channel, utcnow

log = logging.getLogger(__name__)
Clock = Callable[[], datetime]
GLOBAL_BURST = 3
# Rate kept after a 429, as a share of the rate before it.
SLOWDOWN = 0.8


def build_sender_bot(settings: Settings, token: str) -> Bot:
    """A Bot of the sender's own, without the retry middleware: the sender handles 429s itself."""
    # Through SHUXIANG_PROXY like the bot's own requests: pushes need the route as much.
    session = bot_session(settings)
    return Bot(token, session=session, default=DefaultBotProperties(parse_mode=ParseMode.HTML))


@dataclass
class SenderStats:
    sent: int = 0
    retried: int = 0
    failed: int = 0
    unreachable: int = 0
    throttled: int = 0
    handed_back: int = 0


class Sender:
    def __init__(
        self,
        db: Database,
        bot: Bot,
        settings: Settings,
        *,
        clock: Clock = utcnow,
        locale: str = DEFAULT_LOCALE,
        channels: Mapping[str, PushChannel] | None = None,
    ) -> None:
        self.db = db
        self.bot = bot
        # Transports of the channels other than Telegram, by channel name (bot/channels.py).
        self.channels: dict[str, PushChannel] = dict(channels or {})
        self.settings = settings
        self.clock = clock
        self.locale = locale
        self.tz = settings.tz
        self.quiet = settings.quiet
        self.rate = settings.send_rate
        self.lease = timedelta(seconds=settings.sender_lease_seconds)
        # Network errors and 5xx: 30 s, 1 min, 2 min, ... at most an hour (the settings').
        self.backoff = timedelta(seconds=settings.sender_backoff_seconds)
        self.backoff_max = timedelta(seconds=settings.sender_backoff_max_seconds)
        self.limiter = self._global_limiter(self.rate)
        self.chat_limiters: dict[int, AsyncLimiter] = {}
        # Several workers: one rate across all their senders, kept in Redis (bot/shared_rate.py).
        self.shared_rate: SharedRate | None = None
        self.concurrency = asyncio.Semaphore(settings.sender_concurrency)
        # Small claims: what a killed sender leaves leased is at most this many messages.
        self.batch = settings.sender_concurrency * 2
        self.resume_at = 0.0  # loop time; a 429 holds every send until then
        self.wake = asyncio.Event()
        self.stats = SenderStats()
        self._stopping = False

    @staticmethod
    def _global_limiter(rate: float) -> AsyncLimiter:
        # A bucket of three: a late wake-up can catch up, yet no second ever exceeds the rate
        # by more than three messages (Telegram tolerates short bursts around its ~30/s).
        return AsyncLimiter(GLOBAL_BURST, GLOBAL_BURST / rate)

    def _chat_limiter(self, chat_id: int) -> AsyncLimiter:
        limiter = self.chat_limiters.get(chat_id)
        if limiter is None:
            if len(self.chat_limiters) > 10_000:
                self.chat_limiters = {
                    c: lim for c, lim in self.chat_limiters.items() if not lim.has_capacity()
                }
            limiter = self.chat_limiters[chat_id] = AsyncLimiter(1, self.settings.chat_gap_seconds)
        return limiter

    def add_channel(self, channel: Channel | str, transport: PushChannel) -> None:
        """Pushes to ``channel`` go through ``transport`` from now on."""
        self.channels[str(channel)] = transport

    def poke(self) -> None:
        """Something was queued: look at the outbox now rather than at the next interval."""
        self.wake.set()

    def stop(self) -> None:
        self._stopping = True
        self.wake.set()

    async def run(self) -> None:
        """Until stopped: claim what is due, send it, repeat; idle, wait for a poke or a tick.

        A sender that starts alone (no other live sender on this database) first takes back
        every claim still marked as sending: a killed sender's messages go out now rather than
        when their lease runs out. Beside a live sender it cannot tell whose they are, so the
        lease decides (``sender_lease_seconds``)."""
        async with self.db.role("sender") as alone:
            if alone:
                async with self.db.transaction() as session:
                    released = await release_claims(session, self.clock())
                if released:
                    log.warning("sender: took back %d claims of a stopped sender", released)
            await self._loop()

    async def _loop(self) -> None:
        while not self._stopping:
            try:
                handled = await self.drain_once()
            except Exception:  # a database hiccup must not end the sender
                log.exception("sender: claiming failed")
                handled = 0
            if handled:
                continue
            self.wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), self.settings.outbox_interval_seconds)

    async def drain_once(self) -> int:
        """Claim one batch and send it; returns how many were claimed."""
        async with self.db.transaction() as session:
            due = await claim(
                session,
                now=self.clock(),
                limit=self.batch,
                lease=self.lease,
                quiet=self.quiet,
                max_attempts=self.settings.send_max_attempts,
            )
        if not due:
            return 0
        loop = asyncio.get_running_loop()
        # Hand back what cannot start within half the lease, before another claimer may take it.
        deadline = loop.time() + self.lease.total_seconds() / 2
        await asyncio.gather(*(self._send_one(note, deadline) for note in due))
        return len(due)

    async def drain(self) -> int:
        """Send everything due now (tests, `--once`); returns how many were claimed."""
        total = 0
        while handled := await self.drain_once():
            total += handled
        return total

    async def _wait_turn(self, chat_id: int, deadline: float) -> bool:
        """Wait for a 429 pause, this chat's gap and the global rate; False past the deadline."""
        loop = asyncio.get_running_loop()
        while loop.time() < self.resume_at:
            if self.resume_at > deadline:
                return False
            await asyncio.sleep(self.resume_at - loop.time())
        await self._chat_limiter(chat_id).acquire()
        await self.limiter.acquire()
        if self.shared_rate is not None:
            await self.shared_rate.acquire()
        return loop.time() < deadline and loop.time() >= self.resume_at

    async def _send_one(self, note: Outgoing, deadline: float) -> None:
        try:
            rendered = render(note.kind, note.payload, self.tz, self.locale)
        except (UnknownKind, ValidationError) as exc:
            await self._record_failed(note, f"{type(exc).__name__}: {exc}")
            return
        async with self.concurrency:
            await self._dispatch(note, rendered, deadline)

    async def _dispatch(self, note: Outgoing, rendered: Rendered, deadline: float) -> None:
        """One push to its channel's transport, its outcome recorded on its row only."""
        if note.channel == Channel.TELEGRAM.value:
            await self._send_telegram(note, rendered, deadline)
        else:
            await self._send_through(note, rendered)

    async def _send_telegram(self, note: Outgoing, rendered: Rendered, deadline: float) -> None:
        if not await self._wait_turn(note.chat_id, deadline):
            await self._hand_back(note)
            return
        try:
            await self.bot.send_message(
                note.chat_id,
                rendered.text,
                reply_markup=notification_keyboard(rendered),
            )
        except TelegramRetryAfter as exc:
            await self._throttled(note, exc.retry_after)
        except TelegramForbiddenError as exc:
            await self._unreachable(note, f"403: {exc.message}")
        except TelegramBadRequest as exc:
            await self._record_failed(note, f"400: {exc.message}")
        except (TelegramAPIError, OSError, TimeoutError) as exc:
            await self._retry_later(note, f"{type(exc).__name__}: {exc}")
        else:
            await self._sent(note)

    async def _send_through(self, note: Outgoing, rendered: Rendered) -> None:
        """A channel with a transport of its own (the web chat): no Telegram pacing."""
        transport = self.channels.get(note.channel)
        if transport is None:
            # This process has no way to that channel (yet): another try later, then failed.
            await self._retry_later(note, f"no transport for channel {note.channel}")
            return
        push = Push(
            notification_id=note.notification_id,
            reader_id=note.reader_id,
            kind=note.kind,
            address=note.address,
            text=rendered.text,
            keyboard=notification_keyboard(rendered),
            rendered=rendered,
        )
        try:
            await transport.deliver(push)
        except Unreachable as exc:
            await self._unreachable(note, f"{note.channel}: {exc.reason}")
        except Exception as exc:  # a passing fault of the transport: retried with backoff
            await self._retry_later(note, f"{type(exc).__name__}: {exc}")
        else:
            await self._sent(note)

    async def _sent(self, note: Outgoing) -> None:
        async with self.db.transaction() as session:
            await mark_sent(session, note.notification_id, self.clock())
        self.stats.sent += 1

    async def _throttled(self, note: Outgoing, retry_after: int) -> None:
        loop = asyncio.get_running_loop()
        self.resume_at = max(self.resume_at, loop.time() + retry_after)
        self.stats.throttled += 1
        new_rate = max(1.0, self.rate * SLOWDOWN)
        if new_rate < self.rate:
            self.rate = new_rate
            self.limiter = self._global_limiter(new_rate)
        log.warning("sender: 429, waiting %ss, rate now %.1f/s", retry_after, self.rate)
        async with self.db.transaction() as session:
            await mark_retry(
                session,
                note.notification_id,
                at=self.clock() + timedelta(seconds=retry_after),
                error=f"429: retry after {retry_after}",
                max_attempts=self.settings.send_max_attempts,
                count_attempt=False,
            )

    async def _hand_back(self, note: Outgoing) -> None:
        self.stats.handed_back += 1
        async with self.db.transaction() as session:
            await mark_retry(
                session,
                note.notification_id,
                at=self.clock(),
                error="handed back unsent",
                max_attempts=self.settings.send_max_attempts,
                count_attempt=False,
            )

    async def _unreachable(self, note: Outgoing, reason: str) -> None:
        self.stats.unreachable += 1
        async with self.db.transaction() as session:
            await mark_unreachable(
                session,
                note.notification_id,
                note.reader_id,
                error=reason,
                now=self.clock(),
                channel=note.channel,
            )

    async def _record_failed(self, note: Outgoing, reason: str) -> None:
        self.stats.failed += 1
        log.warning("notification %s failed: %s", note.notification_id, reason)
        async with self.db.transaction() as session:
            await mark_failed(session, note.notification_id, error=reason)

    async def _retry_later(self, note: Outgoing, reason: str) -> None:
        delay = min(self.backoff_max, self.backoff * 2 ** max(0, note.attempts - 1))
        async with self.db.transaction() as session:
            again = await mark_retry(
                session,
                note.notification_id,
                at=self.clock() + delay,
                error=reason,
                max_attempts=self.settings.send_max_attempts,
            )
        if again:
            self.stats.retried += 1
        else:
            self.stats.failed += 1
            log.warning("notification %s failed for good: %s", note.notification_id, reason)
