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
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import copy
import hashlib
import itertools
import json
import logging
import mimetypes
import re
import secrets
import socket
import struct
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from aiohttp import ClientError, ClientSession, ClientTimeout, web

if TYPE_CHECKING:
    from aiogram.client.session.aiohttp import AiohttpSession

__all__ = [
    "ApiError",
    "BotApiEmulator",
    "Fault",
    "FaultInjector",
    "StoredFile",
    "parse_html",
    "parse_markdown",
    "parse_markdown_v2",
]

log = logging.getLogger("shuxiang.sandbox")

JSON = dict[str, Any]
T = TypeVar("T")

DEFAULT_BOT_ID = 7000000001
MAX_TEXT = 4096
MAX_CAPTION = 1024
# A 1x1 PNG: what a user "sends" when a test does not care about the picture itself.
SAMPLE_PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8/5+hHgAHggJ/PchI7wAAAABJRU5ErkJggg=="
)

CONFLICT_POLL = (
    "Conflict: terminated by other getUpdates request; "
    "make sure that only one bot instance is running"
)
CONFLICT_WEBHOOK = (
    "Conflict: can't use getUpdates method while webhook is active; "
    "use deleteWebhook to delete the webhook first"
)
NOT_MODIFIED = (
    "Bad Request: message is not modified: specified new message content and reply markup "
    "are exactly the same as a current content and reply markup of the message"
)
QUERY_INVALID = "Bad Request: query is too old and response timeout expired or query ID is invalid"


class ApiError(Exception):
    """A Bot API error reply: ``{"ok": false, "error_code": ..., "description": ...}``."""

    def __init__(self, code: int, description: str, parameters: JSON | None = None) -> None:
        super().__init__(description)
        self.code = code
        self.description = description
        self.parameters = parameters

    def envelope(self) -> JSON:
        body: JSON = {"ok": False, "error_code": self.code, "description": self.description}
        if self.parameters:
            body["parameters"] = self.parameters
        return body

    def response(self) -> web.Response:
        return web.json_response(self.envelope(), status=self.code, dumps=_dumps)


def _dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False)


def _bad(description: str) -> ApiError:
    return ApiError(400, f"Bad Request: {description}")


def utf16_len(text: str) -> int:
    """Length in UTF-16 code units, the unit Telegram uses for entity offsets."""
    return len(text.encode("utf-16-le")) // 2


# ---------------------------------------------------------------------------------------------
# Formatting: parse_mode HTML / MarkdownV2 / Markdown into plain text + entities (UTF-16 offsets)
# ---------------------------------------------------------------------------------------------


class _TextBuilder:
    def __init__(self) -> None:
        self.parts: list[str] = []
        self.pos = 0  # UTF-16 offset of the end of the text so far
        self.entities: list[JSON] = []

    def add(self, text: str) -> None:
        self.parts.append(text)
        self.pos += utf16_len(text)

    def entity(self, kind: str, start: int, **extra: Any) -> None:
        if self.pos > start:
            self.entities.append(
                {"type": kind, "offset": start, "length": self.pos - start, **extra}
            )

    def result(self) -> tuple[str, list[JSON]]:
        self.entities.sort(key=lambda e: (e["offset"], -e["length"]))
        return "".join(self.parts), self.entities


def _entity_error(message: str) -> ApiError:
    return _bad(f"can't parse entities: {message}")


def _byte_offset(source: str, index: int) -> int:
    return len(source[:index].encode("utf-8"))


_HTML_TAGS = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "code": "code",
    "pre": "pre",
    "a": "text_link",
    "tg-spoiler": "spoiler",
    "span": "spoiler",
    "blockquote": "blockquote",
    "tg-emoji": "custom_emoji",
}
_TAG_RE = re.compile(r"<(/?)([a-zA-Z][a-zA-Z0-9-]*)(\s[^<>]*)?>")
_ATTR_RE = re.compile(r"([a-zA-Z-]+)(?:\s*=\s*(?:\"([^\"]*)\"|'([^']*)'|([^\s\"'>]+)))?")
_CHARREF_RE = re.compile(r"&(#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|[a-zA-Z]+);")
_NAMED_REFS = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}


def _unescape_html(text: str) -> str:
    def repl(m: re.Match[str]) -> str:
        ref = m.group(1)
        if ref.startswith(("#x", "#X")):
            return chr(int(ref[2:], 16))
        if ref.startswith("#"):
            return chr(int(ref[1:]))
        return _NAMED_REFS.get(ref.lower(), m.group(0))

    return _CHARREF_RE.sub(repl, text)


def parse_html(source: str) -> tuple[str, list[JSON]]:
    """Telegram's HTML parse mode (a simplified but strict subset of its parser)."""
    out = _TextBuilder()
    stack: list[tuple[str, int, JSON | None]] = []
    i, n = 0, len(source)
    while i < n:
        ch = source[i]
        if ch == "<":
            m = _TAG_RE.match(source, i)
            offset = _byte_offset(source, i)
            if m is None:
                tail = source[i + 1 : i + 16].split(">")[0]
                raise _entity_error(f'Unsupported start tag "{tail}" at byte offset {offset}')
            closing, name, raw_attrs = m.group(1) == "/", m.group(2).lower(), m.group(3) or ""
            if closing:
                if not stack:
                    raise _entity_error(f"Unexpected end tag at byte offset {offset}")
                open_name, start, closed = stack.pop()
                if open_name != name:
                    raise _entity_error(
                        f'Unmatched end tag at byte offset {offset}, expected "</{open_name}>", '
                        f'found "</{name}>"'
                    )
                if closed is not None:
                    out.entity(start=start, **closed)
            else:
                if name not in _HTML_TAGS:
                    raise _entity_error(f'Unsupported start tag "{name}" at byte offset {offset}')
                attrs = {
                    a.group(1).lower(): _unescape_html(a.group(2) or a.group(3) or a.group(4) or "")
                    for a in _ATTR_RE.finditer(raw_attrs)
                }
                entity: JSON | None = {"kind": _HTML_TAGS[name]}
                if name == "span" and attrs.get("class") != "tg-spoiler":
                    raise _entity_error(f'Unsupported start tag "span" at byte offset {offset}')
                if name == "a":
                    entity = (
                        {"kind": "text_link", "url": attrs["href"]} if "href" in attrs else None
                    )
                elif name == "blockquote" and "expandable" in attrs:
                    entity = {"kind": "expandable_blockquote"}
                elif name == "tg-emoji":
                    entity = {"kind": "custom_emoji", "custom_emoji_id": attrs.get("emoji-id", "")}
                elif name == "code" and stack and stack[-1][0] == "pre" and stack[-1][1] == out.pos:
                    pre = stack[-1][2]
                    language = attrs.get("class", "")
                    if pre is not None and language.startswith("language-"):
                        pre["language"] = language[len("language-") :]
                        entity = None
                stack.append((name, out.pos, entity))
            i = m.end()
            continue
        if ch == "&":
            m = _CHARREF_RE.match(source, i)
            if m is not None:
                out.add(_unescape_html(m.group(0)))
                i = m.end()
                continue
        out.add(ch)
        i += 1
    if stack:
        raise _entity_error(f'Can\'t find end tag corresponding to start tag "{stack[-1][0]}"')
    return out.result()


_MD2_RESERVED = set("_*[]()~`>#+-=|{}.!\\")
_MD2_NAMES = {
    "*": ("bold", "Bold"),
    "_": ("italic", "Italic"),
    "__": ("underline", "Underline"),
    "~": ("strikethrough", "Strikethrough"),
    "||": ("spoiler", "Spoiler"),
    "[": ("text_link", "TextUrl"),
}


def _md2_scan_until(source: str, i: int, end: str, byte_start: int, what: str) -> tuple[str, int]:
    """Read escaped text from ``i`` up to the unescaped ``end``; return (text, index after end)."""
    buf: list[str] = []
    n = len(source)
    while i < n:
        if source[i] == "\\" and i + 1 < n:
            buf.append(source[i + 1])
            i += 2
            continue
        if source.startswith(end, i):
            return "".join(buf), i + len(end)
        buf.append(source[i])
        i += 1
    raise _entity_error(f"Can't find end of {what} entity at byte offset {byte_start}")


