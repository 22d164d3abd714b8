"""Router filters shared by the chat's features. They only pick which handler (which menu) a
user reaches; the services check the actor again (services/actor.py), so no rule lives here."""

from __future__ import annotations

from aiogram.types import TelegramObject

from services.actor import Actor


def is_librarian(event: TelegramObject, actor: Actor | None = None) -> bool:
    """aiogram injects ``actor`` (set by ReaderMiddleware, before any filter) by name."""
    return actor is not None and actor.is_librarian
