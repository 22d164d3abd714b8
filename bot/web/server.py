"""The web channel's HTTP side: the page, sign-in, and a reader's conversation.

Every state-changing request is a POST that must come from the page itself: a CSRF token in a
header (the session's own, or before sign-in a double-submit cookie), and an Origin (or
Sec-Fetch-Site) of this site. Each request acts only on the conversation of the session its
cookie names: message ids and button data are looked up in that conversation, so another
reader's ids are simply not found. What a reader types or presses becomes an aiogram Update
fed to the one Dispatcher (``dp.feed_update``) with the web channel's Bot, so the same handlers
answer; their answers land in the conversation (``session.WebChannelSession``), and the page
fetches them with a long poll."""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import secrets
import time
from collections import deque
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from aiogram import Bot, Dispatcher
from aiogram.exceptions import TelegramAPIError
from aiogram.methods import TelegramMethod
from aiogram.types import Update
from aiohttp import web

from bot.web.html import plain
from bot.web.store import ConversationStore, NotFound
from services.errors import ServiceError
from services.i18n import t
from services.readers.binding import BindLimits, librarian_addresses
from services.web_sessions import Current, Refused, chat_of, current, end, sign_in
from services.web_sessions import touch as touch_session
from storage.db import Database
from storage.models import Channel, utcnow

log = logging.getLogger(__name__)

STATIC = Path(__file__).with_name("static")
SESSION_COOKIE = "sx_session"
PRE_COOKIE = "sx_pre"
CSRF_HEADER = "X-Shuxiang-CSRF"
MAX_TEXT = 4096
POLL_SECONDS = 25.0
# Update ids of the web channel: negative, so they never meet Telegram's in processed_updates;
# unique per conversation and change (conversation id * SPAN + its seq).
SPAN = 1_000_000_000
PAGE_STRINGS = (
    "bot_name",
    "title",
    "signin_title",
    "signin_hint",
    "code_label",
    "signin_button",
    "signin_refused",
    "signin_busy",
    "too_fast",
    "signed_out",
    "offline",
    "input_placeholder",
    "send",
    "menu",
    "sign_out",
    "open_file",
    "edited",
)
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob:; "
        "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}
STATIC_TYPES = {".js": "text/javascript", ".css": "text/css", ".html": "text/html"}


class Window:
    """At most ``limit`` events per ``seconds`` for each key (a reader, an address)."""

    def __init__(self, limit: int, seconds: float, *, max_keys: int = 50_000) -> None:
        self.limit = limit
        self.seconds = seconds
        self.max_keys = max_keys
        self._events: dict[str, deque[float]] = {}

    def allow(self, key: str) -> bool:
        now = time.monotonic()
        if len(self._events) > self.max_keys:
            self._events = {k: v for k, v in self._events.items() if v and now - v[-1] < 60}
        stamps = self._events.setdefault(key, deque())
        while stamps and now - stamps[0] > self.seconds:
            stamps.popleft()
        if len(stamps) >= self.limit:
            return False
        stamps.append(now)
        return True