def parse_markdown_v2(source: str) -> tuple[str, list[JSON]]:
    """Telegram's MarkdownV2 parse mode, including the reserved-character rule."""
    out = _TextBuilder()
    stack: list[tuple[str, int, int]] = []  # marker, UTF-16 start, byte offset
    quote_start: int | None = None
    i, n = 0, len(source)
    while i < n:
        ch = source[i]
        offset = _byte_offset(source, i)
        if ch == "\\" and i + 1 < n and 0 < ord(source[i + 1]) < 127:
            out.add(source[i + 1])
            i += 2
            continue
        if ch == "`":
            start = out.pos
            if source.startswith("```", i):
                body, i = _md2_scan_until(source, i + 3, "```", offset, "Pre")
                language = ""
                first, sep, rest = body.partition("\n")
                if sep and re.fullmatch(r"[\w+#.-]*", first):
                    language, body = first, rest
                out.add(body)
                extra = {"language": language} if language else {}
                out.entity("pre", start, **extra)
            else:
                body, i = _md2_scan_until(source, i + 1, "`", offset, "Code")
                out.add(body)
                out.entity("code", start)
            continue
        if ch in "*_~|":
            marker = ch
            if source.startswith("__", i):
                marker = "__"
            elif ch == "|":
                if not source.startswith("||", i):
                    raise _entity_error(
                        "Character '|' is reserved and must be escaped with the preceding '\\'"
                    )
                marker = "||"
            if stack and stack[-1][0] == marker:
                _, start, _ = stack.pop()
                out.entity(_MD2_NAMES[marker][0], start)
            elif any(m == marker for m, _, _ in stack):
                _, _, b = next(s for s in stack if s[0] == marker)
                raise _entity_error(
                    f"Can't find end of {_MD2_NAMES[marker][1]} entity at byte offset {b}"
                )
            else:
                stack.append((marker, out.pos, offset))
            i += len(marker)
            continue
        if ch == "[":
            stack.append(("[", out.pos, offset))
            i += 1
            continue
        if ch == "]" and stack and stack[-1][0] == "[" and source.startswith("(", i + 1):
            url, i = _md2_scan_until(source, i + 2, ")", offset, "URL")
            _, start, _ = stack.pop()
            out.entity("text_link", start, url=url)
            continue
        if ch == ">" and (i == 0 or source[i - 1] == "\n"):
            if quote_start is None:
                quote_start = out.pos
            i += 1
            continue
        if ch in _MD2_RESERVED:
            raise _entity_error(
                f"Character '{ch}' is reserved and must be escaped with the preceding '\\'"
            )
        if ch == "\n" and quote_start is not None and not source.startswith(">", i + 1):
            out.entity("blockquote", quote_start)
            quote_start = None
        out.add(ch)
        i += 1
    if quote_start is not None:
        out.entity("blockquote", quote_start)
    if stack:
        marker, _, b = stack[-1]
        raise _entity_error(f"Can't find end of {_MD2_NAMES[marker][1]} entity at byte offset {b}")
    return out.result()


def parse_markdown(source: str) -> tuple[str, list[JSON]]:
    """Telegram's legacy Markdown parse mode (no nesting, few escapes)."""
    out = _TextBuilder()
    i, n = 0, len(source)
    kinds = {"*": "bold", "_": "italic"}
    while i < n:
        ch = source[i]
        offset = _byte_offset(source, i)
        missing = _entity_error(f"Can't find end of the entity starting at byte offset {offset}")
        if ch == "\\" and i + 1 < n and source[i + 1] in "_*`[":
            out.add(source[i + 1])
            i += 2
        elif ch in kinds:
            end = source.find(ch, i + 1)
            if end < 0:
                raise missing
            start = out.pos
            out.add(source[i + 1 : end])
            out.entity(kinds[ch], start)
            i = end + 1
        elif ch == "`":
            fence = "```" if source.startswith("```", i) else "`"
            end = source.find(fence, i + len(fence))
            if end < 0:
                raise missing
            start = out.pos
            out.add(source[i + len(fence) : end])
            out.entity("pre" if fence == "```" else "code", start)
            i = end + len(fence)
        elif ch == "[":
            m = re.compile(r"\[([^\]]*)\]\(([^)]*)\)").match(source, i)
            if m is None:
                raise missing
            start = out.pos
            out.add(m.group(1))
            out.entity("text_link", start, url=m.group(2))
            i = m.end()
        else:
            out.add(ch)
            i += 1
    return out.result()


def format_text(text: str, parse_mode: str | None, entities: Any) -> tuple[str, list[JSON]]:
    """Apply ``entities`` (wins, like Telegram) or ``parse_mode`` to a message text."""
    if isinstance(entities, list):
        return text, [dict(e) for e in entities if isinstance(e, dict)]
    mode = (parse_mode or "").lower()
    if mode == "html":
        return parse_html(text)
    if mode == "markdownv2":
        return parse_markdown_v2(text)
    if mode == "markdown":
        return parse_markdown(text)
    if mode:
        raise _bad("unsupported parse_mode")
    return text, []


# ---------------------------------------------------------------------------------------------
# State records
# ---------------------------------------------------------------------------------------------


@dataclass
class StoredFile:
    """A file the bot uploaded (or a user "sent"); ``data`` is empty for URLs."""

    file_id: str
    file_unique_id: str
    kind: str
    data: bytes
    filename: str | None = None
    mime_type: str | None = None
    url: str | None = None
    width: int = 0
    height: int = 0

    @property
    def size(self) -> int:
        return len(self.data)

    @property
    def file_path(self) -> str:
        return f"{self.kind}s/{self.file_unique_id}"


@dataclass
class Fault:
    """One injected failure; see :meth:`FaultInjector.add`."""

    method: str
    kind: str
    retry_after: int = 1
    times: int | None = 1
    chat_id: int | None = None
    delay: float = 1.0
    description: str | None = None
    hits: int = 0

    def matches(self, method: str, params: JSON) -> bool:
        if self.times is not None and self.hits >= self.times:
            return False
        if self.method not in ("*", method):
            return False
        return self.chat_id is None or _as_int(params.get("chat_id")) == self.chat_id

    def to_json(self) -> JSON:
        return {
            "method": self.method,
            "kind": self.kind,
            "retry_after": self.retry_after,
            "times": self.times,
            "chat_id": self.chat_id,
            "delay": self.delay,
            "hits": self.hits,
        }


class FaultInjector:
    """Failures to inject into Bot API calls, consumed in the order they were added."""

    KINDS = ("429", "403", "5xx", "slow", "400")

    def __init__(self) -> None:
        self._faults: list[Fault] = []

    def add(
        self,
        method: str = "*",
        kind: str = "429",
        *,
        retry_after: int = 1,
        times: int | None = 1,
        chat_id: int | None = None,
        delay: float = 1.0,
        description: str | None = None,
    ) -> Fault:
        """Fail the next ``times`` calls (None = forever) of ``method`` ("*" = any method).

        kinds: "429" (flood wait ``retry_after``), "403" (blocked by the user), "5xx" (502 Bad
        Gateway), "slow" (answer normally after ``delay`` seconds), "400" (``description``).
        """
        if kind not in self.KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; expected one of {self.KINDS}")
        fault = Fault(
            method=method.lower(),
            kind=kind,
            retry_after=retry_after,
            times=times,
            chat_id=chat_id,
            delay=delay,
            description=description,
        )
        self._faults.append(fault)
        return fault

    def clear(self) -> None:
        self._faults.clear()

    @property
    def active(self) -> list[Fault]:
        return [f for f in self._faults if f.times is None or f.hits < f.times]

    def take(self, method: str, params: JSON) -> Fault | None:
        for fault in self._faults:
            if fault.matches(method, params):
                fault.hits += 1
                return fault
        return None


@dataclass
class _MessageRecord:
    message: JSON
    outgoing: bool
    seq: int
    deleted: bool = False


@dataclass
class _Event:
    seq: int
    kind: str  # "sent" | "edited" | "deleted"
    outgoing: bool
    snapshot: JSON


@dataclass
class _Chat:
    chat_id: int
    records: dict[int, _MessageRecord] = field(default_factory=dict)
    events: list[_Event] = field(default_factory=list)
    next_message_id: int = 1
    version: int = 0
    reply_keyboard: JSON | None = None


@dataclass
class _CallbackRecord:
    callback_query_id: str
    user_id: int
    chat_id: int
    message_id: int
    data: str
    answer: JSON | None = None


@dataclass
class _Poll:
    conflict: str | None = None


@dataclass
class _Call:
    method: str
    params: JSON


def _as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and re.fullmatch(r"-?\d+", value.strip()):
        return int(value)
    return None


