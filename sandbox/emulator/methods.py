"""The Bot API methods the bot may call, each checked and answered as Telegram does, over the
message store; faults and blocked users are applied before a method runs."""

from __future__ import annotations

import asyncio
import copy
import json
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from sandbox.emulator.faults import FaultInjector
from sandbox.emulator.flood import FloodLimits
from sandbox.emulator.protocol import (
    BLOCKED,
    CONFLICT_POLL,
    CONFLICT_WEBHOOK,
    JSON,
    NOT_MODIFIED,
    QUERY_INVALID,
    ApiError,
    as_int,
    bad_request,
    too_many_requests,
)
from sandbox.emulator.store import (
    Call,
    MessageRecord,
    MessageStore,
    StoredFile,
    chat_key,
    document_of,
    photo_sizes,
)
from sandbox.emulator.text import caption_of, check_markup, message_text

__all__ = ["BotApiMethods"]

log = logging.getLogger("shuxiang.sandbox")

MethodHandler = Callable[[JSON, dict[str, web.FileField]], Any]

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


@dataclass
class _Poll:
    conflict: str | None = None


def _scope_key(scope: Any, language_code: Any) -> tuple[str, str]:
    scope = scope if isinstance(scope, dict) else {"type": "default"}
    return json.dumps(scope, sort_keys=True), str(language_code or "")


