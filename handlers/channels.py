"""Which channel an update came in on: the Bot that carries it says so.

The web chat drives the same dispatcher through a Bot of its own, marked with
``mark_channel(bot, Channel.WEB)`` (or a Bot subclass with a ``shuxiang_channel`` attribute); an
unmarked Bot is Telegram's. Handlers read it from the handler data as ``channel``, put there by
ReaderMiddleware.
"""

from __future__ import annotations

from typing import Any

from services.actor import Channel

ATTRIBUTE = "shuxiang_channel"


def mark_channel(bot: Any, channel: Channel) -> None:
    setattr(bot, ATTRIBUTE, Channel(channel))


def channel_of(bot: Any) -> Channel:
    """The channel of the Bot carrying an update; Telegram unless the Bot says otherwise."""
    return Channel(getattr(bot, ATTRIBUTE, Channel.TELEGRAM))
