"""aiogram routers: parse the update, call a service, render the reply."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # importing aiogram costs ~150 MB: CLI commands that never reach it skip it
    from aiogram import Router


def get_routers() -> list[Router]:
    """Order matters: commands and buttons first, free-text search next, the fallback last."""
    from handlers import (
        corners,
        desk,
        dialogs,
        errors,
        fallback,
        holds,
        librarian,
        loans,
        notify,
        recommend,
        search,
        settings,
        start,
        stats,
        suggest,
        talk,
        web_sessions,
    )

    modules = (
        errors,
        dialogs,
        start,
        librarian,
        desk,
        corners,
        stats,
        loans,
        holds,
        recommend,
        notify,
        settings,
        suggest,
        web_sessions,
        talk,
        search,
        fallback,
    )
    routers = [module.build_router() for module in modules]
    # Bare scans at the desk: after the corners (an open swap draft takes scans first).
    routers.insert(modules.index(corners) + 1, desk.build_scan_router())
    return routers