_INT_FIELDS = {
    "chat_id",
    "message_id",
    "offset",
    "limit",
    "timeout",
    "user_id",
    "reply_to_message_id",
    "cache_time",
    "max_connections",
    "from_chat_id",
    "message_thread_id",
}
_BOOL_FIELDS = {
    "show_alert",
    "disable_notification",
    "protect_content",
    "drop_pending_updates",
    "disable_web_page_preview",
    "allow_sending_without_reply",
    "disable_content_type_detection",
    "has_spoiler",
}
_JSON_FIELDS = {
    "reply_markup",
    "entities",
    "caption_entities",
    "commands",
    "scope",
    "menu_button",
    "allowed_updates",
    "link_preview_options",
    "reply_parameters",
    "message_ids",
    "media",
}
# Methods that talk to a chat: a blocked user's chat answers them with 403.
_CHAT_WRITE_METHODS = {
    "sendmessage",
    "sendphoto",
    "senddocument",
    "sendsticker",
    "sendchataction",
    "sendmediagroup",
    "copymessage",
    "forwardmessage",
    "editmessagetext",
    "editmessagecaption",
    "editmessagereplymarkup",
}
_BUTTON_ACTIONS = {
    "url",
    "callback_data",
    "web_app",
    "login_url",
    "switch_inline_query",
    "switch_inline_query_current_chat",
    "switch_inline_query_chosen_chat",
    "copy_text",
    "callback_game",
    "pay",
}
_BOT_COMMAND_RE = re.compile(r"/[A-Za-z0-9_]{1,32}(?:@[A-Za-z0-9_]{3,32})?")


def _coerce(key: str, value: Any) -> Any:
    if not isinstance(value, str):
        return value
    if key in _JSON_FIELDS:
        try:
            return json.loads(value)
        except ValueError:
            if key == "reply_markup":
                raise _bad("can't parse reply keyboard markup JSON object") from None
            raise _bad(f"can't parse {key} JSON object") from None
    if key in _INT_FIELDS:
        number = _as_int(value)
        return value if number is None else number
    if key in _BOOL_FIELDS:
        return value.strip().lower() in ("true", "1")
    return value


def _image_size(data: bytes) -> tuple[int, int]:
    if data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) >= 24:
        width, height = struct.unpack(">II", data[16:24])
        return int(width), int(height)
    return 800, 600


# ---------------------------------------------------------------------------------------------
# The emulator
# ---------------------------------------------------------------------------------------------

MethodHandler = Callable[[JSON, dict[str, web.FileField]], Any]


