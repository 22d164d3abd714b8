"""The channels a push goes out on, besides Telegram, as the sender sees them.

The outbox keeps one row per push and channel of the reader (services/notifications/outbox.py);
the sender renders each at send time and hands it to its channel's transport. Telegram's is the
sender's own Bot, paced by Telegram's limits (bot/sender.py). Any other channel implements
:class:`PushChannel` and is given to the sender (``Sender.add_channel``): the school's web chat
stores the message in the reader's conversation, shown live when the page is open and the next
time it opens otherwise. It has no Telegram limits, so the sender does not pace it.

A transport raises :class:`Unreachable` when the address can no longer receive anything (that
endpoint is marked and gets no more pushes; the reader's others still do); any other exception is
a passing fault, retried with backoff like a network error. ``Push.notification_id`` is the same
for every attempt: a channel that stores messages can keep it unique and deliver at most once even
when the sender dies between delivering and recording it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from aiogram.types import InlineKeyboardMarkup

from services.notifications.render import Rendered


class Unreachable(Exception):
    """The channel refuses this address for good (the web account is gone, say)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Push:
    notification_id: int
    reader_id: int
    kind: str
    # The endpoint's address on the channel (for the web: the web account id).
    address: str
    # The text as HTML, as the Telegram chat shows it, and its inline keyboard: the same callback
    # data reaches the same handlers (handlers/notify.py) whichever chat the press came from.
    text: str
    keyboard: InlineKeyboardMarkup | None
    # The same push as data, for a channel that draws its own buttons.
    rendered: Rendered


class PushChannel(Protocol):
    async def deliver(self, push: Push) -> None:
        """Deliver or store the push; raise Unreachable for an address that is gone."""
        ...
