"""Domain errors carry a catalogue key, so the bot, the CLI and the scheduler word them alike."""

from __future__ import annotations

from typing import Any


class ServiceError(Exception):
    """A rule said no. ``key`` names the message in the locale catalogue; ``params`` fill it."""

    def __init__(self, key: str, **params: Any) -> None:
        super().__init__(key)
        self.key = key
        self.params = params

    def render(self, locale: str | None = None) -> str:
        from services.i18n import t

        return t(self.key, locale=locale, **self.params)
