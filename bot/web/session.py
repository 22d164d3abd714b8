"""The Bot API of the web channel: an aiogram session that, instead of calling Telegram, keeps
each call's effect in the web conversation (``store.ConversationStore``). A ``Bot`` built on it
is what the unchanged handlers and the sender talk to for a web reader: messages with their
HTML and inline buttons, edits in place, deletions, callback answers (toasts and alerts, handed
to the page that pressed), photos and documents, the reply keyboard and the command menu."""

from __future__ import annotations

import json
import mimetypes
from collections.abc import AsyncGenerator, Mapping
from typing import Any, cast

from aiogram import Bot
from aiogram.methods import TelegramMethod
from aiogram.methods.base import TelegramType
from aiogram.types import InputFile

from bot.speedups import SkipUnusedResults
from bot.web.html import plain
from bot.web.store import ConversationStore, NotFound, NotModified, Upload

# The web channel's own bot: ids and a token of the right shape that Telegram never issues to
# anyone (no network call is ever made with it).
WEB_BOT_ID = 1
WEB_BOT_TOKEN = f"{WEB_BOT_ID}:shuxiang-web-channel"
WEB_BOT_USER = {"id": WEB_BOT_ID, "is_bot": True, "first_name": "Shuxiang", "username": "shuxiang"}

# Methods with nothing to keep on a web page.
_NOTHING = {
    "sendchataction",
    "setchatmenubutton",
    "setmydescription",
    "setmyshortdescription",
    "setmyname",
    "deletewebhook",
    "close",
    "logout",
}


class ApiRefusal(Exception):
    def __init__(self, code: int, description: str) -> None:
        super().__init__(description)
        self.code = code
        self.description = description


def _chat(params: Mapping[str, Any]) -> int:
    """The conversation a chat id names (web chat ids are its id, negated: services/
    web_sessions.py); a Telegram chat's id names none."""
    try:
        chat_id = int(params.get("chat_id", ""))
    except (TypeError, ValueError):
        chat_id = 0
    if chat_id >= 0:
        raise ApiRefusal(400, "Bad Request: chat not found")
    return -chat_id


def _is_html(params: Mapping[str, Any]) -> bool:
    mode = params.get("parse_mode") or ""
    return str(getattr(mode, "value", mode)).upper() == "HTML"  # ParseMode is a str enum


