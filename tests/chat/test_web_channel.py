"""The web channel in process: the real application built without a bot token (the web channel
alone), its HTTP side driven by aiohttp's test client, on SQLite and PostgreSQL. Each security
property is its own test: cookie flags, CSRF, session fixation, revoked sessions, guessing caps,
another reader's conversation, hostile text; then the conversation itself (search, card, a
button's toast, a push, a restart)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select, update

from bot.app import Shuxiang, build_app
from bot.config import load_settings
from bot.web.server import CSRF_HEADER, SESSION_COOKIE, WebServer
from nlp.search import SearchEngine
from services.web_sessions import revoke, token_hash
from storage.db import Database
from storage.models import Loan, Record, WebMessage, WebSession
from tests.factories import lend, make_world
from tests.people import Clock

READERS = {
    "S1": ("李明", "student"),
    "S2": ("王芳", "student"),
    "L1": ("周老师", "librarian"),
}
# Tests of the HTTP side alone; those through the store run on both databases.
SQLITE_ONLY = pytest.mark.parametrize("backend", ["sqlite"])
HOSTILE = '<img src=x onerror="document.title=1">'
RECORDS = {
    "st": ("三体", ["B1", "B2"]),
    "hz": ("活着", ["H1"]),
    "xx": (f"活着{HOSTILE}", ["X1"]),
}


@dataclass
class Browser:
    """One browser: its own cookies, the CSRF token the page holds, the last seq it saw."""

    client: TestClient[Any, Any]
    origin: str
    address: str = "198.51.100.7"
    csrf: str = ""
    pre: str = ""
    seq: int = 0
    messages: dict[int, dict[str, Any]] = field(default_factory=dict)

    def headers(self, **extra: str) -> dict[str, str]:
        return {"Origin": self.origin, CSRF_HEADER: self.csrf, "X-Real-IP": self.address} | extra

    async def state(self) -> dict[str, Any]:
        response = await self.client.get("/api/state", headers={"X-Real-IP": self.address})
        state: dict[str, Any] = await response.json()
        self.csrf, self.pre = state.get("csrf", ""), state["pre"]
        return state

    async def sign_in(self, code: str) -> int:
        await self.state()
        response = await self.client.post(
            "/api/signin", json={"code": code}, headers=self.headers(**{CSRF_HEADER: self.pre})
        )
        if response.status == 200:
            self.csrf = (await response.json())["csrf"]
        return response.status

    async def post(self, path: str, body: dict[str, Any], **headers: str) -> Any:
        return await self.client.post(path, json=body, headers=self.headers(**headers))

    async def say(self, text: str) -> list[dict[str, Any]]:
        """Send ``text``; the bot's messages new or changed since."""
        response = await self.post("/api/send", {"text": text})
        assert response.status == 200, await response.text()
        return await self.changes()

    async def changes(self) -> list[dict[str, Any]]:
        response = await self.client.get(f"/api/updates?after={self.seq}")
        assert response.status == 200, await response.text()
        body = await response.json()
        self.seq = body["seq"]
        for message in body["messages"]:
            self.messages[message["id"]] = message
        return [m for m in body["messages"] if m.get("out")]

    async def press(self, message: dict[str, Any], label: str) -> dict[str, Any]:
        (data,) = [b["data"] for row in message["buttons"] for b in row if label in b["text"]]
        response = await self.post("/api/press", {"message": message["id"], "data": data})
        assert response.status == 200, await response.text()
        answer: dict[str, Any] = await response.json()
        return answer


@dataclass
class Web:
    app: Shuxiang
    db: Database
    clock: Clock
    server: TestServer
    web_server: WebServer
    browsers: list[Browser] = field(default_factory=list)

    async def browser(self, address: str = "198.51.100.7") -> Browser:
        client: TestClient[Any, Any] = TestClient(self.server)
        await client.start_server()
        browser = Browser(client, f"http://{self.server.host}:{self.server.port}", address)
        self.browsers.append(browser)
        return browser

    async def code(self, card_no: str) -> str:
        from services.readers.binding import issue_codes

        async with self.db.transaction() as session:
            (issued,) = await issue_codes(
                session, policy=self.app.settings.loan_policy(), card_nos=[card_no]
            )
        return issued.code

    async def signed_in(self, card_no: str, address: str = "198.51.100.7") -> Browser:
        browser = await self.browser(address)
        assert await browser.sign_in(await self.code(card_no)) == 200
        await browser.changes()
        return browser


