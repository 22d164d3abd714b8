"""A small web chat page, served by the emulator's aiohttp app, to talk to the bot by hand.

    emu = BotApiEmulator(token, bot_username="shuxiang_bot")
    add_webchat_routes(emu.app, emu, [
        {"user_id": 1001, "label": "学生 小明", "first_name": "小明"},
        {"user_id": 2001, "label": "图书管理员 王老师", "first_name": "王老师"},
    ])
    await emu.start(port=8080)   # then open http://127.0.0.1:8080/

The page only uses the emulator's ``/_control/...`` routes (send, press, transcript).
"""

from __future__ import annotations

import html
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from aiohttp import web

from sandbox.emulator import BotApiEmulator
from services.i18n import t

__all__ = ["CHAT_HTML", "add_webchat_routes", "render_page"]

CHAT_HTML = Path(__file__).with_name("static") / "chat.html"


def _script_json(value: Any) -> str:
    """JSON that is safe inside a <script> element."""
    text = json.dumps(value, ensure_ascii=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def clock_control() -> str:
    """The demo's clock bar (sandbox/clock.py serves its route): its time and three steps."""
    steps = "".join(
        f'<button type="button" data-step="{step}">{html.escape(t(f"democlock.forward_{step}"))}'
        "</button>"
        for step in ("hour", "day", "week")
    )
    return (
        f'<div id="clock" title="{html.escape(t("democlock.title"))}"'
        f' data-failed="{html.escape(t("democlock.failed"))}">'
        f'<span>🕰 {html.escape(t("democlock.label"))}</span><span class="now"></span>{steps}</div>'
    )


def render_page(
    emulator: BotApiEmulator, personas: Sequence[Mapping[str, Any]], *, clock: bool = False
) -> str:
    """``clock``: draw the demo's clock control (only the sandbox, which serves its route)."""
    people: list[dict[str, Any]] = [
        {
            "user_id": int(p["user_id"]),
            "label": str(p.get("label") or p.get("first_name") or p["user_id"]),
            "first_name": str(p.get("first_name") or p.get("label") or "同学"),
        }
        for p in personas
    ]
    options = "\n".join(
        f'<option value="{p["user_id"]}">{html.escape(p["label"])}</option>' for p in people
    )
    bot_name = str(emulator.bot_user.get("first_name") or "bot")
    username = str(emulator.bot_user.get("username") or "")
    template = CHAT_HTML.read_text(encoding="utf-8")
    return (
        template.replace("{{BOT_NAME}}", html.escape(bot_name))
        .replace("{{BOT_USERNAME}}", html.escape(username))
        .replace("{{PERSONA_OPTIONS}}", options)
        .replace("{{PERSONAS_JSON}}", _script_json(people))
        .replace("{{CLOCK_CONTROL}}", clock_control() if clock else "")
    )


def add_webchat_routes(
    app: web.Application,
    emulator: BotApiEmulator,
    personas: Sequence[Mapping[str, Any]],
    *,
    clock: bool = False,
) -> None:
    """Serve the chat page at ``GET /`` and register the personas as emulator users.

    ``personas``: dicts with ``user_id``, ``label`` (shown in the selector) and ``first_name``
    (the Telegram first name); an optional ``username`` is passed on too. ``clock``: the page
    draws the demo's clock control (the caller serves ``/_demo/clock``). Call before start().
    """
    known = {u["id"] for u in emulator.users}
    for persona in personas:
        user_id = int(persona["user_id"])
        if user_id not in known:
            emulator.add_user(
                user_id,
                first_name=str(persona.get("first_name") or persona.get("label") or "同学"),
                username=persona.get("username"),
            )

    async def page(request: web.Request) -> web.Response:
        return web.Response(
            text=render_page(emulator, personas, clock=clock),
            content_type="text/html",
            charset="utf-8",
            headers={"Cache-Control": "no-store"},
        )

    app.router.add_get("/", page)
