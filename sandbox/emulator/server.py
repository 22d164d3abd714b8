"""The HTTP server: an aiohttp application on 127.0.0.1 serving the Bot API
(``/bot<token>/<method>``, file downloads) and the control API, and delivering updates to a
webhook when the bot set one."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import socket
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import orjson
from aiohttp import ClientError, ClientSession, ClientTimeout, web

from sandbox.emulator.control import ControlApi, control_errors
from sandbox.emulator.flood import SEND_METHODS
from sandbox.emulator.protocol import (
    DEFAULT_BOT_ID,
    JSON,
    ApiError,
    ConnectionDropped,
    bad_request,
    coerce,
    dumps,
)
from sandbox.emulator.store import UPDATES

if TYPE_CHECKING:
    from aiogram.client.session.aiohttp import AiohttpSession

__all__ = ["BotApiEmulator"]

log = logging.getLogger("shuxiang.sandbox")
# Notified when an API request ends (only ``wait_idle``, which waits on anything, cares).
REQUEST_DONE = "request done"


class BotApiEmulator(ControlApi):
    """A fake Telegram Bot API server for one bot token; see the package docstring."""

    def __init__(
        self,
        token: str,
        bot_username: str = "shuxiang_bot",
        *,
        bot_first_name: str = "书香",
        extra_routes: Callable[[web.Application], None] | None = None,
        webhook_retries: int = 3,
        webhook_backoff: float = 0.05,
        webhook_backoff_max: float = 2.0,
        webhook_timeout: float = 60.0,
        first_update_id: int = 1,
    ) -> None:
        self.token = token
        prefix = token.split(":", 1)[0]
        super().__init__(
            {
                "id": int(prefix) if prefix.isdigit() else DEFAULT_BOT_ID,
                "is_bot": True,
                "first_name": bot_first_name,
                "username": bot_username,
            },
            first_update_id=first_update_id,
        )
        self.webhook_retries = webhook_retries
        self.webhook_backoff = webhook_backoff
        self.webhook_backoff_max = webhook_backoff_max
        # Telegram waits about a minute for the webhook's answer before sending it again.
        self.webhook_timeout = webhook_timeout
        # Every webhook POST's outcome: (update id, HTTP status or 0 for no connection).
        self.webhook_attempts: list[tuple[int, int]] = []
        # When each send request arrived (monotonic), to measure the rate Telegram would see.
        self.send_times: list[float] = []
        self._runner: web.AppRunner | None = None
        self._base_url: str | None = None
        self._client: ClientSession | None = None
        self._webhook_task: asyncio.Task[None] | None = None
        self.app = web.Application(client_max_size=50 * 1024 * 1024, middlewares=[control_errors])
        self.app.router.add_route("*", "/bot{token}/{method}", self._handle_api)
        self.app.router.add_get("/file/bot{token}/{path:.+}", self._handle_file_download)
        self._add_control_routes(self.app)
        self._extra_routes = extra_routes

    def __repr__(self) -> str:  # never show the token
        return f"<BotApiEmulator @{self.bot_user['username']} {self._base_url or 'stopped'}>"

    # -- lifecycle ------------------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        """Serve on ``host:port`` (port 0 picks a free one); see :attr:`base_url`."""
        if self._runner is not None:
            raise RuntimeError("emulator already started")
        if self._extra_routes is not None:
            self._extra_routes(self.app)
            self._extra_routes = None  # the router is frozen from now on
        self._closing = False
        self._changed = asyncio.Event()
        self._runner = web.AppRunner(
            self.app, access_log=None, handler_cancellation=True, shutdown_timeout=1.0
        )
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        site = web.SockSite(self._runner, sock)
        await site.start()
        bound_host, bound_port = sock.getsockname()[:2]
        self._base_url = f"http://{bound_host}:{bound_port}"
        self._client = ClientSession(timeout=ClientTimeout(total=10))
        self._webhook_task = asyncio.create_task(self._webhook_worker())
        log.info("Bot API emulator listening on %s", self._base_url)

    async def stop(self) -> None:
        self._closing = True
        self._notify()
        if self._webhook_task is not None:
            self._webhook_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._webhook_task
            self._webhook_task = None
        if self._client is not None:
            await self._client.close()
            self._client = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        self._base_url = None

    async def __aenter__(self) -> BotApiEmulator:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>``: pass to ``TelegramAPIServer.from_base``."""
        if self._base_url is None:
            raise RuntimeError("emulator is not running; await start() first")
        return self._base_url

    def aiogram_session(self, **kwargs: Any) -> AiohttpSession:
        """An aiogram ``AiohttpSession`` pointed at this emulator."""
        from aiogram.client.session.aiohttp import AiohttpSession
        from aiogram.client.telegram import TelegramAPIServer

        return AiohttpSession(api=TelegramAPIServer.from_base(self.base_url), **kwargs)

    # -- HTTP: the Bot API ----------------------------------------------------------------------

    async def _read_params(self, request: web.Request) -> tuple[JSON, dict[str, web.FileField]]:
        raw: dict[str, Any] = dict(request.query)
        uploads: dict[str, web.FileField] = {}
        if request.method == "POST" and request.can_read_body:
            if request.content_type == "application/json":
                try:
                    body = await request.json(loads=orjson.loads)
                except ValueError:
                    raise bad_request("can't parse JSON object") from None
                if isinstance(body, dict):
                    raw.update(body)
            else:
                form = await request.post()
                for key, value in form.items():
                    if isinstance(value, web.FileField):
                        uploads[key] = value
                    else:
                        raw[key] = value
        return {k: coerce(k, v) for k, v in raw.items()}, uploads

    async def _handle_api(self, request: web.Request) -> web.Response:
        if not secrets.compare_digest(request.match_info["token"], self.token):
            return ApiError(401, "Unauthorized").response()
        name = request.match_info["method"].lower()
        counted = name != "getupdates"
        if name in SEND_METHODS:
            self.send_times.append(time.monotonic())
        if counted:
            self._inflight += 1
            self._touch()
        try:
            params, uploads = await self._read_params(request)
            result = await self._call_method(name, params, uploads)
            return web.json_response({"ok": True, "result": result}, dumps=dumps)
        except ApiError as exc:
            return exc.response()
        except ConnectionDropped:
            if request.transport is not None:
                request.transport.abort()  # the client sees the server disconnect
            return web.Response(status=500)  # never reaches the closed connection
        finally:
            if counted:
                self._inflight -= 1
                self._touch()
                self._notify(REQUEST_DONE)

    async def _handle_file_download(self, request: web.Request) -> web.StreamResponse:
        if not secrets.compare_digest(request.match_info["token"], self.token):
            return ApiError(401, "Unauthorized").response()
        path = request.match_info["path"]
        for stored in self.files.values():
            if stored.file_path == path:
                return web.Response(body=stored.data, content_type=stored.mime_type or None)
        return ApiError(404, "Not Found").response()

    # -- webhook delivery -----------------------------------------------------------------------

    async def _webhook_worker(self) -> None:
        """As Telegram: up to the webhook's ``max_connections`` updates in flight at once, but
        one user's updates one at a time and in order (a later one waits while an earlier one
        is in flight or waiting for a retry)."""
        tasks: set[asyncio.Task[None]] = set()
        busy: set[int] = set()  # users with an update in flight
        in_flight: set[int] = set()
        try:
            while not self._closing:
                pick = await self._wait_until(
                    lambda: self._next_webhook(in_flight, busy), 3600.0, key=UPDATES
                )
                if pick is None or self._webhook is None:
                    continue
                update_id, user = pick
                in_flight.add(update_id)
                if user is not None:
                    busy.add(user)
                self._inflight += 1
                self._touch()
                task = asyncio.create_task(
                    self._deliver_tracked(self._webhook, update_id, user, in_flight, busy)
                )
                tasks.add(task)
                task.add_done_callback(tasks.discard)
        finally:
            for task in tasks:
                task.cancel()

    def _next_webhook(self, in_flight: set[int], busy: set[int]) -> tuple[int, int | None] | None:
        hook = self._webhook
        if hook is None or len(in_flight) >= int(hook.get("max_connections") or 40):
            return None
        seen: set[int] = set(busy)
        for update_id in self._deliverable(len(self._pending) + len(self._forced)):
            if update_id in in_flight:
                continue
            user = _update_user(self._updates[update_id])
            if user is None:
                return update_id, None
            if user not in seen:
                return update_id, user
            # This user's earlier update is in flight or waiting: the later one waits too.
        return None

    async def _deliver_tracked(
        self, hook: JSON, update_id: int, user: int | None, in_flight: set[int], busy: set[int]
    ) -> None:
        try:
            await self._deliver(hook, update_id)
        finally:
            self._inflight -= 1
            self._touch()
            if update_id in self._forced:
                self._forced.remove(update_id)
            if update_id in self._pending:
                self._pending.remove(update_id)
            in_flight.discard(update_id)
            if user is not None:
                busy.discard(user)
            self._notify(UPDATES)

    async def _deliver(self, hook: JSON, update_id: int) -> None:
        if self._client is None:
            raise RuntimeError("emulator is not running")
        headers = {"Content-Type": "application/json"}
        if hook.get("secret_token"):
            headers["X-Telegram-Bot-Api-Secret-Token"] = str(hook["secret_token"])
        body = dumps(self._updates[update_id])
        error = "no attempt"
        for attempt in range(self.webhook_retries + 1):
            if attempt:
                await asyncio.sleep(
                    min(self.webhook_backoff_max, self.webhook_backoff * 2 ** (attempt - 1))
                )
            try:
                async with self._client.post(
                    hook["url"],
                    data=body.encode(),
                    headers=headers,
                    timeout=ClientTimeout(total=self.webhook_timeout),
                ) as r:
                    self.webhook_attempts.append((update_id, r.status))
                    if 200 <= r.status < 300:
                        await self._webhook_reply(r)
                        return
                    error = f"Wrong response from the webhook: {r.status} {r.reason}"
            except (ClientError, TimeoutError) as exc:
                self.webhook_attempts.append((update_id, 0))
                error = f"Connection failed: {type(exc).__name__}"
        log.warning("webhook delivery of update %s failed: %s", update_id, error)
        self.webhook_errors.append(
            {"date": int(time.time()), "message": error, "update_id": update_id}
        )

    async def _webhook_reply(self, response: Any) -> None:
        """A webhook may answer with a Bot API call in its body, as Telegram allows."""
        if response.content_type != "application/json":
            return
        with contextlib.suppress(ValueError):
            payload = await response.json()
            if isinstance(payload, dict) and isinstance(payload.get("method"), str):
                params = {k: coerce(k, v) for k, v in payload.items() if k != "method"}
                try:
                    await self._call_method(payload["method"].lower(), params)
                except ApiError as exc:
                    log.warning("webhook reply %s failed: %s", payload["method"], exc.description)
                except ConnectionDropped:
                    log.warning("webhook reply %s dropped by a fault", payload["method"])


def _update_user(update: JSON) -> int | None:
    """Who an update comes from (its message's, callback's, … ``from``)."""
    for value in update.values():
        if isinstance(value, dict):
            sender = value.get("from")
            if isinstance(sender, dict) and isinstance(sender.get("id"), int):
                return int(sender["id"])
    return None
