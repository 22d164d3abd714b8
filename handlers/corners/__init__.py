"""Class reading corners in the chat: ``commands`` (the router and its handlers) and ``views``
(the text and buttons they send)."""

from __future__ import annotations

from handlers.corners.commands import build_router

__all__ = ["build_router"]