async def _web(
    db: Database, db_url: str, search: SearchEngine, monkeypatch: pytest.MonkeyPatch, **extra: Any
) -> Web:
    settings = load_settings(
        _env_file=None, database_url=db_url, web_listen="127.0.0.1:0", quiet_hours="", **extra
    )
    clock = Clock()
    app = build_app(settings, token=None, db=db, search=search, clock=clock)
    assert app.web is not None
    monkeypatch.setattr(app, "start_background", lambda: None)
    await app.dp.emit_startup(
        dispatcher=app.dp, bots=[app.bot], bot=app.bot, **app.dp.workflow_data
    )
    web_server = app.web.server(app.dp, poll_seconds=0)
    server = TestServer(web_server.app())
    await server.start_server()
    return Web(app, db, clock, server, web_server)


@pytest.fixture
async def web(
    db: Database, db_url: str, search_engine: SearchEngine, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Web]:
    world = await make_world(db, records=RECORDS, readers=READERS)
    async with db.transaction() as s:
        await s.execute(
            update(Record).where(Record.id == world.record_pks["hz"]).values(authors=HOSTILE)
        )
    w = await _web(db, db_url, search_engine, monkeypatch)
    async with db.transaction() as s:
        await w.app.search.rebuild_index(s)
    try:
        yield w
    finally:
        for browser in w.browsers:
            await browser.client.close()
        await w.server.close()
        await w.app.dp.emit_shutdown(dispatcher=w.app.dp, bots=[w.app.bot], app=w.app)
        await w.app.dp.storage.close()


def texts(messages: list[dict[str, Any]]) -> str:
    return "\n".join(m.get("html", "") for m in messages)


async def test_sign_in_then_search_by_pinyin_open_a_card_reserve_and_renew(web: Web) -> None:
    for card_no, barcode in (("S2", "B1"), ("S2", "B2"), ("S1", "H1")):
        await lend(web.db, card_no, barcode, policy=web.app.settings.loan_policy())
    student = await web.signed_in("S1")
    greeting = texts(list(student.messages.values()))
    assert "李明" in greeting  # /start, as the conversation's first message
    found = await student.say("santi")
    (card,) = [m for m in found if "《三体》" in m["html"]]
    assert "<b>" in card["html"]  # the bot's formatting arrives as Telegram's HTML subset
    await student.press(card, "预约")
    assert "已预约" in texts(await student.changes())
    loans = await student.say("/loans")
    (listing,) = [m for m in loans if m["buttons"]]
    await student.press(listing, "续借")
    assert "续借" in texts(await student.changes())
    # The reader's menu was set for this conversation (the command menu of the page).
    state = await student.client.get("/api/updates?after=0")
    commands = (await state.json())["commands"]
    assert {"loans", "sessions"} <= {c["command"] for c in commands}


