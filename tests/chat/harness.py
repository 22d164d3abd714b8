"""The chat tier's harness: the real bot in process, without sockets, polling or sleeps.

The application is the one ``bot.app.build_app`` assembles (routers, middlewares, workflow data,
the sender, the injected clock) over a migrated database; only the Bot API sessions of its two
``Bot`` objects (the bot's replies and the sender's pushes) are a :class:`RecordingSession`. That
session records each request and answers it with the Bot API emulator's own implementation of
the method, run in process (sandbox/emulator: the same result objects, message ids, parsed HTML
and Telegram's error texts the e2e tier gets over HTTP).

Users act on that emulator's message store exactly as in tests/e2e (``tests.people.Person``):
what they send is queued there. Every wait (a reply, a callback answer, idleness) first *settles*:
each queued update is fed to the dispatcher in order (``dp.feed_update``, as long polling does
with ``handle_as_tasks=False``), then the outbox is delivered by the sender (``Sender.drain``,
what its loop does when poked). A wait then looks once: whatever the bot was going to say has
been said, so nothing is polled for and a missing answer fails at once with the transcript. An
exception that escapes the dispatcher (its error handler apologises for a handler's own) fails
the test where polling would only log it.

The scheduler and the sender's loop are not started: tests run a job with ``jobs.run_once`` and
move the injected clock. The sender does not pace (no gap between two pushes to a chat, no global
rate): pacing is tested against the emulator in tests/e2e/test_pushes.py.
"""

from __future__ import annotations

import inspect
import io
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, cast

import pytest
from aiogram import Bot
from aiogram.exceptions import TelegramNetworkError
from aiogram.methods import TelegramMethod
from aiogram.methods.base import TelegramType
from aiogram.types import InputFile, Update
from aiohttp import web
from multidict import CIMultiDict, CIMultiDictProxy

from bot.app import build_app
from bot.config import Settings
from bot.speedups import SkipUnusedResults
from nlp.search import SearchEngine
from sandbox.emulator.methods import BotApiMethods
from sandbox.emulator.protocol import ApiError, ConnectionDropped, coerce, dumps
from storage.db import Database
from tests.people import JSON, TOKEN, Clock, Library, Person, buttons

__all__ = [
    "JSON",
    "TOKEN",
    "Clock",
    "Harness",
    "InProcessEmulator",
    "Person",
    "RecordingSession",
    "buttons",
]

BOT_USERNAME = "shuxiang_test_bot"


class InProcessEmulator(BotApiMethods):
    """The emulator's message store and Bot API methods without its HTTP server. Its waits settle
    first (see the module doc) and then look once, whatever timeout they are given."""

    def __init__(self, token: str = TOKEN, bot_username: str = BOT_USERNAME) -> None:
        super().__init__(
            {
                "id": int(token.split(":", 1)[0]),
                "is_bot": True,
                "first_name": "书香",
                "username": bot_username,
            }
        )
        self.token = token
        self.requests: list[TelegramMethod[Any]] = []  # by the RecordingSessions
        # Set by the harness: handles every queued update and delivers the outbox.
        self.settle: Callable[[], Awaitable[None]] = _nothing

    def next_update(self) -> JSON | None:
        """Take the next update for the bot (a redelivered one first), as getUpdates would."""
        ids = self._deliverable(1)
        if not ids:
            return None
        (update_id,) = ids
        if update_id in self._forced:
            self._forced.remove(update_id)
        else:
            self._pending.remove(update_id)
        self._notify()
        return dict(self._updates[update_id])

    async def wait_for_bot_message(
        self,
        chat_id: int,
        predicate: Callable[[JSON], bool] | None = None,
        timeout: float = 0.0,  # noqa: ASYNC109
        after_message_id: int | None = None,
        *,
        contains: str | None = None,
        since: int | None = None,
    ) -> JSON:
        await self.settle()
        return await super().wait_for_bot_message(
            chat_id, predicate, 0.0, after_message_id, contains=contains, since=since
        )

    async def wait_for_callback_answer(
        self,
        callback_query_id: str,
        timeout: float = 0.0,  # noqa: ASYNC109
    ) -> JSON:
        await self.settle()
        return await super().wait_for_callback_answer(callback_query_id, 0.0)

    async def wait_for_sent(self, total: int, timeout: float = 0.0) -> int:  # noqa: ASYNC109
        await self.settle()
        return await super().wait_for_sent(total, 0.0)

    async def wait_idle(self, timeout: float = 0.0, quiet: float = 0.0) -> None:  # noqa: ASYNC109
        await self.settle()


async def _nothing() -> None:
    return None