class BotApiEmulator:
    """A fake Telegram Bot API server for one bot token; see the module docstring."""

    def __init__(
        self,
        token: str,
        bot_username: str = "shuxiang_bot",
        *,
        bot_first_name: str = "书香",
        extra_routes: Callable[[web.Application], None] | None = None,
        webhook_retries: int = 3,
        webhook_backoff: float = 0.05,
        first_update_id: int = 1,
    ) -> None:
        self.token = token
        prefix = token.split(":", 1)[0]
        self.bot_user: JSON = {
            "id": int(prefix) if prefix.isdigit() else DEFAULT_BOT_ID,
            "is_bot": True,
            "first_name": bot_first_name,
            "username": bot_username,
        }
        self.faults = FaultInjector()
        self.files: dict[str, StoredFile] = {}
        self.webhook_retries = webhook_retries
        self.webhook_backoff = webhook_backoff
        self.webhook_errors: list[JSON] = []

        self._users: dict[int, JSON] = {}
        self._other_chats: dict[int, JSON] = {}  # non-private chats, from injected raw updates
        self._chats: dict[int, _Chat] = {}
        self._blocked: set[int] = set()
        self._updates: dict[int, JSON] = {}
        self._pending: list[int] = []  # update ids not confirmed yet, ascending
        self._forced: list[int] = []  # redelivered update ids, returned before the others
        self._forced_sent: set[int] = set()
        self._update_ids = itertools.count(first_update_id)
        self._callback_ids = itertools.count(1)
        self._file_ids = itertools.count(1)
        self._seq = 0
        self._callbacks: dict[str, _CallbackRecord] = {}
        self._calls: list[_Call] = []
        self._commands: dict[tuple[str, str], list[JSON]] = {}
        self._menu_buttons: dict[int | None, JSON] = {}
        self._webhook: JSON | None = None
        self._poller: _Poll | None = None
        self._inflight = 0
        self._last_activity = 0.0
        self._changed = asyncio.Event()
        self._closing = False
        self._runner: web.AppRunner | None = None
        self._base_url: str | None = None
        self._client: ClientSession | None = None
        self._webhook_task: asyncio.Task[None] | None = None

        self._methods: dict[str, MethodHandler] = {
            "getme": self._m_get_me,
            "getupdates": self._m_get_updates,
            "sendmessage": self._m_send_message,
            "sendphoto": self._m_send_photo,
            "senddocument": self._m_send_document,
            "sendchataction": self._m_chat_ok,
            "editmessagetext": self._m_edit_text,
            "editmessagecaption": self._m_edit_caption,
            "editmessagereplymarkup": self._m_edit_markup,
            "deletemessage": self._m_delete_message,
            "deletemessages": self._m_delete_messages,
            "answercallbackquery": self._m_answer_callback,
            "setmycommands": self._m_set_commands,
            "getmycommands": self._m_get_commands,
            "deletemycommands": self._m_delete_commands,
            "setwebhook": self._m_set_webhook,
            "deletewebhook": self._m_delete_webhook,
            "getwebhookinfo": self._m_webhook_info,
            "setchatmenubutton": self._m_set_menu_button,
            "getchatmenubutton": self._m_get_menu_button,
            "getchat": self._m_get_chat,
            "getfile": self._m_get_file,
            "setmydescription": self._m_true,
            "setmyshortdescription": self._m_true,
            "setmyname": self._m_true,
            "close": self._m_true,
            "logout": self._m_true,
        }

        self.app = web.Application(client_max_size=50 * 1024 * 1024, middlewares=[_control_errors])
        self._add_routes(self.app)
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

    # -- change notification --------------------------------------------------------------------

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    def _touch(self) -> None:
        self._last_activity = time.monotonic()

    async def _wait_until(
        self,
        check: Callable[[], T | None],
        timeout: float,  # noqa: ASYNC109
        slice_: float | None = None,
    ) -> T | None:
        """Re-run ``check`` on every state change until it returns non-None or time runs out."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max(0.0, timeout)
        while True:
            changed = self._changed
            result = check()
            if result is not None:
                return result
            remaining = deadline - loop.time()
            if remaining <= 0 or self._closing:
                return None
            wait = remaining if slice_ is None else min(remaining, slice_)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), wait)

    # -- users and chats ------------------------------------------------------------------------

    def add_user(
        self,
        user_id: int,
        first_name: str = "同学",
        username: str | None = None,
        language_code: str = "zh-hans",
        last_name: str | None = None,
    ) -> JSON:
        """Register a user; their private chat with the bot has ``chat_id == user_id``."""
        user: JSON = {"id": user_id, "is_bot": False, "first_name": first_name}
        if last_name:
            user["last_name"] = last_name
        if username:
            user["username"] = username
        if language_code:
            user["language_code"] = language_code
        self._users[user_id] = user
        self._chats.setdefault(user_id, _Chat(user_id))
        return dict(user)

    def user(self, user_id: int) -> JSON:
        if user_id not in self._users:
            self.add_user(user_id, first_name=f"用户{user_id}")
        return dict(self._users[user_id])

    @property
    def users(self) -> list[JSON]:
        return [dict(u) for u in self._users.values()]

    def _chat_object(self, chat_id: int) -> JSON:
        if chat_id in self._other_chats:
            return dict(self._other_chats[chat_id])
        user = self._users[chat_id]
        chat: JSON = {"id": chat_id, "type": "private", "first_name": user["first_name"]}
        for key in ("last_name", "username"):
            if key in user:
                chat[key] = user[key]
        return chat

    def _known_chat(self, params: JSON) -> int:
        raw = params.get("chat_id")
        if raw is None or raw == "":
            raise _bad("chat_id is empty")
        chat_id = _as_int(raw)
        if chat_id is None or (chat_id not in self._users and chat_id not in self._other_chats):
            raise _bad("chat not found")
        return chat_id

    def block(self, user_id: int) -> None:
        """The user blocks the bot: every send/edit to their chat gets 403 until unblock."""
        self._blocked.add(user_id)

    def unblock(self, user_id: int) -> None:
        self._blocked.discard(user_id)

    # -- messages -------------------------------------------------------------------------------

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def mark(self) -> int:
        """A point in time for ``wait_for_bot_message(..., since=mark)``."""
        return self._seq

    def _record_event(self, chat: _Chat, kind: str, record: _MessageRecord, seq: int) -> None:
        snapshot = copy.deepcopy(record.message)
        snapshot["_deleted"] = record.deleted
        chat.events.append(_Event(seq, kind, record.outgoing, snapshot))
        chat.version += 1
        self._notify()

    def _store_message(self, chat_id: int, outgoing: bool, content: JSON) -> JSON:
        chat = self._chats.setdefault(chat_id, _Chat(chat_id))
        message: JSON = {
            "message_id": chat.next_message_id,
            "from": dict(self.bot_user) if outgoing else dict(self._users[chat_id]),
            "chat": self._chat_object(chat_id),
            "date": int(time.time()),
        }
        message.update({k: v for k, v in content.items() if v is not None and v != []})
        chat.next_message_id += 1
        seq = self._next_seq()
        record = _MessageRecord(message, outgoing, seq)
        chat.records[message["message_id"]] = record
        self._record_event(chat, "sent", record, seq)
        return copy.deepcopy(message)

    def _record(self, chat_id: int, message_id: Any) -> _MessageRecord | None:
        chat = self._chats.get(chat_id)
        mid = _as_int(message_id)
        if chat is None or mid is None:
            return None
        return chat.records.get(mid)

    def transcript(self, chat_id: int) -> list[JSON]:
        """All messages of the chat in order (user's and bot's), as Telegram Message dicts.

        Each carries an extra ``"_deleted": bool``; bot messages show their latest edit.
        """
        chat = self._chats.get(chat_id)
        if chat is None:
            return []
        result = []
        for record in chat.records.values():
            message = copy.deepcopy(record.message)
            message["_deleted"] = record.deleted
            result.append(message)
        return result

    def bot_messages(self, chat_id: int, include_deleted: bool = True) -> list[JSON]:
        return [
            m
            for m in self.transcript(chat_id)
            if m["from"]["is_bot"] and (include_deleted or not m["_deleted"])
        ]

    def last_bot_message(self, chat_id: int) -> JSON | None:
        messages = self.bot_messages(chat_id, include_deleted=False)
        return messages[-1] if messages else None

    def reply_keyboard(self, chat_id: int) -> JSON | None:
        """The custom reply keyboard the bot currently shows in the chat, if any."""
        chat = self._chats.get(chat_id)
        return copy.deepcopy(chat.reply_keyboard) if chat else None

    def format_transcript(self, chat_id: int) -> str:
        lines = []
        for m in self.transcript(chat_id):
            who = "bot " if m["from"]["is_bot"] else "user"
            body = m.get("text") or m.get("caption") or _kind_of(m)
            flags = (" (edited)" if "edit_date" in m else "") + (
                " (deleted)" if m["_deleted"] else ""
            )
            buttons = [
                f"[{b.get('text')}|{b.get('callback_data') or b.get('url') or ''}]"
                for b in iter_buttons(m)
            ]
            lines.append(f"  #{m['message_id']} {who}: {body!r}{flags} {' '.join(buttons)}")
        return "\n".join(lines) or "  (empty)"

    async def wait_for_bot_message(
        self,
        chat_id: int,
        predicate: Callable[[JSON], bool] | None = None,
        timeout: float = 5.0,  # noqa: ASYNC109
        after_message_id: int | None = None,
        *,
        contains: str | None = None,
        since: int | None = None,
    ) -> JSON:
        """The first bot message sent or edited after a point that satisfies ``predicate``.

        The point is the arrival of message ``after_message_id`` (e.g. the user's message from
        ``send_text``), or ``since`` (from :meth:`mark`); with neither, the chat's beginning.
        ``contains`` also requires that substring in the text/caption. The result is the message
        as it was at that send/edit (plus ``"_deleted"``). A predicate raising KeyError, TypeError
        or IndexError counts as no match. Raises TimeoutError listing the transcript.
        """
        start = since if since is not None else 0
        if after_message_id is not None:
            chat = self._chats.get(chat_id)
            if chat is not None:
                earlier = [r.seq for mid, r in chat.records.items() if mid <= after_message_id]
                start = max([start, *earlier])

        def matches(message: JSON) -> bool:
            if contains is not None and contains not in (
                message.get("text") or message.get("caption") or ""
            ):
                return False
            try:
                return predicate is None or bool(predicate(message))
            except (KeyError, TypeError, IndexError):
                return False

        def check() -> JSON | None:
            chat = self._chats.get(chat_id)
            for event in chat.events if chat else []:
                wanted = event.outgoing and event.kind in ("sent", "edited")
                if wanted and event.seq > start and matches(event.snapshot):
                    return copy.deepcopy(event.snapshot)
            return None

        found = await self._wait_until(check, timeout)
        if found is None:
            raise TimeoutError(
                f"no matching bot message in chat {chat_id} within {timeout}s; transcript:\n"
                + self.format_transcript(chat_id)
            )
        return found

    # -- injecting updates ----------------------------------------------------------------------

    def _register_from(self, obj: Any) -> None:
        if isinstance(obj, dict):
            sender = obj.get("from")
            if isinstance(sender, dict) and not sender.get("is_bot") and "id" in sender:
                if sender["id"] not in self._users:
                    self._users[sender["id"]] = dict(sender)
                self._chats.setdefault(sender["id"], _Chat(sender["id"]))
            chat = obj.get("chat")
            group = isinstance(chat, dict) and chat.get("type") not in (None, "private")
            if group and isinstance(chat, dict) and isinstance(chat.get("id"), int):
                self._other_chats.setdefault(chat["id"], dict(chat))  # a group seen in a raw update
                self._chats.setdefault(chat["id"], _Chat(chat["id"]))
            for value in obj.values():
                if isinstance(value, dict):
                    self._register_from(value)

    def _push(self, update: JSON) -> JSON:
        if "update_id" in update:
            uid = int(update["update_id"])
            if uid in self._updates:
                raise ValueError(f"update_id {uid} was already used; use redeliver()")
            self._update_ids = itertools.count(max(uid + 1, next(self._update_ids)))
        else:
            uid = next(self._update_ids)
            update = {"update_id": uid, **update}
        self._register_from(update)
        self._updates[uid] = update
        self._pending.append(uid)
        self._pending.sort()
        self._notify()
        return copy.deepcopy(update)

    def _user_message(self, user_id: int, content: JSON) -> JSON:
        self.user(user_id)
        message = self._store_message(user_id, outgoing=False, content=content)
        return self._push({"message": message})

    def send_text(self, user_id: int, text: str, *, reply_to_message_id: int | None = None) -> JSON:
        """The user sends ``text``; a leading "/command" gets a bot_command entity."""
        content: JSON = {"text": text}
        m = _BOT_COMMAND_RE.match(text)
        if m is not None:
            content["entities"] = [{"type": "bot_command", "offset": 0, "length": m.end()}]
        if reply_to_message_id is not None:
            replied = self._record(user_id, reply_to_message_id)
            if replied is not None:
                content["reply_to_message"] = copy.deepcopy(replied.message)
        return self._user_message(user_id, content)

    def _new_file(
        self,
        kind: str,
        data: bytes,
        filename: str | None = None,
        url: str | None = None,
        mime_type: str | None = None,
    ) -> StoredFile:
        n = next(self._file_ids)
        digest = hashlib.sha1(data or (url or "").encode()).hexdigest()[:12]
        stored = StoredFile(
            file_id=f"{kind[:2].upper()}ACAgI{n:06d}{digest}",
            file_unique_id=f"AQAD{n:04d}{digest[:8]}",
            kind=kind,
            data=data,
            filename=filename,
            url=url,
            mime_type=mime_type or (mimetypes.guess_type(filename)[0] if filename else None),
        )
        if kind in ("photo", "sticker"):
            stored.width, stored.height = (512, 512) if kind == "sticker" else _image_size(data)
        self.files[stored.file_id] = stored
        return stored

    def send_sticker(self, user_id: int, emoji: str = "👍") -> JSON:
        stored = self._new_file("sticker", b"RIFF-sticker", filename="sticker.webp")
        sticker = {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "type": "regular",
            "width": 512,
            "height": 512,
            "is_animated": False,
            "is_video": False,
            "emoji": emoji,
            "set_name": "ShuxiangSamples",
            "file_size": stored.size,
        }
        return self._user_message(user_id, {"sticker": sticker})

    def send_photo_from_user(
        self, user_id: int, caption: str | None = None, data: bytes | None = None
    ) -> JSON:
        stored = self._new_file("photo", data or SAMPLE_PNG, filename="photo.png")
        return self._user_message(user_id, {"photo": _photo_sizes(stored), "caption": caption})

    def send_document_from_user(
        self,
        user_id: int,
        data: bytes,
        filename: str = "file.txt",
        caption: str | None = None,
        mime_type: str | None = None,
    ) -> JSON:
        stored = self._new_file("document", data, filename=filename, mime_type=mime_type)
        return self._user_message(user_id, {"document": _document(stored), "caption": caption})

    def press_button(
        self, user_id: int, message_id: int, callback_data: str, *, check: bool = True
    ) -> JSON:
        """The user presses an inline button with ``callback_data`` on bot message ``message_id``.

        With ``check`` (default) the message must exist, not be deleted, and currently carry
        a button with that callback_data (as a real client could only press those).
        """
        self.user(user_id)
        record = self._record(user_id, message_id)
        if check:
            if record is None or record.deleted:
                raise ValueError(f"no message {message_id} in chat {user_id} to press a button on")
            datas = [b.get("callback_data") for b in iter_buttons(record.message)]
            if callback_data not in datas:
                raise ValueError(
                    f"message {message_id} has no button with callback_data {callback_data!r}; "
                    f"it has {datas}"
                )
        cq_id = f"{self.bot_user['id'] % 100000}{next(self._callback_ids):012d}"
        self._callbacks[cq_id] = _CallbackRecord(cq_id, user_id, user_id, message_id, callback_data)
        callback: JSON = {
            "id": cq_id,
            "from": dict(self._users[user_id]),
            "chat_instance": _chat_instance(self.bot_user["id"], user_id),
            "data": callback_data,
        }
        if record is not None:
            callback["message"] = copy.deepcopy(record.message)
        return self._push({"callback_query": callback})

    def press_button_text(self, user_id: int, message_id: int, text: str) -> JSON:
        """Press the callback button whose label contains ``text``."""
        record = self._record(user_id, message_id)
        for button in iter_buttons(record.message) if record else []:
            if text in button.get("text", "") and "callback_data" in button:
                return self.press_button(user_id, message_id, button["callback_data"])
        raise ValueError(f"message {message_id} in chat {user_id} has no button labelled {text!r}")

    def inject_raw_update(self, update: JSON) -> JSON:
        """Queue any update dict; ``update_id`` is assigned unless given (must be new)."""
        return self._push(copy.deepcopy(update))

    def redeliver(self, update_id: int) -> JSON:
        """Deliver an already delivered (even confirmed) update again, with the same id."""
        if update_id not in self._updates:
            raise KeyError(f"unknown update_id {update_id}")
        if update_id not in self._forced:
            self._forced.append(update_id)
            self._forced_sent.discard(update_id)
        self._notify()
        return copy.deepcopy(self._updates[update_id])

    @property
    def pending_updates(self) -> list[JSON]:
        """Updates not yet confirmed by the bot."""
        ids = [*self._forced, *(u for u in self._pending if u not in self._forced)]
        return [copy.deepcopy(self._updates[u]) for u in ids]

    # -- callback answers, calls, idleness ------------------------------------------------------

    def callback_answer(self, callback_query_id: str) -> JSON | None:
        record = self._callbacks.get(callback_query_id)
        return dict(record.answer) if record and record.answer else None

    async def wait_for_callback_answer(
        self,
        callback_query_id: str,
        timeout: float = 5.0,  # noqa: ASYNC109
    ) -> JSON:
        """The bot's answerCallbackQuery params (``text``, ``show_alert``, ...) for that query."""
        answer = await self._wait_until(lambda: self.callback_answer(callback_query_id), timeout)
        if answer is None:
            raise TimeoutError(
                f"callback query {callback_query_id} was not answered within {timeout}s"
            )
        return answer

    def calls(self, method: str) -> list[JSON]:
        """Params of every request the bot made to ``method`` (case-insensitive), in order."""
        name = method.lower()
        return [copy.deepcopy(c.params) for c in self._calls if c.method == name]

    def all_calls(self) -> list[tuple[str, JSON]]:
        return [(c.method, copy.deepcopy(c.params)) for c in self._calls]

    def reset_calls(self) -> None:
        self._calls.clear()

    def _is_idle(self, quiet: float) -> bool:
        return (
            not self._pending
            and not self._forced
            and self._inflight == 0
            and time.monotonic() - self._last_activity >= quiet
        )

    async def wait_idle(
        self,
        timeout: float = 5.0,  # noqa: ASYNC109
        quiet: float = 0.1,
    ) -> None:
        """Wait until all updates are confirmed and no request has been in flight for ``quiet``.

        Confirmation happens on the bot's *next* getUpdates; a handler still running without
        calling the API is invisible, so prefer wait_for_bot_message for the bot's replies.
        """
        done = await self._wait_until(lambda: True if self._is_idle(quiet) else None, timeout, 0.02)
        if done is None:
            raise TimeoutError(
                f"emulator not idle after {timeout}s: {len(self._pending)} unconfirmed updates, "
                f"{self._inflight} requests in flight"
            )

    def commands(self, scope: JSON | None = None, language_code: str = "") -> list[JSON]:
        return copy.deepcopy(self._commands.get(_scope_key(scope, language_code), []))

    @property
    def webhook(self) -> JSON | None:
        return copy.deepcopy(self._webhook)

    def file(self, file_id: str) -> StoredFile:
        return self.files[file_id]

    # -- HTTP: the Bot API ----------------------------------------------------------------------

    def _add_routes(self, app: web.Application) -> None:
        app.router.add_route("*", "/bot{token}/{method}", self._handle_api)
        app.router.add_get("/file/bot{token}/{path:.+}", self._handle_file_download)
        app.router.add_post("/_control/users", self._c_users)
        app.router.add_get("/_control/users", self._c_list_users)
        app.router.add_post("/_control/send", self._c_send)
        app.router.add_post("/_control/press", self._c_press)
        app.router.add_post("/_control/raw", self._c_raw)
        app.router.add_get("/_control/transcript/{chat_id}", self._c_transcript)
        app.router.add_get("/_control/wait/{chat_id}", self._c_wait)
        app.router.add_get("/_control/callback/{callback_id}", self._c_callback)
        app.router.add_post("/_control/faults", self._c_faults)
        app.router.add_delete("/_control/faults", self._c_clear_faults)
        app.router.add_post("/_control/block", self._c_block)
        app.router.add_get("/_control/calls/{method}", self._c_calls)
        app.router.add_get("/_control/file/{file_id}", self._c_file)

    async def _read_params(self, request: web.Request) -> tuple[JSON, dict[str, web.FileField]]:
        raw: dict[str, Any] = dict(request.query)
        uploads: dict[str, web.FileField] = {}
        if request.method == "POST" and request.can_read_body:
            if request.content_type == "application/json":
                try:
                    body = await request.json()
                except ValueError:
                    raise _bad("can't parse JSON object") from None
                if isinstance(body, dict):
                    raw.update(body)
            else:
                form = await request.post()
                for key, value in form.items():
                    if isinstance(value, web.FileField):
                        uploads[key] = value
                    else:
                        raw[key] = value
        return {k: _coerce(k, v) for k, v in raw.items()}, uploads

    async def _handle_api(self, request: web.Request) -> web.Response:
        if not secrets.compare_digest(request.match_info["token"], self.token):
            return ApiError(401, "Unauthorized").response()
        name = request.match_info["method"].lower()
        counted = name != "getupdates"
        if counted:
            self._inflight += 1
            self._touch()
        try:
            params, uploads = await self._read_params(request)
            result = await self._call_method(name, params, uploads)
            return web.json_response({"ok": True, "result": result}, dumps=_dumps)
        except ApiError as exc:
            return exc.response()
        finally:
            if counted:
                self._inflight -= 1
                self._touch()
                self._notify()

    async def _call_method(
        self, name: str, params: JSON, uploads: dict[str, web.FileField] | None = None
    ) -> Any:
        logged = dict(params)
        for key, upload in (uploads or {}).items():
            logged[key] = f"<upload {upload.filename}>"
        self._calls.append(_Call(name, logged))
        log.debug("bot api call %s", name)
        handler = self._methods.get(name)
        if handler is None:
            raise ApiError(404, "Not Found")
        fault = self.faults.take(name, params)
        if fault is not None:
            if fault.kind == "slow":
                await asyncio.sleep(fault.delay)
            elif fault.kind == "429":
                raise ApiError(
                    429,
                    f"Too Many Requests: retry after {fault.retry_after}",
                    {"retry_after": fault.retry_after},
                )
            elif fault.kind == "403":
                raise ApiError(403, "Forbidden: bot was blocked by the user")
            elif fault.kind == "5xx":
                raise ApiError(502, "Bad Gateway")
            else:
                raise _bad(fault.description or "injected fault")
        if name in _CHAT_WRITE_METHODS and _as_int(params.get("chat_id")) in self._blocked:
            raise ApiError(403, "Forbidden: bot was blocked by the user")
        result = handler(params, uploads or {})
        if asyncio.iscoroutine(result):
            result = await result
        return result

    async def _handle_file_download(self, request: web.Request) -> web.StreamResponse:
        if not secrets.compare_digest(request.match_info["token"], self.token):
            return ApiError(401, "Unauthorized").response()
        path = request.match_info["path"]
        for stored in self.files.values():
            if stored.file_path == path:
                return web.Response(body=stored.data, content_type=stored.mime_type or None)
        return ApiError(404, "Not Found").response()

    # -- Bot API methods ------------------------------------------------------------------------

    def _m_true(self, params: JSON, uploads: dict[str, web.FileField]) -> bool:
        return True

    def _m_chat_ok(self, params: JSON, uploads: dict[str, web.FileField]) -> bool:
        self._known_chat(params)
        return True

    def _m_get_me(self, params: JSON, uploads: dict[str, web.FileField]) -> JSON:
        return {
            **self.bot_user,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }

    def _confirm(self, offset: int) -> None:
        self._touch()
        if offset > 0:
            self._pending = [u for u in self._pending if u >= offset]
            confirmed = [u for u in self._forced if u in self._forced_sent and u < offset]
        else:  # negative: keep only the last -offset updates
            self._pending = self._pending[offset:] if offset < 0 else self._pending
            confirmed = list(self._forced_sent)
        for u in confirmed:
            self._forced.remove(u)
            self._forced_sent.discard(u)
        self._notify()

    def _deliverable(self, limit: int) -> list[int]:
        ids = [*self._forced, *(u for u in self._pending if u not in self._forced)]
        return ids[:limit]

    async def _m_get_updates(self, params: JSON, uploads: dict[str, web.FileField]) -> list[JSON]:
        if self._webhook is not None:
            raise ApiError(409, CONFLICT_WEBHOOK)
        offset = _as_int(params.get("offset")) or 0
        limit = min(max(_as_int(params.get("limit")) or 100, 1), 100)
        timeout = max(_as_int(params.get("timeout")) or 0, 0)
        if offset:
            self._confirm(offset)
        if self._poller is not None:
            self._poller.conflict = CONFLICT_POLL
        poll = _Poll()
        self._poller = poll
        self._notify()
        try:
            ids = await self._wait_until(
                lambda: poll.conflict or self._deliverable(limit) or None, float(timeout)
            )
        finally:
            if self._poller is poll:
                self._poller = None
        if poll.conflict:
            raise ApiError(409, poll.conflict)
        ids = self._deliverable(limit)  # re-read: state may have changed after the wake-up
        self._forced_sent.update(u for u in ids if u in self._forced)
        return [copy.deepcopy(self._updates[u]) for u in ids]

    def _check_markup(self, markup: Any, *, inline_only: bool = False) -> tuple[JSON | None, Any]:
        """Validate reply_markup; return (inline markup to echo, reply-keyboard change)."""
        keep = object()
        if markup is None:
            return None, keep
        if not isinstance(markup, dict):
            raise _bad("can't parse reply keyboard markup JSON object")
        if "inline_keyboard" in markup:
            rows = markup["inline_keyboard"]
            if not isinstance(rows, list) or not all(isinstance(r, list) for r in rows):
                raise _bad(
                    'field "inline_keyboard" of the InlineKeyboardMarkup should be an Array of '
                    "Arrays"
                )
            for row in rows:
                for button in row:
                    if not isinstance(button, dict) or not isinstance(button.get("text"), str):
                        raise _bad("can't parse inline keyboard button: Text must be a String")
                    if not _BUTTON_ACTIONS & button.keys():
                        raise _bad("text buttons are unallowed in the inline keyboard")
                    data = button.get("callback_data")
                    if data is not None and not 1 <= len(str(data).encode("utf-8")) <= 64:
                        raise _bad("BUTTON_DATA_INVALID")
                    url = button.get("url")
                    if url is not None and not re.match(r"(https?|tg)://\S+$", str(url)):
                        raise _bad("BUTTON_URL_INVALID")
            if not any(rows):
                return None, keep
            return {"inline_keyboard": rows}, keep
        if inline_only:
            raise _bad("inline keyboard expected")
        if "keyboard" in markup:
            rows = markup["keyboard"]
            if not isinstance(rows, list) or not all(isinstance(r, list) for r in rows):
                raise _bad(
                    'field "keyboard" of the ReplyKeyboardMarkup should be an Array of Arrays'
                )
            return None, copy.deepcopy(markup)
        if markup.get("remove_keyboard"):
            return None, None
        if "force_reply" in markup:
            return None, keep
        raise _bad("can't parse reply keyboard markup JSON object")

    def _reply_to(self, chat_id: int, params: JSON) -> JSON | None:
        reply = params.get("reply_parameters")
        target = reply.get("message_id") if isinstance(reply, dict) else None
        target = target if target is not None else params.get("reply_to_message_id")
        if target is None:
            return None
        record = self._record(chat_id, target)
        if record is None or record.deleted:
            allow = isinstance(reply, dict) and reply.get("allow_sending_without_reply")
            if allow or params.get("allow_sending_without_reply"):
                return None
            raise _bad("message to be replied not found")
        replied = copy.deepcopy(record.message)
        replied.pop("reply_to_message", None)
        return replied

    def _finish_send(self, chat_id: int, params: JSON, content: JSON) -> JSON:
        markup, keyboard = self._check_markup(params.get("reply_markup"))
        content["reply_to_message"] = self._reply_to(chat_id, params)
        content["reply_markup"] = markup
        message = self._store_message(chat_id, outgoing=True, content=content)
        if keyboard is None or isinstance(keyboard, dict):
            self._chats[chat_id].reply_keyboard = keyboard
        return message

    @staticmethod
    def _message_text(params: JSON) -> tuple[str, list[JSON]]:
        """The text and entities of sendMessage/editMessageText, checked as Telegram does."""
        raw = params.get("text")
        text, entities = format_text(
            raw if isinstance(raw, str) else "", params.get("parse_mode"), params.get("entities")
        )
        if not text.strip():
            raise _bad("message text is empty")
        if utf16_len(text) > MAX_TEXT:
            raise _bad("message is too long")
        return text, entities

    def _m_send_message(self, params: JSON, uploads: dict[str, web.FileField]) -> JSON:
        chat_id = self._known_chat(params)
        text, entities = self._message_text(params)
        return self._finish_send(chat_id, params, {"text": text, "entities": entities})

    def _caption(self, params: JSON) -> tuple[str | None, list[JSON]]:
        raw = params.get("caption")
        if not isinstance(raw, str) or raw == "":
            return None, []
        caption, entities = format_text(
            raw, params.get("parse_mode"), params.get("caption_entities")
        )
        if utf16_len(caption) > MAX_CAPTION:
            raise _bad("message caption is too long")
        return caption, entities

    async def _input_file(
        self, kind: str, params: JSON, uploads: dict[str, web.FileField]
    ) -> StoredFile:
        value = params.get(kind)
        upload: web.FileField | None = uploads.get(kind)
        if isinstance(value, str) and value.startswith("attach://"):
            upload = uploads.get(value[len("attach://") :])
        if upload is not None:
            data = upload.file.read()
            if not data:
                raise _bad("file must be non-empty")
            content_type = upload.content_type
            mime = None if content_type == "application/octet-stream" else content_type
            return self._new_file(kind, data, filename=upload.filename, mime_type=mime)
        if not isinstance(value, str) or not value:
            raise _bad(f"there is no {kind} in the request")
        if value in self.files:
            return self.files[value]
        if re.match(r"https?://", value):
            name = value.rsplit("/", 1)[-1] or None
            return self._new_file(kind, b"", filename=name, url=value)
        raise _bad("wrong file identifier/HTTP URL specified")

    async def _m_send_photo(self, params: JSON, uploads: dict[str, web.FileField]) -> JSON:
        chat_id = self._known_chat(params)
        stored = await self._input_file("photo", params, uploads)
        caption, entities = self._caption(params)
        content = {"photo": _photo_sizes(stored), "caption": caption, "caption_entities": entities}
        return self._finish_send(chat_id, params, content)

    async def _m_send_document(self, params: JSON, uploads: dict[str, web.FileField]) -> JSON:
        chat_id = self._known_chat(params)
        stored = await self._input_file("document", params, uploads)
        caption, entities = self._caption(params)
        content = {"document": _document(stored), "caption": caption, "caption_entities": entities}
        return self._finish_send(chat_id, params, content)

    def _editable(self, params: JSON) -> tuple[int, _MessageRecord]:
        if params.get("inline_message_id"):
            raise _bad("message to edit not found")
        chat_id = self._known_chat(params)
        record = self._record(chat_id, params.get("message_id"))
        if record is None or record.deleted:
            raise _bad("message to edit not found")
        if not record.outgoing:
            raise _bad("message can't be edited")
        return chat_id, record

    def _apply_edit(self, chat_id: int, record: _MessageRecord, changes: JSON) -> JSON:
        message = record.message
        before = {k: message.get(k) for k in changes}
        after = {k: (v if v not in ([], None) else None) for k, v in changes.items()}
        if before == after:
            raise ApiError(400, NOT_MODIFIED)
        for key, value in after.items():
            if value is None:
                message.pop(key, None)
            else:
                message[key] = value
        message["edit_date"] = int(time.time())
        self._record_event(self._chats[chat_id], "edited", record, self._next_seq())
        return copy.deepcopy(message)

    def _m_edit_text(self, params: JSON, uploads: dict[str, web.FileField]) -> JSON:
        chat_id, record = self._editable(params)
        if "text" not in record.message:
            raise _bad("there is no text in the message to edit")
        text, entities = self._message_text(params)
        # Like Telegram, an edit without reply_markup removes the inline keyboard.
        markup, _ = self._check_markup(params.get("reply_markup"), inline_only=True)
        changes = {"text": text, "entities": entities, "reply_markup": markup}
        return self._apply_edit(chat_id, record, changes)

    def _m_edit_caption(self, params: JSON, uploads: dict[str, web.FileField]) -> JSON:
        chat_id, record = self._editable(params)
        if "text" in record.message:
            raise _bad("there is no caption in the message to edit")
        caption, entities = self._caption(params)
        markup, _ = self._check_markup(params.get("reply_markup"), inline_only=True)
        changes = {"caption": caption, "caption_entities": entities, "reply_markup": markup}
        return self._apply_edit(chat_id, record, changes)

    def _m_edit_markup(self, params: JSON, uploads: dict[str, web.FileField]) -> JSON:
        chat_id, record = self._editable(params)
        markup, _ = self._check_markup(params.get("reply_markup"), inline_only=True)
        return self._apply_edit(chat_id, record, {"reply_markup": markup})

    def _delete(self, chat_id: int, message_id: Any) -> bool:
        record = self._record(chat_id, message_id)
        if record is None or record.deleted:
            return False
        record.deleted = True
        self._record_event(self._chats[chat_id], "deleted", record, self._next_seq())
        return True

    def _m_delete_message(self, params: JSON, uploads: dict[str, web.FileField]) -> bool:
        chat_id = self._known_chat(params)
        if not self._delete(chat_id, params.get("message_id")):
            raise _bad("message to delete not found")
        return True

    def _m_delete_messages(self, params: JSON, uploads: dict[str, web.FileField]) -> bool:
        chat_id = self._known_chat(params)
        ids = params.get("message_ids")
        if not isinstance(ids, list) or not ids:
            raise _bad("message identifiers are not specified")
        deleted = [self._delete(chat_id, mid) for mid in ids]
        return any(deleted)

    def _m_answer_callback(self, params: JSON, uploads: dict[str, web.FileField]) -> bool:
        record = self._callbacks.get(str(params.get("callback_query_id", "")))
        if record is None or record.answer is not None:
            raise ApiError(400, QUERY_INVALID)
        text = params.get("text")
        if isinstance(text, str) and len(text) > 200:
            raise _bad("MESSAGE_TOO_LONG")
        record.answer = {
            "callback_query_id": record.callback_query_id,
            "text": text,
            "show_alert": bool(params.get("show_alert", False)),
            "url": params.get("url"),
            "cache_time": params.get("cache_time", 0),
        }
        self._notify()
        return True

    def _m_set_commands(self, params: JSON, uploads: dict[str, web.FileField]) -> bool:
        commands = params.get("commands")
        if not isinstance(commands, list):
            raise _bad("can't parse commands JSON object")
        if len(commands) > 100:
            raise _bad("BOT_COMMANDS_TOO_MUCH")
        clean = []
        for command in commands:
            name = command.get("command", "") if isinstance(command, dict) else ""
            description = command.get("description", "") if isinstance(command, dict) else ""
            if not re.fullmatch(r"[a-z0-9_]{1,32}", str(name)):
                raise _bad("BOT_COMMAND_INVALID")
            if not 1 <= len(str(description)) <= 256:
                raise _bad(
                    "command description is empty"
                    if not description
                    else "BOT_COMMAND_DESCRIPTION_INVALID"
                )
            clean.append({"command": name, "description": description})
        key = _scope_key(params.get("scope"), params.get("language_code"))
        self._commands[key] = clean
        return True

    def _m_get_commands(self, params: JSON, uploads: dict[str, web.FileField]) -> list[JSON]:
        return self.commands(params.get("scope"), params.get("language_code") or "")

    def _m_delete_commands(self, params: JSON, uploads: dict[str, web.FileField]) -> bool:
        self._commands.pop(_scope_key(params.get("scope"), params.get("language_code")), None)
        return True

    def _m_set_webhook(self, params: JSON, uploads: dict[str, web.FileField]) -> bool:
        url = str(params.get("url") or "")
        if not url:
            return self._m_delete_webhook(params, uploads)
        if not re.match(r"https?://\S+$", url):
            raise _bad("bad webhook: An HTTPS URL must be provided for webhook")
        secret = params.get("secret_token")
        if secret is not None and not re.fullmatch(r"[A-Za-z0-9_-]{1,256}", str(secret)):
            raise _bad("secret token contains unallowed characters")
        if params.get("drop_pending_updates"):
            self._pending.clear()
            self._forced.clear()
        self._webhook = {
            "url": url,
            "secret_token": secret,
            "max_connections": params.get("max_connections") or 40,
            "allowed_updates": params.get("allowed_updates"),
        }
        if self._poller is not None:
            self._poller.conflict = "Conflict: terminated by setWebhook request"
        self._notify()
        return True

    def _m_delete_webhook(self, params: JSON, uploads: dict[str, web.FileField]) -> bool:
        self._webhook = None
        if params.get("drop_pending_updates"):
            self._pending.clear()
            self._forced.clear()
        self._notify()
        return True

    def _m_webhook_info(self, params: JSON, uploads: dict[str, web.FileField]) -> JSON:
        info: JSON = {
            "url": self._webhook["url"] if self._webhook else "",
            "has_custom_certificate": False,
            "pending_update_count": len(self._pending) + len(self._forced),
        }
        if self._webhook:
            info["max_connections"] = self._webhook["max_connections"]
            if self._webhook.get("allowed_updates"):
                info["allowed_updates"] = self._webhook["allowed_updates"]
            if self.webhook_errors:
                info["last_error_date"] = self.webhook_errors[-1]["date"]
                info["last_error_message"] = self.webhook_errors[-1]["message"]
        return info

    def _m_set_menu_button(self, params: JSON, uploads: dict[str, web.FileField]) -> bool:
        chat_id = None
        if params.get("chat_id") is not None:
            chat_id = self._known_chat(params)
        button = params.get("menu_button") or {"type": "default"}
        if not isinstance(button, dict) or button.get("type") not in (
            "default",
            "commands",
            "web_app",
        ):
            raise _bad("can't parse menu button JSON object")
        self._menu_buttons[chat_id] = button
        return True

    def _m_get_menu_button(self, params: JSON, uploads: dict[str, web.FileField]) -> JSON:
        chat_id = self._known_chat(params) if params.get("chat_id") is not None else None
        return dict(
            self._menu_buttons.get(chat_id) or self._menu_buttons.get(None) or {"type": "default"}
        )

    def _m_get_chat(self, params: JSON, uploads: dict[str, web.FileField]) -> JSON:
        chat_id = self._known_chat(params)
        return {
            **self._chat_object(chat_id),
            "accent_color_id": 0,
            "max_reaction_count": 11,
            "accepted_gift_types": {
                "unlimited_gifts": False,
                "limited_gifts": False,
                "unique_gifts": False,
                "premium_subscription": False,
                "gifts_from_channels": False,
            },
        }

    def _m_get_file(self, params: JSON, uploads: dict[str, web.FileField]) -> JSON:
        stored = self.files.get(str(params.get("file_id", "")))
        if stored is None:
            raise _bad("invalid file_id")
        return {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "file_size": stored.size,
            "file_path": stored.file_path,
        }

    # -- webhook delivery -----------------------------------------------------------------------

    async def _webhook_worker(self) -> None:
        while not self._closing:
            ready = await self._wait_until(
                lambda: True if self._webhook is not None and self._deliverable(1) else None,
                3600.0,
            )
            if ready is None or self._webhook is None:
                continue
            update_id = self._deliverable(1)[0]
            self._inflight += 1
            self._touch()
            try:
                await self._deliver(self._webhook, update_id)
            finally:
                self._inflight -= 1
                self._touch()
                if update_id in self._forced:
                    self._forced.remove(update_id)
                if update_id in self._pending:
                    self._pending.remove(update_id)
                self._notify()

    async def _deliver(self, hook: JSON, update_id: int) -> None:
        assert self._client is not None
        headers = {"Content-Type": "application/json"}
        if hook.get("secret_token"):
            headers["X-Telegram-Bot-Api-Secret-Token"] = str(hook["secret_token"])
        body = _dumps(self._updates[update_id])
        error = "no attempt"
        for attempt in range(self.webhook_retries + 1):
            if attempt:
                await asyncio.sleep(self.webhook_backoff * 2 ** (attempt - 1))
            try:
                async with self._client.post(hook["url"], data=body.encode(), headers=headers) as r:
                    if 200 <= r.status < 300:
                        await self._webhook_reply(r)
                        return
                    error = f"Wrong response from the webhook: {r.status} {r.reason}"
            except (ClientError, TimeoutError) as exc:
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
                params = {k: _coerce(k, v) for k, v in payload.items() if k != "method"}
                try:
                    await self._call_method(payload["method"].lower(), params)
                except ApiError as exc:
                    log.warning("webhook reply %s failed: %s", payload["method"], exc.description)

    # -- HTTP: control API ----------------------------------------------------------------------

    @staticmethod
    def _ok(result: Any, status: int = 200, **extra: Any) -> web.Response:
        return web.json_response(
            {"ok": True, "result": result, **extra}, status=status, dumps=_dumps
        )

    @staticmethod
    def _fail(status: int, description: str) -> web.Response:
        return web.json_response(
            {"ok": False, "error_code": status, "description": description},
            status=status,
            dumps=_dumps,
        )

    @staticmethod
    async def _json_body(request: web.Request) -> JSON:
        try:
            body = await request.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise web.HTTPBadRequest(text='{"ok":false,"description":"JSON object expected"}')
        return body

    async def _c_users(self, request: web.Request) -> web.Response:
        body = await self._json_body(request)
        user = self.add_user(
            int(body["user_id"]),
            first_name=str(body.get("first_name") or "同学"),
            username=body.get("username"),
            language_code=str(body.get("language_code") or "zh-hans"),
        )
        return self._ok(user)

    async def _c_list_users(self, request: web.Request) -> web.Response:
        return self._ok(self.users)

    async def _c_send(self, request: web.Request) -> web.Response:
        body = await self._json_body(request)
        user_id = int(body["user_id"])
        kind = body.get("kind", "text")
        if kind == "sticker":
            return self._ok(self.send_sticker(user_id, body.get("emoji") or "👍"))
        if kind == "photo":
            data = base64.b64decode(body["data"]) if body.get("data") else None
            return self._ok(self.send_photo_from_user(user_id, body.get("caption"), data))
        if kind == "document":
            data = base64.b64decode(body.get("data") or "")
            name = str(body.get("filename") or "file.txt")
            return self._ok(self.send_document_from_user(user_id, data, name, body.get("caption")))
        text = str(body.get("text") or "")
        if not text:
            return self._fail(400, "text is empty")
        return self._ok(self.send_text(user_id, text))

    async def _c_press(self, request: web.Request) -> web.Response:
        body = await self._json_body(request)
        try:
            update = self.press_button(
                int(body["user_id"]),
                int(body["message_id"]),
                str(body["callback_data"]),
                check=bool(body.get("check", True)),
            )
        except ValueError as exc:
            return self._fail(400, str(exc))
        return self._ok(update)

    async def _c_raw(self, request: web.Request) -> web.Response:
        body = await self._json_body(request)
        if "redeliver" in body:
            return self._ok(self.redeliver(int(body["redeliver"])))
        return self._ok(self.inject_raw_update(body))

    async def _c_transcript(self, request: web.Request) -> web.Response:
        """``?version=N&timeout=S`` long-polls until the chat's version differs from N."""
        chat_id = int(request.match_info["chat_id"])
        known = request.query.get("version")
        if known is not None:
            timeout = min(float(request.query.get("timeout", "25")), 60.0)

            def changed() -> bool | None:
                chat = self._chats.get(chat_id)
                return True if (chat.version if chat else 0) != int(known) else None

            await self._wait_until(changed, timeout)
        chat = self._chats.get(chat_id)
        return self._ok(
            self.transcript(chat_id),
            version=chat.version if chat else 0,
            reply_keyboard=self.reply_keyboard(chat_id),
        )

    async def _c_wait(self, request: web.Request) -> web.Response:
        chat_id = int(request.match_info["chat_id"])
        after = request.query.get("after")
        contains = request.query.get("contains")
        try:
            message = await self.wait_for_bot_message(
                chat_id,
                timeout=min(float(request.query.get("timeout", "5")), 60.0),
                after_message_id=int(after) if after else None,
                contains=contains,
            )
        except TimeoutError as exc:
            return self._fail(408, str(exc))
        return self._ok(message)

    async def _c_callback(self, request: web.Request) -> web.Response:
        callback_id = request.match_info["callback_id"]
        try:
            answer = await self.wait_for_callback_answer(
                callback_id, timeout=min(float(request.query.get("timeout", "0")), 60.0)
            )
        except TimeoutError as exc:
            return self._fail(408, str(exc))
        return self._ok(answer)

    async def _c_faults(self, request: web.Request) -> web.Response:
        body = await self._json_body(request)
        try:
            fault = self.faults.add(
                method=str(body.get("method", "*")),
                kind=str(body.get("kind", "429")),
                retry_after=int(body.get("retry_after", 1)),
                times=None if body.get("times", 1) is None else int(body.get("times", 1)),
                chat_id=None if body.get("chat_id") is None else int(body["chat_id"]),
                delay=float(body.get("delay", 1.0)),
                description=body.get("description"),
            )
        except ValueError as exc:
            return self._fail(400, str(exc))
        return self._ok(fault.to_json())

    async def _c_clear_faults(self, request: web.Request) -> web.Response:
        self.faults.clear()
        return self._ok(True)

    async def _c_block(self, request: web.Request) -> web.Response:
        body = await self._json_body(request)
        if body.get("blocked", True):
            self.block(int(body["user_id"]))
        else:
            self.unblock(int(body["user_id"]))
        return self._ok(True)

    async def _c_calls(self, request: web.Request) -> web.Response:
        return self._ok(self.calls(request.match_info["method"]))

    async def _c_file(self, request: web.Request) -> web.StreamResponse:
        stored = self.files.get(request.match_info["file_id"])
        if stored is None or not stored.data:
            return self._fail(404, "Not Found")
        return web.Response(
            body=stored.data, content_type=stored.mime_type or "application/octet-stream"
        )


