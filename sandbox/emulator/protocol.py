"""The Bot API wire format: Telegram's error envelope and texts, and how request fields arrive
(query string, JSON body or multipart form) coerced to the types the methods expect."""

from __future__ import annotations

import re
from typing import Any

import orjson
from aiohttp import web

JSON = dict[str, Any]

DEFAULT_BOT_ID = 7000000001
MAX_TEXT = 4096
MAX_CAPTION = 1024

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
        return web.json_response(self.envelope(), status=self.code, dumps=dumps)


class ConnectionDropped(Exception):
    """The emulator closes the connection without answering (an injected network fault)."""


def dumps(obj: Any) -> str:
    # orjson: in the benchmarks the emulator shares the cores with the bot it stands in for.
    return orjson.dumps(obj).decode()


def bad_request(description: str) -> ApiError:
    return ApiError(400, f"Bad Request: {description}")


BLOCKED = "Forbidden: bot was blocked by the user"


def too_many_requests(retry_after: int) -> ApiError:
    return ApiError(
        429, f"Too Many Requests: retry after {retry_after}", {"retry_after": retry_after}
    )


def as_int(value: Any) -> int | None:
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


def coerce(key: str, value: Any) -> Any:
    if not isinstance(value, str):
        return value
    if key in _JSON_FIELDS:
        try:
            return orjson.loads(value)
        except ValueError:
            if key == "reply_markup":
                raise bad_request("can't parse reply keyboard markup JSON object") from None
            raise bad_request(f"can't parse {key} JSON object") from None
    if key in _INT_FIELDS:
        number = as_int(value)
        return value if number is None else number
    if key in _BOOL_FIELDS:
        return value.strip().lower() in ("true", "1")
    return value
