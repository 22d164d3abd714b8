"""Tests of the Telegram Bot API emulator, driven by a real aiogram Bot over real HTTP."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiogram import Bot, Dispatcher, F, Router
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramConflictError,
    TelegramForbiddenError,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
)
from aiogram.types import (
    BotCommand,
    BufferedInputFile,
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    Message,
    ReplyKeyboardMarkup,
)
from aiohttp import web

from sandbox.emulator import BotApiEmulator, parse_html, parse_markdown_v2
from sandbox.webchat import add_webchat_routes

TOKEN = "123456:AAE-test_token_for_the_emulator_0123456789"
STUDENT = 1001
LIBRARIAN = 2001


def keyboard(*buttons: tuple[str, str]) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[[InlineKeyboardButton(text=t, callback_data=d)] for t, d in buttons]
    )


@pytest.fixture
async def emu() -> AsyncIterator[BotApiEmulator]:
    async with BotApiEmulator(token=TOKEN, bot_username="shuxiang_bot") as emulator:
        emulator.add_user(STUDENT, first_name="小明", username="xiaoming")
        yield emulator


@pytest.fixture
async def bot(emu: BotApiEmulator) -> AsyncIterator[Bot]:
    session = AiohttpSession(api=TelegramAPIServer.from_base(emu.base_url))
    bot = Bot(TOKEN, session=session)
    yield bot
    await bot.session.close()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def test_get_me(bot: Bot, emu: BotApiEmulator) -> None:
    me = await bot.get_me()
    assert me.id == 123456
    assert me.is_bot
    assert me.username == "shuxiang_bot"
    assert emu.base_url.startswith("http://127.0.0.1:")
    assert TOKEN not in repr(emu)


async def test_send_message_round_trip(bot: Bot, emu: BotApiEmulator) -> None:
    sent = await bot.send_message(
        STUDENT,
        "<b>欢迎</b>来到&lt;书香&gt; 📚 <i>图书馆</i>",
        parse_mode="HTML",
        reply_markup=keyboard(("借阅", "borrow:1")),
    )
    assert sent.text == "欢迎来到<书香> 📚 图书馆"
    assert sent.from_user is not None and sent.from_user.is_bot
    assert sent.chat.id == STUDENT and sent.chat.type == "private"
    assert sent.entities is not None
    # UTF-16 offsets: the emoji counts twice.
    assert [(e.type, e.offset, e.length) for e in sent.entities] == [
        ("bold", 0, 2),
        ("italic", 12, 3),
    ]
    assert sent.reply_markup is not None
    assert sent.reply_markup.inline_keyboard[0][0].callback_data == "borrow:1"
    assert sent.html_text == "<b>欢迎</b>来到&lt;书香&gt; 📚 <i>图书馆</i>"

    transcript = emu.transcript(STUDENT)
    assert [m["text"] for m in transcript] == ["欢迎来到<书香> 📚 图书馆"]
    assert transcript[0]["_deleted"] is False
    assert emu.bot_messages(STUDENT)[0]["message_id"] == sent.message_id
    assert emu.calls("sendMessage")[0]["chat_id"] == STUDENT


async def test_long_polling_and_offsets(bot: Bot, emu: BotApiEmulator) -> None:
    # A poll far longer than the wait below: only the new update can end it in time.
    poll = asyncio.create_task(bot.get_updates(timeout=50))
    await emu.wait_polling()
    assert not poll.done()  # really waiting
    update = emu.send_text(STUDENT, "/start ref_42")
    updates = await asyncio.wait_for(poll, 20)
    assert [u.update_id for u in updates] == [update["update_id"]]
    message = updates[0].message
    assert message is not None and message.text == "/start ref_42"
    assert message.entities is not None and message.entities[0].type == "bot_command"
    assert message.entities[0].length == len("/start")
    assert message.from_user is not None and message.from_user.first_name == "小明"

    # Not confirmed yet: returned again.
    again = await bot.get_updates(timeout=0)
    assert [u.update_id for u in again] == [update["update_id"]]
    # Confirmed by offset: never again.
    assert await bot.get_updates(offset=update["update_id"] + 1, timeout=0) == []
    second = emu.send_text(STUDENT, "三体")
    assert [u.update_id for u in await bot.get_updates(timeout=0)] == [second["update_id"]]
    assert [u.update_id for u in await bot.get_updates(timeout=0)] == [second["update_id"]]
    third = emu.send_text(STUDENT, "活着")
    batch = await bot.get_updates(offset=second["update_id"] + 1, limit=1, timeout=0)
    assert [u.update_id for u in batch] == [third["update_id"]]
    await bot.get_updates(offset=third["update_id"] + 1, timeout=0)
    await emu.wait_idle(timeout=2, quiet=0)

    # A confirmed update can be delivered again, with its own id, to test de-duplication.
    emu.redeliver(update["update_id"])
    redelivered = await bot.get_updates(offset=third["update_id"] + 1, timeout=1)
    assert [u.update_id for u in redelivered] == [update["update_id"]]
    assert await bot.get_updates(offset=update["update_id"] + 1, timeout=0) == []


async def test_two_pollers_conflict(bot: Bot, emu: BotApiEmulator) -> None:
    older = asyncio.create_task(bot.get_updates(timeout=50))
    await emu.wait_polling()
    newer = asyncio.create_task(bot.get_updates(timeout=50))
    with pytest.raises(TelegramConflictError, match="terminated by other getUpdates"):
        await asyncio.wait_for(older, 20)
    await emu.wait_polling()
    emu.send_text(STUDENT, "你好")
    assert len(await asyncio.wait_for(newer, 20)) == 1


async def test_fault_429(bot: Bot, emu: BotApiEmulator) -> None:
    emu.faults.add(method="sendMessage", kind="429", retry_after=3, times=1)
    with pytest.raises(TelegramRetryAfter) as caught:
        await bot.send_message(STUDENT, "hi")
    assert caught.value.retry_after == 3
    assert "Too Many Requests: retry after 3" in caught.value.message
    await bot.send_message(STUDENT, "hi")  # only once
    assert len(emu.calls("sendmessage")) == 2
    assert len(emu.transcript(STUDENT)) == 1


async def test_fault_403_and_block(bot: Bot, emu: BotApiEmulator) -> None:
    emu.faults.add(method="sendMessage", kind="403", chat_id=STUDENT)
    with pytest.raises(TelegramForbiddenError, match="bot was blocked by the user"):
        await bot.send_message(STUDENT, "hi")
    emu.block(STUDENT)
    for _ in range(2):
        with pytest.raises(TelegramForbiddenError):
            await bot.send_message(STUDENT, "hi")
    emu.unblock(STUDENT)
    await bot.send_message(STUDENT, "hi")


async def test_fault_5xx_and_slow(bot: Bot, emu: BotApiEmulator) -> None:
    emu.faults.add(method="getMe", kind="5xx")
    with pytest.raises(TelegramServerError, match="Bad Gateway"):
        await bot.get_me()
    # A slow answer still arrives...
    emu.faults.add(method="getMe", kind="slow", delay=0.05)
    assert (await bot.get_me()).username == "shuxiang_bot"
    # ...and one slower than the client's timeout never does.
    emu.faults.add(method="getMe", kind="slow", delay=60)
    with pytest.raises(TelegramNetworkError):
        await bot.get_me(request_timeout=1)
    assert emu.faults.active == []  # both consumed


async def test_validation_errors(bot: Bot, emu: BotApiEmulator) -> None:
    with pytest.raises(TelegramBadRequest, match="message is too long"):
        await bot.send_message(STUDENT, "书" * 4097)
    await bot.send_message(STUDENT, "书" * 4096)
    with pytest.raises(TelegramBadRequest, match="message text is empty"):
        await bot.send_message(STUDENT, "")
    with pytest.raises(TelegramBadRequest, match="chat not found"):
        await bot.send_message(999999, "hi")
    with pytest.raises(TelegramBadRequest, match="BUTTON_DATA_INVALID"):
        await bot.send_message(STUDENT, "hi", reply_markup=keyboard(("x", "书" * 22)))
    with pytest.raises(TelegramBadRequest, match="can't parse entities"):
        await bot.send_message(STUDENT, "<b>未闭合", parse_mode="HTML")
    with pytest.raises(TelegramBadRequest, match="can't parse entities: Unsupported start tag"):
        await bot.send_message(STUDENT, "<br>", parse_mode="HTML")
    with pytest.raises(TelegramBadRequest, match="can't parse entities"):
        await bot.send_message(STUDENT, "<b><i>x</b></i>", parse_mode="HTML")
    with pytest.raises(TelegramBadRequest, match=r"Character '\.' is reserved"):
        await bot.send_message(STUDENT, "共 3 本.", parse_mode="MarkdownV2")
    assert len(emu.bot_messages(STUDENT)) == 1


def test_parsers() -> None:
    text, entities = parse_html(
        '<a href="https://e.x/?a=1&amp;b=2">链接</a> <pre><code class="language-py">x</code></pre>'
    )
    assert text == "链接 x"
    assert entities == [
        {"type": "text_link", "offset": 0, "length": 2, "url": "https://e.x/?a=1&b=2"},
        {"type": "pre", "offset": 3, "length": 1, "language": "py"},
    ]
    text, entities = parse_markdown_v2(r"*粗体* _斜体_ 共 3 本\. [书](https://e.x)")
    assert text == "粗体 斜体 共 3 本. 书"
    assert [e["type"] for e in entities] == ["bold", "italic", "text_link"]


async def test_callback_button_round_trip(bot: Bot, emu: BotApiEmulator) -> None:
    sent = await bot.send_message(
        STUDENT, "《三体》可借", reply_markup=keyboard(("借阅", "borrow:7"))
    )
    update = emu.press_button(STUDENT, sent.message_id, "borrow:7")
    [received] = await bot.get_updates(timeout=1)
    query = received.callback_query
    assert query is not None and query.data == "borrow:7"
    assert query.message is not None and query.message.message_id == sent.message_id
    assert query.id == update["callback_query"]["id"]
    await bot.answer_callback_query(query.id, text="已为你预约", show_alert=True)
    answer = await emu.wait_for_callback_answer(query.id, timeout=1)
    assert answer["text"] == "已为你预约" and answer["show_alert"] is True
    with pytest.raises(TelegramBadRequest, match="query is too old"):
        await bot.answer_callback_query(query.id)
    with pytest.raises(ValueError, match="no button"):
        emu.press_button(STUDENT, sent.message_id, "nope")


async def test_edit_and_delete(bot: Bot, emu: BotApiEmulator) -> None:
    sent = await bot.send_message(STUDENT, "第 1 页", reply_markup=keyboard(("下一页", "page:2")))
    mark = emu.mark()
    edited = await bot.edit_message_text(
        "第 2 页",
        chat_id=STUDENT,
        message_id=sent.message_id,
        reply_markup=keyboard(("上一页", "page:1")),
    )
    assert isinstance(edited, Message) and edited.edit_date is not None
    got = await emu.wait_for_bot_message(STUDENT, since=mark, timeout=1)
    assert got["text"] == "第 2 页"
    with pytest.raises(TelegramBadRequest, match="message is not modified"):
        await bot.edit_message_text(
            "第 2 页",
            chat_id=STUDENT,
            message_id=sent.message_id,
            reply_markup=keyboard(("上一页", "page:1")),
        )
    # Like Telegram, editing the text without reply_markup drops the keyboard.
    await bot.edit_message_text("第 2 页", chat_id=STUDENT, message_id=sent.message_id)
    assert "reply_markup" not in emu.transcript(STUDENT)[0]
    await bot.edit_message_reply_markup(
        chat_id=STUDENT, message_id=sent.message_id, reply_markup=keyboard(("返回", "back"))
    )
    with pytest.raises(TelegramBadRequest, match="message to edit not found"):
        await bot.edit_message_text("x", chat_id=STUDENT, message_id=999)
    user_message = emu.send_text(STUDENT, "hi")["message"]
    with pytest.raises(TelegramBadRequest, match="message can't be edited"):
        await bot.edit_message_text("x", chat_id=STUDENT, message_id=user_message["message_id"])
    assert await bot.delete_message(STUDENT, sent.message_id)
    assert emu.transcript(STUDENT)[0]["_deleted"] is True
    with pytest.raises(TelegramBadRequest, match="message to delete not found"):
        await bot.delete_message(STUDENT, sent.message_id)


async def test_wait_for_bot_message(bot: Bot, emu: BotApiEmulator) -> None:
    update = emu.send_text(STUDENT, "找书")
    after = update["message"]["message_id"]

    waiting = asyncio.create_task(
        emu.wait_for_bot_message(STUDENT, lambda m: "本" in m["text"], 20, after)
    )
    await asyncio.sleep(0)  # let the wait start: it must be woken by the messages below
    assert not waiting.done()
    await bot.send_message(STUDENT, "正在查找…")
    await bot.send_message(STUDENT, "找到 3 本")
    found = await waiting
    assert found["text"] == "找到 3 本"
    with pytest.raises(TimeoutError, match="正在查找"):
        await emu.wait_for_bot_message(STUDENT, contains="不存在", timeout=0.2)


async def test_files_commands_and_misc(bot: Bot, emu: BotApiEmulator) -> None:
    photo = await bot.send_photo(
        STUDENT,
        BufferedInputFile(b"\x89PNG-fake", "cover.png"),
        caption="<b>封面</b>",
        parse_mode="HTML",
    )
    assert photo.photo is not None and photo.caption == "封面"
    assert emu.file(photo.photo[-1].file_id).data == b"\x89PNG-fake"
    doc = await bot.send_document(STUDENT, BufferedInputFile("书名,作者\n".encode(), "books.csv"))
    assert doc.document is not None and doc.document.file_name == "books.csv"
    stored = emu.file(doc.document.file_id)
    assert stored.data == "书名,作者\n".encode() and stored.filename == "books.csv"
    again = await bot.send_document(STUDENT, doc.document.file_id)  # re-send by file_id
    assert again.document is not None and again.document.file_id == doc.document.file_id

    await bot.set_my_commands([BotCommand(command="start", description="开始")])
    assert [c.command for c in await bot.get_my_commands()] == ["start"]
    assert emu.commands() == [{"command": "start", "description": "开始"}]
    with pytest.raises(TelegramBadRequest, match="BOT_COMMAND_INVALID"):
        await bot.set_my_commands([BotCommand(command="Bad-Name", description="x")])
    chat = await bot.get_chat(STUDENT)
    assert chat.first_name == "小明"
    await bot.send_chat_action(STUDENT, "typing")

    kb = ReplyKeyboardMarkup(keyboard=[[KeyboardButton(text="我的借阅")]], resize_keyboard=True)
    await bot.send_message(STUDENT, "菜单", reply_markup=kb)
    assert emu.reply_keyboard(STUDENT) is not None
    emu.send_sticker(STUDENT)
    emu.send_photo_from_user(STUDENT, caption="ISBN")
    updates = await bot.get_updates(timeout=0)
    assert updates[0].message is not None and updates[0].message.sticker is not None
    assert updates[1].message is not None and updates[1].message.photo is not None
    file = await bot.get_file(updates[1].message.photo[-1].file_id)
    assert file.file_path is not None
    assert (await bot.download_file(file.file_path)) is not None


async def test_http_surface(emu: BotApiEmulator, http: aiohttp.ClientSession) -> None:
    base = emu.base_url
    async with http.post(f"{base}/bot{TOKEN}/noSuchMethod") as r:
        assert r.status == 404
        assert await r.json() == {"ok": False, "error_code": 404, "description": "Not Found"}
    async with http.get(f"{base}/bot123456:wrong/getMe") as r:
        assert r.status == 401
        assert await r.json() == {"ok": False, "error_code": 401, "description": "Unauthorized"}
    async with http.get(f"{base}/bot{TOKEN}/GETME") as r:
        assert (await r.json())["result"]["username"] == "shuxiang_bot"
    async with http.post(
        f"{base}/bot{TOKEN}/sendMessage", json={"chat_id": STUDENT, "text": "json"}
    ) as r:
        assert (await r.json())["result"]["text"] == "json"

    # Control API.
    async with http.post(
        f"{base}/_control/users", json={"user_id": LIBRARIAN, "first_name": "王老师"}
    ) as r:
        assert (await r.json())["result"]["first_name"] == "王老师"
    async with http.post(
        f"{base}/_control/send", json={"user_id": LIBRARIAN, "text": "/stats"}
    ) as r:
        sent = (await r.json())["result"]
    async with http.get(f"{base}/_control/transcript/{LIBRARIAN}") as r:
        body = await r.json()
        assert [m["text"] for m in body["result"]] == ["/stats"]
    async with http.post(
        f"{base}/_control/faults", json={"method": "getMe", "kind": "429", "retry_after": 2}
    ) as r:
        assert (await r.json())["ok"]
    async with http.get(f"{base}/bot{TOKEN}/getMe") as r:
        assert r.status == 429
        assert await r.json() == {
            "ok": False,
            "error_code": 429,
            "description": "Too Many Requests: retry after 2",
            "parameters": {"retry_after": 2},
        }
    after = sent["message"]["message_id"]
    waiter = asyncio.create_task(
        http.get(f"{base}/_control/wait/{LIBRARIAN}?after={after}&timeout=20")
    )
    async with http.post(
        f"{base}/bot{TOKEN}/sendMessage", data={"chat_id": str(LIBRARIAN), "text": "42 本"}
    ) as r:
        assert r.status == 200
    async with await waiter as r:
        assert (await r.json())["result"]["text"] == "42 本"
    async with http.post(f"{base}/_control/send", json={"text": "no user"}) as r:
        assert r.status == 400


async def test_webhook_delivery(bot: Bot, emu: BotApiEmulator) -> None:
    received: list[tuple[str | None, dict[str, Any]]] = []
    statuses = [500]  # first delivery attempt fails, the retry succeeds

    async def hook(request: web.Request) -> web.Response:
        received.append(
            (request.headers.get("X-Telegram-Bot-Api-Secret-Token"), await request.json())
        )
        return web.Response(status=statuses.pop() if statuses else 200)

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        await bot.set_webhook(f"http://127.0.0.1:{port}/hook", secret_token="s3cret-Token_1")
        with pytest.raises(TelegramConflictError, match="webhook is active"):
            await bot.get_updates()
        update = emu.send_text(STUDENT, "webhook 你好")
        await emu.wait_idle(timeout=3, quiet=0)
        assert len(received) == 2
        assert all(secret == "s3cret-Token_1" for secret, _ in received)
        assert received[-1][1] == update
        info = await bot.get_webhook_info()
        assert info.url.endswith("/hook") and info.pending_update_count == 0
        await bot.delete_webhook()
        assert await bot.get_updates(timeout=0) == []
    finally:
        await runner.cleanup()


async def test_webchat_page(http: aiohttp.ClientSession) -> None:
    personas = [
        {"user_id": STUDENT, "label": "学生 小明", "first_name": "小明"},
        {"user_id": LIBRARIAN, "label": "图书管理员 王老师", "first_name": "王老师"},
    ]
    emulator = BotApiEmulator(token=TOKEN)
    add_webchat_routes(emulator.app, emulator, personas)
    async with emulator:
        async with http.get(f"{emulator.base_url}/") as r:
            assert r.status == 200
            assert r.content_type == "text/html"
            page = await r.text()
        assert "学生 小明" in page and "图书管理员 王老师" in page
        assert "<script" in page and "http" not in page.split("<body>")[0].replace("http-equiv", "")
        assert {u["id"] for u in emulator.users} == {STUDENT, LIBRARIAN}


async def test_dispatcher_polling_end_to_end(emu: BotApiEmulator) -> None:
    router = Router()

    @router.message(F.text)
    async def echo(message: Message) -> None:
        await message.answer(f"你说：{message.text}", reply_markup=keyboard(("好", "ok")))

    @router.callback_query(F.data == "ok")
    async def ok(query: CallbackQuery) -> None:
        await query.answer("收到")

    dispatcher = Dispatcher()
    dispatcher.include_router(router)
    bot = Bot(TOKEN, session=emu.aiogram_session())
    polling = asyncio.create_task(
        dispatcher.start_polling(bot, handle_signals=False, polling_timeout=1)
    )
    try:
        update = emu.send_text(STUDENT, "三体")
        reply = await emu.wait_for_bot_message(
            STUDENT, timeout=30, after_message_id=update["message"]["message_id"]
        )
        assert reply["text"] == "你说：三体"
        press = emu.press_button(STUDENT, reply["message_id"], "ok")
        answer = await emu.wait_for_callback_answer(press["callback_query"]["id"], timeout=30)
        assert answer["text"] == "收到"
        await emu.wait_idle(timeout=3)
        assert emu.pending_updates == []
    finally:
        await dispatcher.stop_polling()
        await asyncio.wait_for(polling, 5)
        await bot.session.close()


class FakeClock:
    """A clock the test moves by hand, for the flood limits."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_flood_limit_per_chat(bot: Bot, emu: BotApiEmulator) -> None:
    clock = FakeClock()
    emu.flood.enable(chat_rate=1, chat_burst=2, clock=clock)
    emu.add_user(LIBRARIAN, first_name="王老师")
    first = await bot.send_message(STUDENT, "1")
    await bot.send_message(STUDENT, "2")  # a burst of two is tolerated
    with pytest.raises(TelegramRetryAfter) as caught:
        await bot.send_message(STUDENT, "3")
    assert caught.value.retry_after == 1
    await bot.send_message(LIBRARIAN, "another chat is not held back")
    # Edits and callback answers are not messages sent: not limited.
    await bot.edit_message_text("1 改", chat_id=STUDENT, message_id=first.message_id)
    clock.now += 1
    await bot.send_message(STUDENT, "3")
    assert [m["text"] for m in emu.bot_messages(STUDENT)] == ["1 改", "2", "3"]
    assert emu.flood.rejected == 1
    assert emu.flood.rejected_by_chat == {STUDENT: 1}
    assert emu.flood.accepted == 4

    emu.flood.disable()
    for n in range(5):
        await bot.send_message(STUDENT, f"off {n}")
    assert emu.flood.rejected == 1