@SQLITE_ONLY  # the HTTP side alone: the store is tested on both elsewhere
async def test_session_cookie_is_httponly_strict_and_secure_under_https(
    db: Database, db_url: str, search_engine: SearchEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    await make_world(db, records=RECORDS, readers=READERS)
    w = await _web(db, db_url, search_engine, monkeypatch, web_url="https://lib.example.cn")
    try:
        browser = await w.browser()
        state = await browser.client.get("/api/state")
        pre = state.cookies["sx_pre"]
        assert pre["httponly"] and pre["secure"] and pre["samesite"] == "Strict"
        # The test client speaks plain HTTP, so its jar keeps Secure cookies back: sent by hand.
        response = await browser.client.post(
            "/api/signin",
            json={"code": await w.code("S1")},
            headers={
                "Origin": "https://lib.example.cn",
                CSRF_HEADER: (await state.json())["pre"],
                "Cookie": f"sx_pre={pre.value}",
            },
        )
        assert response.status == 200
        cookie = response.cookies[SESSION_COOKIE]
        assert cookie["httponly"] and cookie["secure"] and cookie["samesite"] == "Strict"
        assert cookie["path"] == "/"
        # Only the token's hash is kept.
        async with db.transaction(read_only=True) as s:
            stored = list(await s.scalars(select(WebSession.token_hash)))
        assert stored == [token_hash(cookie.value)] and cookie.value not in stored
    finally:
        await browser.client.close()
        await w.server.close()
        await w.app.dp.storage.close()


@SQLITE_ONLY  # the HTTP side alone: the store is tested on both elsewhere
async def test_state_changing_requests_without_the_csrf_token_or_from_elsewhere_are_refused(
    web: Web,
) -> None:
    student = await web.signed_in("S1")
    before = student.seq
    refused = [
        await student.client.post(
            "/api/send", json={"text": "santi"}, headers={"Origin": student.origin}
        ),
        await student.post("/api/send", {"text": "santi"}, **{CSRF_HEADER: "forged"}),
        await student.post("/api/send", {"text": "santi"}, Origin="https://evil.example"),
        await student.post("/api/send", {"text": "santi"}, **{"Sec-Fetch-Site": "cross-site"}),
    ]
    assert [r.status for r in refused] == [403, 403, 403, 403]
    assert await student.changes() == [] and student.seq == before
    # Sign-in too: without the page's double-submit token, nothing is even looked at.
    stranger = await web.browser()
    response = await stranger.client.post(
        "/api/signin", json={"code": await web.code("S2")}, headers={"Origin": stranger.origin}
    )
    assert response.status == 403
    await stranger.state()
    odd = await stranger.post("/api/signin", {"code": "X"}, **{CSRF_HEADER: "令牌"})
    assert odd.status == 403


async def test_a_cookie_planted_before_sign_in_never_becomes_a_session(web: Web) -> None:
    victim = await web.browser()
    planted = "attacker-chosen-token"
    victim.client.session.cookie_jar.update_cookies({SESSION_COOKIE: planted})
    assert await victim.sign_in(await web.code("S1")) == 200
    issued = victim.client.session.cookie_jar.filter_cookies(victim.client.make_url("/"))
    assert issued[SESSION_COOKIE].value != planted
    attacker = await web.browser()
    attacker.client.session.cookie_jar.update_cookies({SESSION_COOKIE: planted})
    assert (await attacker.client.get("/api/updates?after=0")).status == 401
    # Signing in again rotates: the browser's previous session ends.
    old = issued[SESSION_COOKIE].value
    assert await victim.sign_in(await web.code("S1")) == 200
    thief = await web.browser()
    thief.client.session.cookie_jar.update_cookies({SESSION_COOKIE: old})
    assert (await thief.client.get("/api/updates?after=0")).status == 401
    assert (await victim.client.get("/api/updates?after=0")).status == 200


async def test_a_revoked_session_is_refused(web: Web) -> None:
    phone = await web.signed_in("S1")
    laptop = await web.signed_in("S1", address="198.51.100.8")
    async with web.db.transaction() as s:
        ids = list(await s.scalars(select(WebSession.id).order_by(WebSession.id)))
    # The reader signs the phone out from /sessions on the laptop (most recent first).
    listing = await laptop.say("/sessions")
    (sessions,) = [m for m in listing if m["buttons"]]
    await laptop.press(sessions, "2")
    assert (await phone.client.get("/api/updates?after=0")).status == 401
    assert (await phone.post("/api/send", {"text": "santi"})).status == 401
    assert (await laptop.client.get("/api/updates?after=0")).status == 200
    assert len(ids) == 2


async def test_guessing_codes_is_capped_per_address_and_says_nothing_about_codes(
    web: Web,
) -> None:
    guesser = await web.browser(address="203.0.113.9")
    await guesser.state()
    guesser.csrf = guesser.pre
    answers = []
    for guess in ("AAAAAAAA", "BBBBBBBB", "CCCCCCCC", "DDDDDDDD", "EEEEEEEE"):
        response = await guesser.post("/api/signin", {"code": guess})
        answers.append((response.status, (await response.json())["error"]))
    assert set(answers) == {(400, "signin_refused")}
    # Over the cap, even a right code is not looked at from this address...
    code = await web.code("S1")
    response = await guesser.post("/api/signin", {"code": code})
    assert response.status == 429
    # ...while another address still signs in with it.
    other = await web.browser(address="203.0.113.10")
    assert await other.sign_in(code) == 200
    # A used code gets the same answer as one that never existed.
    late = await web.browser(address="203.0.113.11")
    await late.state()
    late.csrf = late.pre
    used = await late.post("/api/signin", {"code": code})
    assert (used.status, (await used.json())["error"]) == (400, "signin_refused")


async def test_another_readers_conversation_is_unreachable_by_id(web: Web) -> None:
    await lend(web.db, "S2", "B1", policy=web.app.settings.loan_policy())
    await lend(web.db, "S2", "B2", policy=web.app.settings.loan_policy())
    li = await web.signed_in("S1")
    wang = await web.signed_in("S2", address="198.51.100.9")
    found = await li.say("santi")
    (card,) = [m for m in found if m["buttons"]]
    data = card["buttons"][0][0]["data"]
    pressed = await wang.post("/api/press", {"message": card["id"], "data": data})
    assert pressed.status == 404
    assert (await wang.client.get(f"/api/file/{card['id']}")).status == 404
    wang_sees = await wang.client.get("/api/updates?after=0")
    ids = {m["id"] for m in (await wang_sees.json())["messages"]}
    assert not ids & set(li.messages)
    # Nor can a reader press a button their own page was never shown.
    forged = await li.post("/api/press", {"message": card["id"], "data": "loan:renew:1"})
    assert forged.status == 404


@SQLITE_ONLY  # the HTTP side alone: the store is tested on both elsewhere
async def test_hostile_titles_and_messages_stay_text(web: Web) -> None:
    student = await web.signed_in("S1")
    said = await student.say(f"活着 {HOSTILE}")
    mine = [m for m in student.messages.values() if not m["out"]]
    assert all("<img" not in m["html"] for m in mine)
    assert any("&lt;img" in m["html"] for m in mine)
    found = await student.say("活着")
    assert "<img" not in texts(found) and "<img" not in texts(said)
    assert "&lt;img src=x" in texts(found)


async def test_unbind_ends_the_web_sessions(web: Web) -> None:
    student = await web.signed_in("S1")
    asked = await student.say("/unbind")
    (confirm,) = [m for m in asked if m["buttons"]]
    label = confirm["buttons"][0][0]["text"]
    await student.press(confirm, label)
    assert (await student.client.get("/api/updates?after=0")).status == 401
    # Signing in again (a new code, another phone) does not bring the old session back.
    again = await web.signed_in("S1", address="198.51.100.20")
    assert (await student.client.get("/api/updates?after=0")).status == 401
    assert (await again.client.get("/api/updates?after=0")).status == 200


async def test_the_conversation_and_sessions_survive_a_restart(
    web: Web, db_url: str, search_engine: SearchEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    student = await web.signed_in("S1")
    await student.say("santi")
    seen = dict(student.messages)
    again = await _web(web.db, db_url, search_engine, monkeypatch)
    try:
        browser = Browser(TestClient(again.server), student.origin)
        await browser.client.start_server()
        browser.client.session.cookie_jar.update_cookies(
            student.client.session.cookie_jar.filter_cookies(student.client.make_url("/"))
        )
        await browser.changes()
        assert set(seen) <= set(browser.messages)
        await browser.client.close()
    finally:
        await again.server.close()
        await again.app.dp.storage.close()


@SQLITE_ONLY  # the HTTP side alone: the store is tested on both elsewhere
async def test_a_reader_sending_too_fast_is_slowed_down(web: Web) -> None:
    student = await web.signed_in("S1")
    statuses = [(await student.post("/api/send", {"text": f"santi {i}"})).status for i in range(32)]
    assert 429 in statuses and statuses[0] == 200


async def test_revoked_by_the_service_for_someone_else_is_refused(web: Web) -> None:
    await web.signed_in("S1")
    async with web.db.transaction() as s:
        (session_id,) = list(await s.scalars(select(WebSession.id)))
        from services.actor import actor_of
        from storage.models import Reader

        other = await s.scalar(select(Reader.id).where(Reader.card_no == "S2"))
        actor = await actor_of(s, other)
        assert not await revoke(s, actor, session_id, now=web.clock())


async def test_a_due_soon_reminder_reaches_the_page_once_and_its_button_renews(web: Web) -> None:
    await lend(web.db, "S1", "H1", policy=web.app.settings.loan_policy())
    student = await web.signed_in("S1")
    async with web.db.transaction(read_only=True) as s:
        loan = await s.scalar(select(Loan))
    assert loan is not None
    web.clock.set(loan.due_at - timedelta(days=3, hours=1))
    assert await web.app.jobs.run_once("due-soon", web.app.job_context) == 1
    await web.app.sender.drain()
    await web.app.sender.drain()  # delivered already: stored once
    pushed = [m for m in await student.changes() if "到期" in m["html"]]
    assert len(pushed) == 1 and "活着" in pushed[0]["html"]
    answer = await student.press(pushed[0], "续借")
    assert not answer.get("alert")
    assert "已续借" in texts(await student.changes())


def test_the_page_needs_nothing_from_the_internet_and_weighs_under_150_kb() -> None:
    from bot.web.server import STATIC

    files = [STATIC / name for name in ("index.html", "app.js", "app.css")]
    assert sum(f.stat().st_size for f in files) <= 150 * 1024
    for f in files:
        text = f.read_text(encoding="utf-8")
        assert "http://" not in text and "https://" not in text and "//cdn" not in text, f


async def test_the_librarian_signs_a_readers_browser_out_and_a_student_cannot(web: Web) -> None:
    student = await web.signed_in("S1")
    other = await web.signed_in("S2", address="198.51.100.9")
    refused = await other.say("/sessions S1")
    assert "图书管理员" in texts(refused) and not any(m["buttons"] for m in refused)
    librarian = await web.signed_in("L1", address="198.51.100.10")
    listing = await librarian.say("/sessions S1")
    (sessions,) = [m for m in listing if m["buttons"]]
    assert "（1 个）" in sessions["html"]
    answer = await librarian.press(sessions, "1")
    assert answer["text"] and not answer["alert"]
    assert (await student.client.get("/api/updates?after=0")).status == 401
    assert (await other.client.get("/api/updates?after=0")).status == 200


async def test_old_messages_and_idle_sessions_are_forgotten_after_the_schools_days(
    web: Web,
) -> None:
    student = await web.signed_in("S1")
    await student.say("santi")
    assert web.app.web is not None
    web.clock.advance(days=web.app.settings.web_keep_days + 1)
    await web.app.web.purge()
    async with web.db.transaction(read_only=True) as s:
        assert not list(await s.scalars(select(WebMessage.id)))
        assert not list(await s.scalars(select(WebSession.id)))  # idle past web_session_days


async def test_the_bot_api_of_the_web_channel_keeps_documents_edits_and_deletions(
    web: Web,
) -> None:
    """The adapter alone, as the handlers and the sender call it through the web channel's Bot."""
    from aiogram.exceptions import TelegramBadRequest
    from aiogram.types import BufferedInputFile, InlineKeyboardButton, InlineKeyboardMarkup

    student = await web.signed_in("S1")
    assert web.app.web is not None
    bot = web.app.web.bot
    chat = -(await _conversation(web, "S1"))
    doc = await bot.send_document(
        chat, BufferedInputFile(b"a,b\n1,2\n", filename="report.csv"), caption="<b>报表</b>"
    )
    markup = InlineKeyboardMarkup(
        inline_keyboard=[[InlineKeyboardButton(text="好", callback_data="kp:1")]]
    )
    sent = await bot.send_message(chat, "<i>第一版</i>", reply_markup=markup)
    await bot.edit_message_text("<i>第二版</i>", chat_id=chat, message_id=sent.message_id)
    with pytest.raises(TelegramBadRequest, match="not modified"):
        await bot.edit_message_text("<i>第二版</i>", chat_id=chat, message_id=sent.message_id)
    gone = await bot.send_message(chat, "删掉我")
    await bot.delete_message(chat, gone.message_id)
    # A Telegram chat id names no web conversation: nothing can land in the wrong place.
    with pytest.raises(TelegramBadRequest, match="chat not found"):
        await bot.send_message(abs(chat), "不该送到")
    changes = {m["id"]: m for m in await student.changes()}
    assert changes[doc.message_id]["media"] == "document"
    assert changes[sent.message_id]["edited"] and changes[sent.message_id]["buttons"] == []
    assert changes[sent.message_id]["html"] == "<i>第二版</i>"
    assert gone.message_id not in {m["id"] for m in student.messages.values() if "html" in m}
    download = await student.client.get(f"/api/file/{changes[doc.message_id]['file']}")
    assert download.status == 200 and await download.read() == b"a,b\n1,2\n"
    assert download.headers["Content-Disposition"].startswith("attachment")


async def _conversation(web: Web, card_no: str) -> int:
    from storage.models import Reader, WebConversation

    async with web.db.transaction(read_only=True) as s:
        found = await s.scalar(
            select(WebConversation.id)
            .join(Reader, Reader.id == WebConversation.reader_id)
            .where(Reader.card_no == card_no)
        )
    assert found is not None
    return int(found)


async def test_guessing_across_the_school_pauses_sign_in_and_tells_the_librarian(
    db: Database, db_url: str, search_engine: SearchEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    await make_world(db, records=RECORDS, readers=READERS)
    w = await _web(db, db_url, search_engine, monkeypatch, bind_fails_across_bot=3)
    try:
        librarian = await w.signed_in("L1", address="198.51.100.50")
        for n in range(3):  # three guessers, one wrong code each
            guesser = await w.browser(address=f"203.0.113.{n + 1}")
            await guesser.state()
            guesser.csrf = guesser.pre
            assert (await guesser.post("/api/signin", {"code": "ZZZZZZZZ"})).status == 400
        alert = await librarian.changes()
        assert "3 次错误的绑定码" in texts(alert)
        # Paused for everyone now, a right code too.
        late = await w.browser(address="203.0.113.9")
        await late.state()
        late.csrf = late.pre
        assert (await late.post("/api/signin", {"code": await w.code("S1")})).status == 429
    finally:
        for browser in w.browsers:
            await browser.client.close()
        await w.server.close()
        await w.app.dp.storage.close()


@SQLITE_ONLY
async def test_run_serves_the_web_channel_alone_until_stopped(
    db: Database, db_url: str, search_engine: SearchEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What `shuxiang run` does without a bot token (bot/web/channel.py): the page on
    SHUXIANG_WEB_LISTEN, the dispatcher's start-up, and a graceful stop."""
    import asyncio

    import aiohttp

    from bot.web.channel import serve_alone, start_web

    settings = load_settings(_env_file=None, database_url=db_url, web_listen="127.0.0.1:0")
    app = build_app(settings, token=None, db=db, search=search_engine)
    assert app.web is not None and app.bot is app.web.bot  # no Telegram at all
    monkeypatch.setattr(app, "start_background", lambda: None)
    await start_web(app)
    assert app.web.runner is not None
    host, port = app.web.runner.addresses[0][:2]
    stop = asyncio.Event()
    serving = asyncio.create_task(serve_alone(app, stop=stop))
    async with aiohttp.ClientSession() as http, http.get(f"http://{host}:{port}/") as page:
        assert page.status == 200 and "static/app.js" in await page.text()
    stop.set()
    await serving
    assert app.web.runner is None  # stopped serving
    await app.close()
