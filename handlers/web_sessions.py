"""/sessions: the browsers signed in to the school's web chat, each with a button that signs it
out (a reader's own; a librarian's ``/sessions 证号`` for a reader who lost a phone)."""

from __future__ import annotations

from aiogram import Router
from aiogram.filters import Command, CommandObject
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message
from aiogram.utils.keyboard import InlineKeyboardBuilder

from handlers.callbacks import WebSessionCB
from handlers.context import ReaderCtx
from handlers.middlewares import bound
from handlers.render import Translator, esc
from services.web_sessions import SessionView, revoke, sessions_of

# When SHUXIANG_WEB_SESSION_DAYS is not in the workflow data (no web channel configured).
DEFAULT_DAYS = 180


def _listing(
    tr: Translator, views: list[SessionView], ctx: ReaderCtx
) -> tuple[str, InlineKeyboardMarkup | None]:
    if not views:
        return tr("web.sessions.none"), None
    lines = [tr("web.sessions.title", count=len(views))]
    keyboard = InlineKeyboardBuilder()
    for index, view in enumerate(views, start=1):
        lines.append(
            tr(
                "web.sessions.line",
                index=index,
                agent=esc(_agent(view.user_agent) or tr("web.sessions.unknown_agent")),
                address=esc(view.address),
                created=view.created_at.astimezone(ctx.tz).strftime("%Y-%m-%d %H:%M"),
                seen=view.last_seen.astimezone(ctx.tz).strftime("%Y-%m-%d %H:%M"),
            )
        )
        keyboard.button(
            text=tr("web.sessions.revoke_button", index=index),
            callback_data=WebSessionCB(session_id=view.id),
        )
    keyboard.adjust(2)
    return "\n".join(lines), keyboard.as_markup()


def _agent(user_agent: str) -> str:
    """A short name for a browser: WeChat, or the product the User-Agent ends with."""
    if "MicroMessenger" in user_agent:
        return "WeChat"
    return user_agent.split(" ")[-1][:40] if user_agent else ""


async def sessions_command(
    message: Message, command: CommandObject, ctx: ReaderCtx, web_session_days: int = DEFAULT_DAYS
) -> None:
    card_no = (command.args or "").strip() or None
    _, views = await sessions_of(
        ctx.session, ctx.actor, card_no=card_no, days=web_session_days, now=ctx.now()
    )
    text, markup = _listing(ctx.tr, views, ctx)
    ctx.replies.add(message.answer(text, reply_markup=markup))


async def on_revoke(callback: CallbackQuery, callback_data: WebSessionCB, ctx: ReaderCtx) -> None:
    done = await revoke(ctx.session, ctx.actor, callback_data.session_id, now=ctx.now())
    key = "web.sessions.revoked" if done else "web.sessions.gone"
    ctx.replies.add(callback.answer(ctx.tr(key), show_alert=not done))


def build_router() -> Router:
    router = Router(name=__name__)
    router.message.register(sessions_command, Command("sessions"), flags=bound())
    router.callback_query.register(on_revoke, WebSessionCB.filter(), flags=bound(writes=True))
    return router