class BotApiMethods(MessageStore):
    """The ``_m_*`` handlers, one per Bot API method, and the dispatch that runs them."""

    def __init__(self, bot_user: JSON, *, first_update_id: int = 1) -> None:
        super().__init__(bot_user, first_update_id=first_update_id)
        self.faults = FaultInjector()
        self.flood = FloodLimits()
        self.webhook_errors: list[JSON] = []
        self._commands: dict[tuple[str, str], list[JSON]] = {}
        self._menu_buttons: dict[int | None, JSON] = {}
        self._webhook: JSON | None = None
        self._poller: _Poll | None = None
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

    def commands(self, scope: JSON | None = None, language_code: str = "") -> list[JSON]:
        return copy.deepcopy(self._commands.get(_scope_key(scope, language_code), []))

    @property
    def webhook(self) -> JSON | None:
        return copy.deepcopy(self._webhook)

    async def wait_polling(self, timeout: float = 5.0) -> None:  # noqa: ASYNC109
        """Wait until a getUpdates long poll is parked here, waiting for updates."""
        parked = await self._wait_until(lambda: True if self._poller else None, timeout)
        if parked is None:
            raise TimeoutError(f"no getUpdates long poll waiting within {timeout}s")

    async def _call_method(
        self, name: str, params: JSON, uploads: dict[str, web.FileField] | None = None
    ) -> Any:
        logged = dict(params)
        for key, upload in (uploads or {}).items():
            logged[key] = f"<upload {upload.filename}>"
        self._calls.append(Call(name, logged))
        log.debug("bot api call %s", name)
        handler = self._methods.get(name)
        if handler is None:
            raise ApiError(404, "Not Found")
        fault = self.faults.take(name, params)
        if fault is not None:
            await fault.before()
        chat_id = as_int(params.get("chat_id"))
        retry_after = self.flood.check(name, chat_id)
        if retry_after is not None:
            raise too_many_requests(retry_after)
        if name in _CHAT_WRITE_METHODS and chat_id in self._blocked:
            raise ApiError(403, BLOCKED)
        result = handler(params, uploads or {})
        if asyncio.iscoroutine(result):
            result = await result
        if fault is not None:
            await fault.after()
        return result

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

    async def _m_get_updates(self, params: JSON, uploads: dict[str, web.FileField]) -> list[JSON]:
        if self._webhook is not None:
            raise ApiError(409, CONFLICT_WEBHOOK)
        offset = as_int(params.get("offset")) or 0
        limit = min(max(as_int(params.get("limit")) or 100, 1), 100)
        timeout = max(as_int(params.get("timeout")) or 0, 0)
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
            raise bad_request("message to be replied not found")
        replied = copy.deepcopy(record.message)
        replied.pop("reply_to_message", None)
        return replied

    def _finish_send(self, chat_id: int, params: JSON, content: JSON) -> JSON:
        markup, keyboard = check_markup(params.get("reply_markup"))
        content["reply_to_message"] = self._reply_to(chat_id, params)
        content["reply_markup"] = markup
        message = self._store_message(chat_id, outgoing=True, content=content)
        if keyboard is None or isinstance(keyboard, dict):
            self._chats[chat_id].reply_keyboard = keyboard
        return message

    def _m_send_message(self, params: JSON, uploads: dict[str, web.FileField]) -> JSON:
        chat_id = self._known_chat(params)
        text, entities = message_text(params)
        return self._finish_send(chat_id, params, {"text": text, "entities": entities})

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
                raise bad_request("file must be non-empty")
            content_type = upload.content_type
            mime = None if content_type == "application/octet-stream" else content_type
            return self._new_file(kind, data, filename=upload.filename, mime_type=mime)
        if not isinstance(value, str) or not value:
            raise bad_request(f"there is no {kind} in the request")
        if value in self.files:
            return self.files[value]
        if re.match(r"https?://", value):
            name = value.rsplit("/", 1)[-1] or None
            return self._new_file(kind, b"", filename=name, url=value)
        raise bad_request("wrong file identifier/HTTP URL specified")

    async def _m_send_photo(self, params: JSON, uploads: dict[str, web.FileField]) -> JSON:
        chat_id = self._known_chat(params)
        stored = await self._input_file("photo", params, uploads)
        caption, entities = caption_of(params)
        content = {"photo": photo_sizes(stored), "caption": caption, "caption_entities": entities}
        return self._finish_send(chat_id, params, content)

    async def _m_send_document(self, params: JSON, uploads: dict[str, web.FileField]) -> JSON:
        chat_id = self._known_chat(params)
        stored = await self._input_file("document", params, uploads)
        caption, entities = caption_of(params)
        content = {
            "document": document_of(stored),
            "caption": caption,
            "caption_entities": entities,
        }
        return self._finish_send(chat_id, params, content)

    def _editable(self, params: JSON) -> tuple[int, MessageRecord]:
        if params.get("inline_message_id"):
            raise bad_request("message to edit not found")
        chat_id = self._known_chat(params)
        record = self._record(chat_id, params.get("message_id"))
        if record is None or record.deleted:
            raise bad_request("message to edit not found")
        if not record.outgoing:
            raise bad_request("message can't be edited")
        return chat_id, record

    def _apply_edit(self, chat_id: int, record: MessageRecord, changes: JSON) -> JSON:
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
            raise bad_request("there is no text in the message to edit")
        text, entities = message_text(params)
        # Like Telegram, an edit without reply_markup removes the inline keyboard.
        markup, _ = check_markup(params.get("reply_markup"), inline_only=True)
        changes = {"text": text, "entities": entities, "reply_markup": markup}
        return self._apply_edit(chat_id, record, changes)

    def _m_edit_caption(self, params: JSON, uploads: dict[str, web.FileField]) -> JSON:
        chat_id, record = self._editable(params)
        if "text" in record.message:
            raise bad_request("there is no caption in the message to edit")
        caption, entities = caption_of(params)
        markup, _ = check_markup(params.get("reply_markup"), inline_only=True)
        changes = {"caption": caption, "caption_entities": entities, "reply_markup": markup}
        return self._apply_edit(chat_id, record, changes)

    def _m_edit_markup(self, params: JSON, uploads: dict[str, web.FileField]) -> JSON:
        chat_id, record = self._editable(params)
        markup, _ = check_markup(params.get("reply_markup"), inline_only=True)
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
            raise bad_request("message to delete not found")
        return True

    def _m_delete_messages(self, params: JSON, uploads: dict[str, web.FileField]) -> bool:
        chat_id = self._known_chat(params)
        ids = params.get("message_ids")
        if not isinstance(ids, list) or not ids:
            raise bad_request("message identifiers are not specified")
        deleted = [self._delete(chat_id, mid) for mid in ids]
        return any(deleted)

    def _m_answer_callback(self, params: JSON, uploads: dict[str, web.FileField]) -> bool:
        record = self._callbacks.get(str(params.get("callback_query_id", "")))
        if record is None or record.answer is not None:
            raise ApiError(400, QUERY_INVALID)
        text = params.get("text")
        if isinstance(text, str) and len(text) > 200:
            raise bad_request("MESSAGE_TOO_LONG")
        record.answer = {
            "callback_query_id": record.callback_query_id,
            "text": text,
            "show_alert": bool(params.get("show_alert", False)),
            "url": params.get("url"),
            "cache_time": params.get("cache_time", 0),
        }
        self._notify(chat_key(record.chat_id))
        return True

    def _m_set_commands(self, params: JSON, uploads: dict[str, web.FileField]) -> bool:
        commands = params.get("commands")
        if not isinstance(commands, list):
            raise bad_request("can't parse commands JSON object")
        if len(commands) > 100:
            raise bad_request("BOT_COMMANDS_TOO_MUCH")
        clean = []
        for command in commands:
            name = command.get("command", "") if isinstance(command, dict) else ""
            description = command.get("description", "") if isinstance(command, dict) else ""
            if not re.fullmatch(r"[a-z0-9_]{1,32}", str(name)):
                raise bad_request("BOT_COMMAND_INVALID")
            if not 1 <= len(str(description)) <= 256:
                raise bad_request(
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
            raise bad_request("bad webhook: An HTTPS URL must be provided for webhook")
        secret = params.get("secret_token")
        if secret is not None and not re.fullmatch(r"[A-Za-z0-9_-]{1,256}", str(secret)):
            raise bad_request("secret token contains unallowed characters")
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
            raise bad_request("can't parse menu button JSON object")
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
            raise bad_request("invalid file_id")
        return {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "file_size": stored.size,
            "file_path": stored.file_path,
        }
