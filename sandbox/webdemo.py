"""The school's own web chat in the sandbox: `make demo` serves the real web channel
(bot/web) beside the emulated Telegram, on the demo's clock, so what a school tries is the page
its students will use. ``/_demo`` lists the sample readers; each link issues that reader a fresh
binding code and opens the page with it filled in, exactly as the QR code on a binding sheet
does. The demo's clock bar (on the emulator's page) moves the same clock: pushes reach both."""

from __future__ import annotations

import html
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from aiohttp import web

from sandbox.webchat import clock_control
from services.i18n import t
from services.readers.binding import issue_codes

if TYPE_CHECKING:
    from bot.app import Shuxiang
    from sandbox.demo import Persona


CLOCK_JS = Path(__file__).with_name("static") / "democlock.js"


def page_extra() -> str:
    """The demo's clock bar for the real page (its script moves it under the title bar)."""
    return f'{clock_control()}<script src="_demo/clock.js" defer></script>'


def add_demo_routes(web_app: web.Application, app: Shuxiang, personas: Sequence[Persona]) -> None:
    """``GET /_demo`` (who to be) and ``GET /_demo/as/<card>`` (a fresh code, then the page)."""
    cards = {p.card_no: p for p in personas}

    async def landing(request: web.Request) -> web.Response:
        items = "".join(
            f'<li><a href="_demo/as/{html.escape(p.card_no, quote=True)}">'
            f"{html.escape(str(p.as_webchat()['label']))}</a></li>"
            for p in personas
        )
        page = (
            '<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{html.escape(t('web.demo_title'))}</title>"
            '<link rel="stylesheet" href="static/app.css"></head><body><div id="app">'
            f'<header id="bar">{html.escape(t("web.demo_title"))}</header>'
            f'<div id="signin"><p>{html.escape(t("web.demo_hint"))}</p><ul>{items}</ul></div>'
            "</div></body></html>"
        )
        return web.Response(text=page, content_type="text/html", charset="utf-8")

    async def sign_in_as(request: web.Request) -> web.Response:
        persona = cards.get(request.match_info["card"])
        if persona is None:
            raise web.HTTPNotFound
        async with app.db.transaction() as session:
            (code,) = await issue_codes(
                session, policy=app.settings.loan_policy(), card_nos=[persona.card_no]
            )
        raise web.HTTPFound(f"../../?code={code.code}")

    async def clock_js(request: web.Request) -> web.Response:
        return web.Response(
            text=CLOCK_JS.read_text(encoding="utf-8"), content_type="text/javascript"
        )

    web_app.router.add_get("/_demo", landing)
    web_app.router.add_get("/_demo/clock.js", clock_js)
    web_app.router.add_get("/_demo/as/{card}", sign_in_as)
