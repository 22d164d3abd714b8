"""Who the sandbox's bot is, light enough for any command to ask (``sandbox.demo`` is heavy):
``demo_bot_username`` is the ``shuxiang.bot_username`` entry point (pyproject.toml) that
``shuxiang readers codes`` asks, so that bot/ never imports the sandbox."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy.engine import make_url

if TYPE_CHECKING:
    from bot.config import Settings

SANDBOX_BOT = "shuxiang_sandbox_bot"


def demo_bot_username(settings: Settings) -> str | None:
    """The sandbox bot's user name when ``settings`` point at a SQLite database the demo has
    run on (``sandbox.demo.single_sandbox`` leaves its lock file beside it), so that ``shuxiang
    readers codes`` works on the demo's data without SHUXIANG_BOT_USERNAME; else None."""
    url = make_url(settings.checked_database_url())
    if url.drivername.startswith("sqlite") and url.database and url.database != ":memory:":
        return SANDBOX_BOT if Path(f"{url.database}.lock").exists() else None
    return None