class WebServer:
    """The aiohttp application of the web channel (``app()``), over the conversation store, the
    web channel's Bot and the Dispatcher."""

    def __init__(
        self,
        *,
        db: Database,
        store: ConversationStore,
        bot: Bot,
        answers: dict[str, dict[str, Any]],
        dp: Dispatcher,
        secure: bool,
        public_url: str = "",
        session_days: int = 180,
        bind_limits: BindLimits | None = None,
        clock: Callable[[], datetime] = utcnow,
        poll_seconds: float = POLL_SECONDS,
        page_extra: str = "",
        telegram: Bot | None = None,
    ) -> None:
        self.db = db
        self.store = store
        self.bot = bot
        self.answers = answers
        self.dp = dp
        self.secure = secure
        self.public_host = urlsplit(public_url).netloc.lower() if public_url else ""
        self.session_days = session_days
        self.bind_limits = bind_limits or BindLimits()
        self.clock = clock
        self.poll_seconds = poll_seconds
        # HTML added to the page's body (the sandbox's clock bar); nothing in a deployment.
        self.page_extra = page_extra
        # Telegram's Bot when it runs beside: the librarians there hear of code guessing too.
        self.telegram = telegram
        # A whole school may come from one address (its Wi-Fi's NAT): the per-address windows
        # only stop a flood; wrong codes are capped in the database (BIND_FAILS_PER_USER).
        self.per_reader = Window(30, 10.0)
        self.per_address = Window(600, 10.0)
        self.signins = Window(120, 60.0)
        self._locks: dict[int, asyncio.Lock] = {}
        self._strings = {key: t(f"web.{key}") for key in PAGE_STRINGS}

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._headers], client_max_size=64 * 1024)
        app.router.add_get("/", self.page)
        app.router.add_get("/static/{name}", self.static)
        app.router.add_get("/api/state", self.state)
        app.router.add_post("/api/signin", self.signin)
        app.router.add_post("/api/signout", self.signout)
        app.router.add_get("/api/updates", self.updates)
        app.router.add_post("/api/send", self.send)
        app.router.add_post("/api/press", self.press)
        app.router.add_get("/api/file/{id}", self.file)
        return app

    @web.middleware
    async def _headers(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        response = await handler(request)
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        return response

    # -- the page -------------------------------------------------------------------------------

    async def page(self, request: web.Request) -> web.Response:
        html = (STATIC / "index.html").read_text(encoding="utf-8")
        html = html.replace("{{title}}", self._strings["title"])
        html = html.replace("</body>", f"{self.page_extra}</body>")
        return web.Response(text=html, content_type="text/html", charset="utf-8")

    async def static(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        path = STATIC / name
        if name not in {"app.js", "app.css"} or not path.is_file():
            raise web.HTTPNotFound
        return web.Response(
            body=path.read_bytes(),
            content_type=STATIC_TYPES[path.suffix],
            charset="utf-8",
            headers={"Cache-Control": "no-cache"},
        )

    # -- who is asking --------------------------------------------------------------------------

    def address(self, request: web.Request) -> str:
        """The client's address; behind nginx on this host, the one nginx saw (X-Real-IP)."""
        remote = request.remote or ""
        forwarded = request.headers.get("X-Real-IP", "").strip()
        try:
            local = ipaddress.ip_address(remote).is_loopback
        except ValueError:
            local = False
        return (forwarded if forwarded and local else remote)[:64]

    async def _current(self, request: web.Request, *, touch: bool = False) -> Current | None:
        token = request.cookies.get(SESSION_COOKIE)
        if not token:
            return None
        now = self.clock()
        async with self.db.transaction(read_only=True) as session:
            who = await current(session, token, days=self.session_days, now=now)
        if who is not None and touch and who.stale(now):
            async with self.db.transaction() as session:
                await touch_session(session, who.session_id, now)
        return who

    def _same_site(self, request: web.Request) -> bool:
        """A POST from this site's own page: browsers send Origin (or Sec-Fetch-Site) with
        every cross-site POST, so a request naming another site, or none, is refused."""
        site = request.headers.get("Sec-Fetch-Site")
        if site is not None and site not in ("same-origin", "none"):
            return False
        origin = request.headers.get("Origin")
        if origin is None:
            return site is not None
        host = urlsplit(origin).netloc.lower()
        return host == request.host.lower() or (bool(self.public_host) and host == self.public_host)

    async def _signed_in(self, request: web.Request) -> Current:
        """The session of a state-changing request, its CSRF token and site checked."""
        if not self._same_site(request):
            raise _refused(403, "csrf")
        who = await self._current(request, touch=True)
        if who is None:
            raise _refused(401, "signed_out")
        sent = request.headers.get(CSRF_HEADER, "")
        if not secrets.compare_digest(sent.encode(), who.csrf.encode()):
            raise _refused(403, "csrf")
        if not self.per_address.allow(self.address(request)) or not self.per_reader.allow(
            str(who.conversation_id)
        ):
            raise _refused(429, "too_fast")
        return who

    def _cookie(self, response: web.StreamResponse, name: str, value: str) -> None:
        response.set_cookie(
            name,
            value,
            max_age=self.session_days * 86400 if name == SESSION_COOKIE else None,
            path="/",
            httponly=True,
            secure=self.secure,
            samesite="Strict",
        )

    # -- sign-in --------------------------------------------------------------------------------

    async def state(self, request: web.Request) -> web.Response:
        """The page's first question: signed in (and the session's CSRF token), and the sign-in
        form's token ``pre`` (a double-submit cookie: a browser may sign in again, rotating)."""
        who = await self._current(request)
        pre = request.cookies.get(PRE_COOKIE) or secrets.token_urlsafe(24)
        body: dict[str, Any] = {"signed_in": who is not None, "pre": pre, "strings": self._strings}
        if who is not None:
            body |= {"csrf": who.csrf, "name": who.name}
        response = web.json_response(body)
        self._cookie(response, PRE_COOKIE, pre)
        return response

    async def signin(self, request: web.Request) -> web.Response:
        pre = request.cookies.get(PRE_COOKIE, "")
        sent = request.headers.get(CSRF_HEADER, "")
        matches = secrets.compare_digest(sent.encode(), pre.encode())  # bytes: any header
        if not self._same_site(request) or not pre or not matches:
            raise _refused(403, "csrf")
        address = self.address(request)
        if not self.signins.allow(address):
            raise _refused(429, "signin_busy")
        body = await _json(request)
        code = str(body.get("code", ""))[:64]
        try:
            async with self.db.transaction() as session:
                # The session this browser had is over, whoever signs in now: a cookie planted
                # before sign-in never becomes a signed-in one (session fixation).
                await end(session, request.cookies.get(SESSION_COOKIE), self.clock())
                signed = await sign_in(
                    session,
                    code=code,
                    address=address,
                    user_agent=request.headers.get("User-Agent", ""),
                    limits=self.bind_limits,
                    now=self.clock(),
                )
        except ServiceError:
            raise _refused(429, "signin_busy") from None
        if isinstance(signed, Refused):
            if signed.flood is not None:
                await self._alert_librarians(signed.flood)
            raise _refused(400, "signin_refused")
        response = web.json_response({"signed_in": True, "csrf": signed.csrf})
        self._cookie(response, SESSION_COOKIE, signed.token)
        self._cookie(response, PRE_COOKIE, secrets.token_urlsafe(24))  # used: a new one
        # The conversation opens as Telegram's does: /start, which also sets the reader's menu.
        await self._feed_text(signed.conversation_id, signed.reader.name, "/start", keep=False)
        return response

    async def _alert_librarians(self, count: int) -> None:
        """Binding is paused for too many wrong codes: the librarians hear of it, on the web
        and on Telegram, as /bind tells them."""
        log.warning("web sign-in: %d refused codes within the hour; binding paused", count)
        text = t("binding.flood_alert", count=count)
        async with self.db.transaction(read_only=True) as session:
            web_chats = await librarian_addresses(session, Channel.WEB)
            telegram_chats = await librarian_addresses(session, Channel.TELEGRAM)
        targets = [(self.bot, chat) for chat in web_chats]
        if self.telegram is not None:
            targets += [(self.telegram, chat) for chat in telegram_chats]
        for bot, chat in targets:
            try:
                await bot.send_message(int(chat), text)
            except (TelegramAPIError, ValueError) as exc:  # one librarian's chat: not the rest
                log.warning("flood alert to a librarian: %s", exc)

    async def signout(self, request: web.Request) -> web.Response:
        await self._signed_in(request)
        async with self.db.transaction() as session:
            await end(session, request.cookies.get(SESSION_COOKIE), self.clock())
        response = web.json_response({"signed_in": False})
        response.del_cookie(SESSION_COOKIE, path="/")
        return response

    # -- the conversation -----------------------------------------------------------------------

    async def updates(self, request: web.Request) -> web.Response:
        """What changed after ``after``; waits up to ``wait`` seconds (the poll's length) for
        something to change."""
        who = await self._current(request)
        if who is None:
            raise _refused(401, "signed_out")
        after = _int(request.query.get("after"), 0)
        wait = min(max(_int(request.query.get("wait"), 0), 0), int(self.poll_seconds))
        deadline = time.monotonic() + wait
        while True:
            changes = await self.store.changes(who.conversation_id, after)
            remaining = deadline - time.monotonic()
            if changes["seq"] != after or remaining <= 0 or self.store.wakeups.closed:
                return web.json_response(changes)
            await self.store.wakeups.wait(who.conversation_id, min(remaining, 5.0))
            if await self._current(request) is None:  # signed out elsewhere while waiting
                raise _refused(401, "signed_out")

    async def send(self, request: web.Request) -> web.Response:
        who = await self._signed_in(request)
        body = await _json(request)
        text = str(body.get("text", "")).strip()
        if not text or len(text) > MAX_TEXT:
            raise _refused(400, "bad_text")
        await self._feed_text(who.conversation_id, who.name, text, keep=True)
        return web.json_response({"ok": True})

    async def press(self, request: web.Request) -> web.Response:
        who = await self._signed_in(request)
        body = await _json(request)
        message_id = _int(body.get("message"), 0)
        data = str(body.get("data", ""))
        try:
            row = await self.store.button(who.conversation_id, message_id, data)
        except NotFound:
            raise web.HTTPNotFound from None
        seq = await self.store.tick(who.conversation_id)
        query_id = secrets.token_hex(8)
        chat = {"id": chat_of(who.conversation_id), "type": "private", "first_name": who.name}
        update = {
            "update_id": -(who.conversation_id * SPAN + seq),
            "callback_query": {
                "id": query_id,
                "from": _user(who.conversation_id, who.name),
                "chat_instance": str(chat_of(who.conversation_id)),
                "data": data,
                "message": {
                    "message_id": row.id,
                    "date": int(row.date.timestamp()),
                    "chat": chat,
                    "from": {"id": self.bot.id, "is_bot": True, "first_name": "Shuxiang"},
                    "text": plain(row.text) if row.html else row.text,
                    **({"reply_markup": row.markup} if row.markup else {}),
                },
            },
        }
        self.answers[query_id] = {}
        try:
            await self._feed(who.conversation_id, update)
            answer = self.answers.get(query_id) or {}
        finally:
            self.answers.pop(query_id, None)
        return web.json_response({"text": answer.get("text", ""), "alert": answer.get("alert")})

    async def file(self, request: web.Request) -> web.StreamResponse:
        who = await self._current(request)
        if who is None:
            raise _refused(401, "signed_out")
        try:
            stored = await self.store.file(who.conversation_id, _int(request.match_info["id"], 0))
        except NotFound:
            raise web.HTTPNotFound from None
        image = stored.mime in ("image/png", "image/jpeg", "image/gif", "image/webp")
        disposition = "inline" if image else "attachment"
        return web.Response(
            body=stored.data,
            content_type=stored.mime if image else "application/octet-stream",
            headers={
                "Content-Disposition": f"{disposition}; filename*=UTF-8''{_quote(stored.name)}",
                "Content-Security-Policy": "default-src 'none'; sandbox",
                "Cache-Control": "private, max-age=86400",
            },
        )

    # -- into the dispatcher --------------------------------------------------------------------

    async def _feed_text(self, conversation_id: int, name: str, text: str, *, keep: bool) -> None:
        """A message the reader typed (``keep``: shown in the conversation) as an update."""
        if keep:
            row = await self.store.add(conversation_id, outgoing=False, text=text, html=False)
            seq, message_id, date = row.seq, row.id, int(row.date.timestamp())
        else:
            seq = await self.store.tick(conversation_id)
            message_id, date = 0, int(self.clock().timestamp())
        update = {
            "update_id": -(conversation_id * SPAN + seq),
            "message": {
                "message_id": message_id,
                "date": date,
                "chat": {"id": chat_of(conversation_id), "type": "private", "first_name": name},
                "from": _user(conversation_id, name),
                "text": text,
                **_command_entity(text),
            },
        }
        await self._feed(conversation_id, update)

    async def _feed(self, conversation_id: int, raw: dict[str, Any]) -> None:
        # One reader's updates in order, as Telegram's polling hands them over.
        lock = self._locks.setdefault(conversation_id, asyncio.Lock())
        async with lock:
            update = Update.model_validate(raw, context={"bot": self.bot})
            response = await self.dp.feed_update(self.bot, update, dispatcher=self.dp)
            if isinstance(response, TelegramMethod):
                await self.dp.silent_call_request(self.bot, response)


def _user(conversation_id: int, name: str) -> dict[str, Any]:
    return {
        "id": chat_of(conversation_id),
        "is_bot": False,
        "first_name": name,
        "language_code": "zh",
    }


def _command_entity(text: str) -> dict[str, Any]:
    if not text.startswith("/"):
        return {}
    length = len(text.split(maxsplit=1)[0])
    return {"entities": [{"type": "bot_command", "offset": 0, "length": length}]}


def _refused(status: int, reason: str) -> web.HTTPException:
    """A JSON refusal the page shows (``message``, from the locale catalogue when it has one)."""
    message = t(f"web.{reason}") if reason in PAGE_STRINGS else reason
    classes: dict[int, type[web.HTTPException]] = {
        400: web.HTTPBadRequest,
        401: web.HTTPUnauthorized,
        403: web.HTTPForbidden,
        404: web.HTTPNotFound,
        429: web.HTTPTooManyRequests,
    }
    return classes[status](
        text=json.dumps({"error": reason, "message": message}, ensure_ascii=False),
        content_type="application/json",
    )


async def _json(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        raise _refused(400, "bad_json") from None
    return body if isinstance(body, dict) else {}


def _int(value: Any, default: int) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def _quote(name: str) -> str:
    return quote(name, safe="")