async def test_flood_limit_global(
    bot: Bot, emu: BotApiEmulator, http: aiohttp.ClientSession
) -> None:
    clock = FakeClock()
    emu.flood.enable(global_rate=3, chat_rate=100, chat_burst=100, clock=clock)
    for user_id in range(3001, 3005):
        emu.add_user(user_id)
    for user_id in range(3001, 3004):
        await bot.send_message(user_id, "通知")
    async with http.post(
        f"{emu.base_url}/bot{TOKEN}/sendMessage", json={"chat_id": 3004, "text": "通知"}
    ) as r:
        assert r.status == 429
        assert await r.json() == {
            "ok": False,
            "error_code": 429,
            "description": "Too Many Requests: retry after 1",
            "parameters": {"retry_after": 1},
        }
    clock.now += 1 / 3  # the global bucket refills at 3 a second
    await bot.send_message(3004, "通知")
    assert emu.sent_counts() == {3001: 1, 3002: 1, 3003: 1, 3004: 1}

    # The same settings and counters through the control API.
    async with http.get(f"{emu.base_url}/_control/flood") as r:
        flood = (await r.json())["result"]
    assert flood["enabled"] is True and flood["global_rate"] == 3
    assert flood["rejected"] == 1 and flood["rejected_by_chat"] == {"3004": 1}
    async with http.post(f"{emu.base_url}/_control/flood", json={"reset": True}) as r:
        assert (await r.json())["result"]["rejected"] == 0
    async with http.post(
        f"{emu.base_url}/_control/flood", json={"enabled": True, "chat_rate": 1, "chat_burst": 1}
    ) as r:
        flood = (await r.json())["result"]
    assert flood["chat_burst"] == 1 and flood["global_rate"] == 30  # Telegram's defaults
    emu.flood.clock = clock
    await bot.send_message(STUDENT, "一条")
    with pytest.raises(TelegramRetryAfter):
        await bot.send_message(STUDENT, "两条")
    async with http.post(f"{emu.base_url}/_control/flood", json={"enabled": False}) as r:
        assert (await r.json())["result"]["enabled"] is False
    await bot.send_message(STUDENT, "两条")
    async with http.post(
        f"{emu.base_url}/_control/flood", json={"enabled": True, "chat_rate": 0}
    ) as r:
        assert r.status == 400