@web.middleware
async def _control_errors(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Bad control-API input (missing/invalid fields) becomes a 400 JSON reply, not a 500."""
    try:
        return await handler(request)
    except (KeyError, ValueError, TypeError) as exc:
        if not request.path.startswith("/_control/"):
            raise
        return web.json_response(
            {"ok": False, "error_code": 400, "description": f"bad request: {exc!r}"}, status=400
        )


def _chat_instance(bot_id: int, chat_id: int) -> str:
    digest = hashlib.sha1(f"{bot_id}/{chat_id}".encode()).digest()
    return str(int.from_bytes(digest[:8], "big") // 2 - 2**62)


def _scope_key(scope: Any, language_code: Any) -> tuple[str, str]:
    scope = scope if isinstance(scope, dict) else {"type": "default"}
    return json.dumps(scope, sort_keys=True), str(language_code or "")


def _photo_sizes(stored: StoredFile) -> list[JSON]:
    return [
        {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "width": stored.width or 800,
            "height": stored.height or 600,
            "file_size": stored.size,
        }
    ]


def _document(stored: StoredFile) -> JSON:
    document: JSON = {
        "file_id": stored.file_id,
        "file_unique_id": stored.file_unique_id,
        "file_size": stored.size,
    }
    if stored.filename:
        document["file_name"] = stored.filename
    if stored.mime_type:
        document["mime_type"] = stored.mime_type
    return document


def _kind_of(message: JSON) -> str:
    for kind in ("photo", "document", "sticker"):
        if kind in message:
            return f"<{kind}>"
    return "<message>"


def iter_buttons(message: JSON) -> Iterable[JSON]:
    """Every inline button of a message dict, row by row."""
    for row in message.get("reply_markup", {}).get("inline_keyboard", []):
        yield from row
