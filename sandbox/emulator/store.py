"""The message store: users and their chats, every message sent either way with its edits and
deletions (as events that waits can watch), the queue of updates for the bot, files, callback
queries and the log of Bot API calls.

It also plays the users' side: ``send_text``, ``press_button`` and friends store the user's
message and queue the update the bot will receive.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import copy
import hashlib
import itertools
import mimetypes
import re
import struct
import time
from collections import Counter
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sandbox.emulator.protocol import JSON, as_int, bad_request

__all__ = ["MessageStore", "StoredFile", "document_of", "iter_buttons", "photo_sizes"]

T = TypeVar("T")
# What the webhook poster waits on: an update queued or redelivered, one delivered.
UPDATES: Hashable = "updates"

# A 1x1 PNG: what a user "sends" when a test does not care about the picture itself.
SAMPLE_PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8/5+hHgAHggJ/PchI7wAAAABJRU5ErkJggg=="
)
_BOT_COMMAND_RE = re.compile(r"/[A-Za-z0-9_]{1,32}(?:@[A-Za-z0-9_]{3,32})?")


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
class MessageRecord:
    message: JSON
    outgoing: bool
    seq: int
    deleted: bool = False


@dataclass
class Event:
    seq: int
    kind: str  # "sent" | "edited" | "deleted"
    outgoing: bool
    snapshot: JSON


@dataclass
class Chat:
    chat_id: int
    records: dict[int, MessageRecord] = field(default_factory=dict)
    events: list[Event] = field(default_factory=list)
    next_message_id: int = 1
    version: int = 0
    reply_keyboard: JSON | None = None


@dataclass
class CallbackRecord:
    callback_query_id: str
    user_id: int
    chat_id: int
    message_id: int
    data: str
    answer: JSON | None = None


@dataclass
class Call:
    method: str
    params: JSON


def _image_size(data: bytes) -> tuple[int, int]:
    if data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) >= 24:
        width, height = struct.unpack(">II", data[16:24])
        return int(width), int(height)
    return 800, 600


class MessageStore:
    """Users, chats, messages and pending updates of one bot, and waits on their changes."""

    def __init__(self, bot_user: JSON, *, first_update_id: int = 1) -> None:
        self.bot_user = bot_user
        self.files: dict[str, StoredFile] = {}
        self._users: dict[int, JSON] = {}
        self._other_chats: dict[int, JSON] = {}  # non-private chats, from injected raw updates
        self._chats: dict[int, Chat] = {}
        self._blocked: set[int] = set()
        self._updates: dict[int, JSON] = {}
        self._pending: list[int] = []  # update ids not confirmed yet, ascending
        self._forced: list[int] = []  # redelivered update ids, returned before the others
        self._forced_sent: set[int] = set()
        self._update_ids = itertools.count(first_update_id)
        self._callback_ids = itertools.count(1)
        self._file_ids = itertools.count(1)
        self._seq = 0
        self._callbacks: dict[str, CallbackRecord] = {}
        self._calls: list[Call] = []
        self._inflight = 0
        self._last_activity = 0.0
        self._changed = asyncio.Event()
        # Waiters on one thing (a chat, the update queue) wake only when it changes: with
        # hundreds of users waiting at once, waking them all on every change costs more CPU
        # than the bot under test (the cluster benchmark).
        self._changed_for: dict[Hashable, asyncio.Event] = {}
        self._closing = False
        self._sent_by_chat: Counter[int] = Counter()
        self._sent_texts: Counter[tuple[int, str]] = Counter()

    # -- change notification --------------------------------------------------------------------

    def _notify(self, key: Hashable | None = None) -> None:
        """A change: wakes the waiters on anything, and those on ``key`` (all, without one)."""
        self._changed.set()
        self._changed = asyncio.Event()
        if key is None:
            for event in self._changed_for.values():
                event.set()
            self._changed_for.clear()
        elif key in self._changed_for:
            self._changed_for.pop(key).set()

    def _touch(self) -> None:
        self._last_activity = time.monotonic()

    async def _wait_until(
        self,
        check: Callable[[], T | None],
        timeout: float,  # noqa: ASYNC109
        slice_: float | None = None,
        key: Hashable | None = None,
    ) -> T | None:
        """Re-run ``check`` on every state change (with ``key``: every change notified for that
        key, or for everything) until it returns non-None or time runs out."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max(0.0, timeout)
        while True:
            if key is None:
                changed = self._changed
            else:
                changed = self._changed_for.setdefault(key, asyncio.Event())
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
        self._chats.setdefault(user_id, Chat(user_id))
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
            raise bad_request("chat_id is empty")
        chat_id = as_int(raw)
        if chat_id is None or (chat_id not in self._users and chat_id not in self._other_chats):
            raise bad_request("chat not found")
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

    def _record_event(self, chat: Chat, kind: str, record: MessageRecord, seq: int) -> None:
        snapshot = copy.deepcopy(record.message)
        snapshot["_deleted"] = record.deleted
        chat.events.append(Event(seq, kind, record.outgoing, snapshot))
        chat.version += 1
        self._notify(chat_key(chat.chat_id))

    def _store_message(self, chat_id: int, outgoing: bool, content: JSON) -> JSON:
        chat = self._chats.setdefault(chat_id, Chat(chat_id))
        message: JSON = {
            "message_id": chat.next_message_id,
            "from": dict(self.bot_user) if outgoing else dict(self._users[chat_id]),
            "chat": self._chat_object(chat_id),
            "date": int(time.time()),
        }
        message.update({k: v for k, v in content.items() if v is not None and v != []})
        chat.next_message_id += 1
        seq = self._next_seq()
        record = MessageRecord(message, outgoing, seq)
        if outgoing:
            self._sent_by_chat[chat_id] += 1
            self._sent_texts[chat_id, _text_key(message)] += 1
        chat.records[message["message_id"]] = record
        self._record_event(chat, "sent", record, seq)
        return copy.deepcopy(message)

    def _record(self, chat_id: int, message_id: Any) -> MessageRecord | None:
        chat = self._chats.get(chat_id)
        mid = as_int(message_id)
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

    async def wait_for_bot_count(
        self,
        chat_id: int,
        after_message_id: int,
        count: int,
        timeout: float = 30.0,  # noqa: ASYNC109
    ) -> list[JSON]:
        """The bot's first ``count`` messages sent after message ``after_message_id``, in the
        order they arrived, once there are that many (TimeoutError otherwise)."""

        def check() -> list[JSON] | None:
            chat = self._chats.get(chat_id)
            if chat is None:
                return None
            sent = [
                r.message
                for mid, r in chat.records.items()
                if mid > after_message_id and r.outgoing
            ]
            return copy.deepcopy(sent[:count]) if len(sent) >= count else None

        found = await self._wait_until(check, timeout, key=chat_key(chat_id))
        if found is None:
            raise TimeoutError(f"chat {chat_id}: fewer than {count} bot messages in {timeout}s")
        return found

    async def wait_for_bot_message(
        self,
        chat_id: int,
        predicate: Callable[[JSON], bool] | None = None,
        timeout: float = 30.0,  # noqa: ASYNC109
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

        found = await self._wait_until(check, timeout, key=chat_key(chat_id))
        if found is None:
            raise TimeoutError(
                f"no matching bot message in chat {chat_id} within {timeout}s; transcript:\n"
                + self.format_transcript(chat_id)
            )
        return found

    # -- counts of what the bot sent --------------------------------------------------------------

    @property
    def sent_total(self) -> int:
        """Messages the bot has sent (edits not counted, deleted ones kept)."""
        return self._sent_by_chat.total()

    def sent_counts(self) -> dict[int, int]:
        """Messages the bot has sent, per chat."""
        return dict(self._sent_by_chat)

    def duplicates(self) -> dict[tuple[int, str], int]:
        """(chat, text) pairs the bot sent more than once, with how many times each.

        The text is the caption for media, or "<photo>" and the like without one.
        """
        return {key: n for key, n in self._sent_texts.items() if n > 1}

    def reset_sent_counts(self) -> None:
        self._sent_by_chat.clear()
        self._sent_texts.clear()

    async def wait_for_sent(self, total: int, timeout: float = 30.0) -> int:  # noqa: ASYNC109
        """Wait until the bot has sent at least ``total`` messages; return how many it sent."""
        reached = await self._wait_until(
            lambda: self.sent_total if self.sent_total >= total else None, timeout
        )
        if reached is None:
            raise TimeoutError(
                f"the bot sent {self.sent_total} of {total} messages within {timeout}s"
            )
        return reached

    # -- injecting updates ----------------------------------------------------------------------

    def _register_from(self, obj: Any) -> None:
        if isinstance(obj, dict):
            sender = obj.get("from")
            if isinstance(sender, dict) and not sender.get("is_bot") and "id" in sender:
                if sender["id"] not in self._users:
                    self._users[sender["id"]] = dict(sender)
                self._chats.setdefault(sender["id"], Chat(sender["id"]))
            chat = obj.get("chat")
            group = isinstance(chat, dict) and chat.get("type") not in (None, "private")
            if group and isinstance(chat, dict) and isinstance(chat.get("id"), int):
                self._other_chats.setdefault(chat["id"], dict(chat))  # a group seen in a raw update
                self._chats.setdefault(chat["id"], Chat(chat["id"]))
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
        self._notify(UPDATES)
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
        digest = hashlib.sha1(data or (url or "").encode(), usedforsecurity=False).hexdigest()[:12]
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
        return self._user_message(user_id, {"photo": photo_sizes(stored), "caption": caption})

    def send_document_from_user(
        self,
        user_id: int,
        data: bytes,
        filename: str = "file.txt",
        caption: str | None = None,
        mime_type: str | None = None,
    ) -> JSON:
        stored = self._new_file("document", data, filename=filename, mime_type=mime_type)
        return self._user_message(user_id, {"document": document_of(stored), "caption": caption})

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
        self._callbacks[cq_id] = CallbackRecord(cq_id, user_id, user_id, message_id, callback_data)
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
        timeout: float = 30.0,  # noqa: ASYNC109
    ) -> JSON:
        """The bot's answerCallbackQuery params (``text``, ``show_alert``, ...) for that query."""
        record = self._callbacks.get(callback_query_id)
        answer = await self._wait_until(
            lambda: self.callback_answer(callback_query_id),
            timeout,
            key=chat_key(record.chat_id) if record is not None else None,
        )
        if answer is None:
            raise TimeoutError(
                f"callback query {callback_query_id} was not answered within {timeout}s"
            )
        return answer

    def calls(self, method: str) -> list[JSON]:
        """Params of every request the bot made to ``method`` (case-insensitive), in order."""
        name = method.lower()
        return [copy.deepcopy(c.params) for c in self._calls if c.method == name]

    def _is_idle(self, quiet: float) -> bool:
        return (
            not self._pending
            and not self._forced
            and self._inflight == 0
            and time.monotonic() - self._last_activity >= quiet
        )

    async def wait_idle(
        self,
        timeout: float = 30.0,  # noqa: ASYNC109
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

    def file(self, file_id: str) -> StoredFile:
        return self.files[file_id]

    # -- the update queue -----------------------------------------------------------------------

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


def chat_key(chat_id: int) -> Hashable:
    """What waiters on one chat's messages and callback answers wait for."""
    return ("chat", chat_id)


def _chat_instance(bot_id: int, chat_id: int) -> str:
    digest = hashlib.sha1(f"{bot_id}/{chat_id}".encode(), usedforsecurity=False).digest()
    return str(int.from_bytes(digest[:8], "big") // 2 - 2**62)


def photo_sizes(stored: StoredFile) -> list[JSON]:
    return [
        {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "width": stored.width or 800,
            "height": stored.height or 600,
            "file_size": stored.size,
        }
    ]


def document_of(stored: StoredFile) -> JSON:
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


def _text_key(message: JSON) -> str:
    return str(message.get("text") or message.get("caption") or _kind_of(message))


def _kind_of(message: JSON) -> str:
    for kind in ("photo", "document", "sticker"):
        if kind in message:
            return f"<{kind}>"
    return "<message>"


def iter_buttons(message: JSON) -> Iterable[JSON]:
    """Every inline button of a message dict, row by row."""
    for row in message.get("reply_markup", {}).get("inline_keyboard", []):
        yield from row