async def test_faults_per_chat_and_status(
    bot: Bot, emu: BotApiEmulator, http: aiohttp.ClientSession
) -> None:
    emu.add_user(LIBRARIAN, first_name="王老师")
    emu.faults.add("sendMessage", "429", chat_id=STUDENT, retry_after=7, times=None)
    emu.faults.add("sendMessage", "403", chat_id=LIBRARIAN, times=2)
    with pytest.raises(TelegramRetryAfter) as caught:
        await bot.send_message(STUDENT, "hi")
    assert caught.value.retry_after == 7
    with pytest.raises(TelegramForbiddenError, match="bot was blocked by the user"):
        await bot.send_message(LIBRARIAN, "hi")
    with pytest.raises(TelegramForbiddenError):
        await bot.send_message(LIBRARIAN, "hi")
    await bot.send_message(LIBRARIAN, "hi")  # two times only
    with pytest.raises(TelegramRetryAfter):  # forever
        await bot.send_message(STUDENT, "hi")
    emu.faults.clear()

    emu.faults.add("sendMessage", "403", description="Forbidden: user is deactivated")
    with pytest.raises(TelegramForbiddenError, match="user is deactivated"):
        await bot.send_message(STUDENT, "hi")
    async with http.post(
        f"{emu.base_url}/_control/faults",
        json={"method": "sendMessage", "kind": "5xx", "status": 503, "times": None, "every": 3},
    ) as r:
        assert (await r.json())["result"]["every"] == 3
    outcomes = []
    for n in range(6):
        try:
            await bot.send_message(STUDENT, f"第 {n} 条")
            outcomes.append("ok")
        except TelegramServerError as exc:
            assert "Service Unavailable" in exc.message
            outcomes.append("503")
    assert outcomes == ["ok", "ok", "503", "ok", "ok", "503"]
    async with http.get(f"{emu.base_url}/_control/faults") as r:
        [listed] = (await r.json())["result"]
    assert listed["hits"] == 2 and listed["status"] == 503
    with pytest.raises(ValueError, match="5xx status"):
        emu.faults.add("getMe", "5xx", status=418)