class WebChannelSession(SkipUnusedResults):
    """See the module doc. ``answers`` holds each callback query's answer until the page that
    pressed the button takes it."""

    def __init__(self, store: ConversationStore) -> None:
        super().__init__()
        self.store = store
        self.answers: dict[str, dict[str, Any]] = {}
        self.default_commands: list[dict[str, Any]] = []

    async def make_request(
        self,
        bot: Bot,
        method: TelegramMethod[TelegramType],
        timeout: int | None = None,  # noqa: ASYNC109
    ) -> TelegramType:
        files: dict[str, InputFile] = {}
        params: dict[str, Any] = {}
        for key, value in method.model_dump(warnings=False).items():
            prepared = self.prepare_value(value, bot=bot, files=files, _dumps_json=False)
            if prepared is not None:
                params[key] = prepared
        name = method.__api_method__.lower()
        try:
            result = await self._call(bot, name, params, files)
            status, body = 200, {"ok": True, "result": result}
        except NotModified:
            status, body = 400, _error(400, "Bad Request: message is not modified")
        except NotFound:
            status, body = 400, _error(400, "Bad Request: message to edit not found")
        except ApiRefusal as exc:
            status, body = exc.code, _error(exc.code, exc.description)
        response = self.check_response(bot, method, status, json.dumps(body))
        return cast("TelegramType", response.result)

    async def _call(
        self, bot: Bot, name: str, params: dict[str, Any], files: dict[str, InputFile]
    ) -> Any:
        if name in _NOTHING:
            return True
        if name == "getme":
            return WEB_BOT_USER
        if name == "sendmessage":
            return await self._send(params, text=str(params.get("text", "")))
        if name in ("sendphoto", "senddocument"):
            kind = "photo" if name == "sendphoto" else "document"
            upload = await _upload(bot, params.get(kind), files, kind)
            return await self._send(
                params, text=str(params.get("caption", "")), media=kind, upload=upload
            )
        if name in ("editmessagetext", "editmessagecaption", "editmessagereplymarkup"):
            return await self._edit(name, params)
        if name == "deletemessage":
            await self.store.delete(_chat(params), int(params.get("message_id", 0)))
            return True
        if name == "answercallbackquery":
            query = str(params.get("callback_query_id", ""))
            if query not in self.answers or self.answers[query]:
                raise ApiRefusal(400, "Bad Request: query is too old and response timeout expired")
            self.answers[query] = {
                "text": params.get("text") or "",
                "alert": bool(params.get("show_alert")),
            }
            return True
        if name in ("setmycommands", "deletemycommands"):
            commands = list(params.get("commands") or [])
            scope = params.get("scope") or {}
            if scope.get("type") == "chat":
                await self.store.set_commands(_chat(scope), commands)
            elif scope.get("type", "default") == "default":
                self.default_commands = commands
            return True
        raise ApiRefusal(404, "Not Found")

    async def _send(
        self,
        params: dict[str, Any],
        *,
        text: str,
        media: str | None = None,
        upload: Upload | None = None,
    ) -> dict[str, Any]:
        conversation = _chat(params)
        markup = params.get("reply_markup")
        inline = markup if isinstance(markup, dict) and "inline_keyboard" in markup else None
        keyboard: dict[str, Any] | bool | None = False
        if isinstance(markup, dict) and "keyboard" in markup:
            keyboard = markup
        elif isinstance(markup, dict) and markup.get("remove_keyboard"):
            keyboard = None
        try:
            row = await self.store.add(
                conversation,
                outgoing=True,
                text=text,
                html=_is_html(params),
                markup=inline,
                keyboard=keyboard,
                upload=upload,
                media=media,
            )
        except NotFound:
            raise ApiRefusal(400, "Bad Request: chat not found") from None
        return _message(-conversation, row.id, int(row.date.timestamp()), text, params, inline)

    async def _edit(self, name: str, params: dict[str, Any]) -> dict[str, Any]:
        if params.get("inline_message_id"):
            raise NotFound(0)
        conversation = _chat(params)
        markup = params.get("reply_markup")
        inline = markup if isinstance(markup, dict) and "inline_keyboard" in markup else None
        text = None
        if name == "editmessagetext":
            text = str(params.get("text", ""))
        elif name == "editmessagecaption":
            text = str(params.get("caption", ""))
        row = await self.store.edit(
            conversation,
            int(params.get("message_id", 0)),
            text=text,
            html=_is_html(params) if text is not None else None,
            markup=inline,
        )
        return _message(-conversation, row.id, int(row.date.timestamp()), row.text, params, inline)

    async def stream_content(
        self,
        url: str,
        headers: Mapping[str, Any] | None = None,
        timeout: int = 30,  # noqa: ASYNC109
        chunk_size: int = 65536,
        raise_for_status: bool = True,
    ) -> AsyncGenerator[bytes, None]:
        raise FileNotFoundError(url)
        yield b""  # pragma: no cover

    async def close(self) -> None:
        return None


def _error(code: int, description: str) -> dict[str, Any]:
    return {"ok": False, "error_code": code, "description": description}


def _message(
    chat_id: int,
    message_id: int,
    date: int,
    text: str,
    params: Mapping[str, Any],
    markup: dict[str, Any] | None,
) -> dict[str, Any]:
    message: dict[str, Any] = {
        "message_id": message_id,
        "date": date,
        "chat": {"id": chat_id, "type": "private", "first_name": "-"},
        "from": WEB_BOT_USER,
        "text": plain(text) if _is_html(params) else text,
    }
    if markup:
        message["reply_markup"] = markup
    return message


async def _upload(bot: Bot, value: Any, files: dict[str, InputFile], kind: str) -> Upload:
    if not (isinstance(value, str) and value.startswith("attach://")):
        # A file id or URL from Telegram means nothing here.
        raise ApiRefusal(400, f"Bad Request: there is no {kind} in the request")
    file = files[value[len("attach://") :]]
    data = b"".join([chunk async for chunk in file.read(bot)])
    name = file.filename or kind
    mime = mimetypes.guess_type(name)[0] or "application/octet-stream"
    return Upload(name=name, mime=mime, data=data)