class RecordingSession(SkipUnusedResults):
    """A Bot API session without a network. Each request is recorded (the emulator's
    ``requests``) and answered by the emulator's implementation of its method, given the
    parameters aiogram would put on the wire (``prepare_value``, coerced as the emulator's server
    does): the result object, or the Telegram error aiogram raises for that answer."""

    def __init__(self, emu: InProcessEmulator) -> None:
        super().__init__()
        self.emu = emu

    async def make_request(
        self,
        bot: Bot,
        method: TelegramMethod[TelegramType],
        timeout: int | None = None,  # noqa: ASYNC109
    ) -> TelegramType:
        self.emu.requests.append(method)
        files: dict[str, InputFile] = {}
        params: JSON = {}
        for key, value in method.model_dump(warnings=False).items():
            prepared = self.prepare_value(value, bot=bot, files=files)
            if prepared:  # as AiohttpSession leaves empty fields out of its form
                params[key] = coerce(key, prepared)
        uploads = {key: await _upload(key, file, bot) for key, file in files.items()}
        name = method.__api_method__.lower()
        try:
            result = await self.emu._call_method(name, params, uploads)
            status, body = 200, {"ok": True, "result": result}
        except ApiError as exc:
            status, body = exc.code, exc.envelope()
        except ConnectionDropped as exc:
            raise TelegramNetworkError(method=method, message="connection dropped") from exc
        response = self.check_response(bot, method, status, dumps(body))
        return cast("TelegramType", response.result)

    async def stream_content(
        self,
        url: str,
        headers: Mapping[str, Any] | None = None,
        timeout: int = 30,  # noqa: ASYNC109
        chunk_size: int = 65536,
        raise_for_status: bool = True,
    ) -> AsyncGenerator[bytes, None]:
        for stored in self.emu.files.values():
            if url.endswith(f"/{stored.file_path}"):
                yield stored.data
                return
        raise FileNotFoundError(url)

    async def close(self) -> None:
        return None


async def _upload(key: str, file: InputFile, bot: Bot) -> web.FileField:
    """An uploaded file as the emulator's server receives it from aiogram's multipart form."""
    data = b"".join([chunk async for chunk in file.read(bot)])
    return web.FileField(
        name=key,
        filename=file.filename or key,
        file=io.BytesIO(data),
        content_type="application/octet-stream",
        headers=CIMultiDictProxy(CIMultiDict()),
    )


@dataclass
class Harness(Library):
    """The bot of one test, fed in process; see the module doc."""

    emu: InProcessEmulator
    search: SearchEngine
    monkeypatch: pytest.MonkeyPatch

    @classmethod
    async def start(
        cls,
        settings: Settings,
        *,
        db: Database,
        search: SearchEngine,
        monkeypatch: pytest.MonkeyPatch,
    ) -> Harness:
        emu = InProcessEmulator()
        # Both Bots the assembly builds (the bot's with its retry middleware, the sender's) get a
        # recording session where they would get a network one.
        for module in ("bot.app", "bot.sender"):
            monkeypatch.setattr(f"{module}.bot_session", lambda _: RecordingSession(emu))
        clock = Clock()
        harness = cls(
            emu=emu,
            db=db,
            policy=settings.loan_policy(),
            app=build_app(settings, token=TOKEN, db=db, search=search, clock=clock),
            clock=clock,
            search=search,
            monkeypatch=monkeypatch,
        )
        emu.settle = harness.settle
        await harness._started()
        return harness

    async def _started(self) -> None:
        """The dispatcher's start-up as polling runs it: menus, the index check, warm-up."""
        self.monkeypatch.setattr(self.app, "start_background", _no_background)
        await self.app.dp.emit_startup(**self._workflow())

    def _workflow(self) -> dict[str, Any]:
        dp = self.app.dp
        return {**dp.workflow_data, "dispatcher": dp, "bots": [self.app.bot], "bot": self.app.bot}

    @property
    def requests(self) -> list[TelegramMethod[Any]]:
        """Every Bot API request the bot made, replies and pushes, in order, as aiogram objects
        (``emu.calls(method)`` has them as parameters on the wire)."""
        return self.emu.requests

    async def settle(self) -> None:
        """Feed every queued update to the dispatcher, one after another as polling does, each
        followed by the outbox's delivery; then deliver what is due (a job or the test queued)."""
        while (raw := self.emu.next_update()) is not None:
            await self.handle(raw)
            await self.app.sender.drain()
        await self.app.sender.drain()

    async def handle(self, raw: JSON) -> None:
        bot, dp = self.app.bot, self.app.dp
        update = Update.model_validate(raw, context={"bot": bot})
        workflow = self._workflow()
        del workflow["bot"]
        response = await dp.feed_update(bot, update, **workflow)
        if isinstance(response, TelegramMethod):  # a handler returned a call: polling makes it
            await dp.silent_call_request(bot, response)

    async def shut(self) -> None:
        await self.app.dp.emit_shutdown(**self._workflow())
        await self.app.dp.storage.close()
        await self.app.bot.session.close()
        await self.app.sender.bot.session.close()

    async def restart(self) -> None:
        """A new bot with the same settings, database and clock, as a redeploy or a crash does:
        whatever the old process kept in memory is gone."""
        await self.shut()
        self.app = build_app(
            self.app.settings, token=TOKEN, db=self.db, search=self.search, clock=self.clock
        )
        await self._started()

    async def until(self, check: Callable[[], object], *, what: str = "") -> None:
        """``check()`` (or what it awaits) is true once the bot has handled everything sent and
        delivered its outbox: what the e2e tier polls for, checked once."""
        await self.settle()
        value = check()
        if inspect.isawaitable(value):
            value = await value
        assert value, f"not reached: {what or check}"


def _no_background() -> None:
    """No scheduler and no sender loop: the harness settles instead (see the module doc)."""