async def test_faults_late_lost_and_dropped(bot: Bot, emu: BotApiEmulator) -> None:
    # "lost": Telegram delivered the message, the bot never hears back.
    emu.faults.add("sendMessage", "lost")
    with pytest.raises(TelegramNetworkError):
        await bot.send_message(STUDENT, "送达但没回音")
    # "drop": the connection fails before anything happens.
    emu.faults.add("sendMessage", "drop")
    with pytest.raises(TelegramNetworkError):
        await bot.send_message(STUDENT, "没送达")
    assert [m["text"] for m in emu.bot_messages(STUDENT)] == ["送达但没回音"]

    # "late": delivered at once, answered later; a sender killed meanwhile never learns.
    emu.faults.add("sendMessage", "late", delay=60)
    sending = asyncio.create_task(bot.send_message(STUDENT, "迟到的回答"))
    delivered = await emu.wait_for_bot_message(STUDENT, contains="迟到", timeout=20)
    assert not sending.done()
    sending.cancel()
    with pytest.raises(asyncio.CancelledError):
        await sending
    assert delivered["text"] == "迟到的回答"
    assert emu.sent_total == 2


async def test_sent_counts_and_duplicates(
    bot: Bot, emu: BotApiEmulator, http: aiohttp.ClientSession
) -> None:
    readers = range(4001, 4004)
    for user_id in readers:
        emu.add_user(user_id)
    counting = asyncio.create_task(emu.wait_for_sent(4, timeout=20))
    for user_id in readers:
        await bot.send_message(user_id, "《三体》已到馆")
    await bot.send_message(4002, "《三体》已到馆")  # a second copy
    await bot.send_photo(4003, BufferedInputFile(b"\x89PNG-fake", "cover.png"))
    assert await counting >= 4
    assert emu.sent_total == 5
    assert emu.sent_counts() == {4001: 1, 4002: 2, 4003: 2}
    assert emu.duplicates() == {(4002, "《三体》已到馆"): 2}
    async with http.get(f"{emu.base_url}/_control/stats") as r:
        stats = (await r.json())["result"]
    assert stats["sent_total"] == 5
    assert stats["sent_by_chat"] == {"4001": 1, "4002": 2, "4003": 2}
    assert stats["duplicates"] == [{"chat_id": 4002, "text": "《三体》已到馆", "count": 2}]
    assert stats["flood"]["enabled"] is False
    async with http.delete(f"{emu.base_url}/_control/stats") as r:
        assert (await r.json())["result"]["sent_total"] == 0
    assert emu.duplicates() == {} and emu.sent_counts() == {}
    with pytest.raises(TimeoutError, match="sent 0 of 1"):
        await emu.wait_for_sent(1, timeout=0)
