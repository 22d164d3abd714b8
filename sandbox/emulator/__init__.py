"""An in-process emulator of the Telegram Bot API for end-to-end tests and the web sandbox.

The emulator is a small aiohttp application that speaks the Bot API wire protocol
(``/bot<token>/<method>``, Telegram's JSON envelope, Telegram's error texts) closely
enough for a real aiogram ``Bot``/``Dispatcher`` to run against it, plus a control
surface (Python methods and ``/_control/...`` HTTP routes) to play the users' side::

    async with BotApiEmulator(token="123456:TEST") as emu:
        emu.add_user(1001, first_name="小明")
        bot = Bot(emu.token, session=emu.aiogram_session())
        update = emu.send_text(1001, "/start")
        sent_id = update["message"]["message_id"]
        reply = await emu.wait_for_bot_message(1001, after_message_id=sent_id)

It binds 127.0.0.1 only and never logs the bot token.

Modules, each a layer of :class:`BotApiEmulator` or a part it uses:

- ``protocol``: the wire format (error envelope and texts, request field coercion);
- ``text``: text checks (HTML/MarkdownV2/Markdown parsing into entities, length and keyboard
  limits);
- ``store``: the message store (users, chats, messages, update queue, waits on changes,
  counts of messages sent per chat and of duplicates);
- ``faults``: injected failures (429, 403, 5xx, slow, late or lost answers, dropped
  connections), per method, per chat, every Nth call;
- ``flood``: Telegram's flood limits, opt-in (``emu.flood.enable()``), with their counters;
- ``methods``: the Bot API methods over the store;
- ``control``: the ``/_control/...`` HTTP routes;
- ``server``: the aiohttp server, lifecycle and webhook delivery.
"""

from sandbox.emulator.faults import Fault, FaultInjector
from sandbox.emulator.flood import FloodLimits
from sandbox.emulator.protocol import ApiError
from sandbox.emulator.server import BotApiEmulator
from sandbox.emulator.store import StoredFile, iter_buttons
from sandbox.emulator.text import (
    format_text,
    parse_html,
    parse_markdown,
    parse_markdown_v2,
    utf16_len,
)

__all__ = [
    "ApiError",
    "BotApiEmulator",
    "Fault",
    "FaultInjector",
    "FloodLimits",
    "StoredFile",
    "format_text",
    "iter_buttons",
    "parse_html",
    "parse_markdown",
    "parse_markdown_v2",
    "utf16_len",
]
